#!/usr/bin/env node
// `npm run bench`: lukko against OpenSSH's `sshd -i`, both started once per TCP connection by
// `systemd-socket-activate --accept` on loopback, measured in the same run:
//   1. login latency of `ssh … true` (median, p90),
//   2. upload throughput through `cat >/dev/null`, per cipher,
//   3. memory (PSS) of one idle logged-in session,
// plus a cheap breakdown of where a lukko login's time goes. It measures and reports; a
// missed target is not a failure. Exit status: 0 when every step ran, 1 when one did not.
//
// Environment (all optional):
//   BENCH_RUNS=30            logins per server for the latency figures
//   BENCH_WARMUP=1           untimed logins per server first (fills Node's compile cache)
//   BENCH_LOGIN_CIPHER=chacha20-poly1305@openssh.com   cipher of the latency logins
//   BENCH_UPLOAD_MB=1024     upload size in MiB (head -c <n>M)
//   BENCH_UPLOAD_REPS=3      uploads per server and cipher (the median is reported)
//   BENCH_MEM_USER=<name>    also measure idle memory as this non-root account (default: the
//                            first unlocked account with uid >= 1000 and a real shell; none
//                            when empty). sshd splits into two processes only for non-root.
//   BENCH_MEM_SESSIONS=4     concurrent idle sessions for the per-session PSS figure
//   BENCH_SETTLE_MS=3000     wait after a session is up before reading its memory
//   BENCH_BREAKDOWN_RUNS=10  repetitions of each breakdown probe
//   BENCH_JSON=<file>        also write every figure there as JSON
//   BENCH_KEEP_TMP=1         keep the temporary directory (for debugging)
//   BENCH_TIMEOUT_S=3600     give up (and clean up) after this long
//   BENCH_USER_RC=hide       `keep`: let the sessions' bash read the accounts' ~/.bashrc
//   LUKKO_NODE=<path>        the node that runs lukko (default: .runtime/bin/node)
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MAIN_JS = path.join(REPO, 'dist/cli/main.js');
const CONNECTION_JS = path.join(REPO, 'dist/connection/main.js');
const PINNED_NODE = path.join(REPO, '.runtime/bin/node');
const NODE = process.env.LUKKO_NODE || (fs.existsSync(PINNED_NODE) ? PINNED_NODE : process.execPath);
const SSHD = '/usr/sbin/sshd';

function intEnv(name, dflt, min = 0) {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name}=${v}: expected an integer >= ${min}`);
  return n;
}

const RUNS = intEnv('BENCH_RUNS', 30, 1);
const WARMUP = intEnv('BENCH_WARMUP', 1, 0);
const LOGIN_CIPHER = process.env.BENCH_LOGIN_CIPHER || 'chacha20-poly1305@openssh.com';
const UPLOAD_MB = intEnv('BENCH_UPLOAD_MB', 1024, 1);
const UPLOAD_REPS = intEnv('BENCH_UPLOAD_REPS', 3, 1);
const UPLOAD_CIPHERS = ['aes128-gcm@openssh.com', 'chacha20-poly1305@openssh.com'];
const MEM_SESSIONS = intEnv('BENCH_MEM_SESSIONS', 4, 1);
const SETTLE_MS = intEnv('BENCH_SETTLE_MS', 3000, 0);
const BREAKDOWN_RUNS = intEnv('BENCH_BREAKDOWN_RUNS', 10, 1);
const PSS_TARGET_KB = 20 * 1024; // "idle PSS < 20 MB", read as 20 MiB (smaps counts KiB)

// Timeouts (ms) of the individual steps.
const T_LOGIN = 30_000;
const T_UPLOAD = Math.max(120_000, UPLOAD_MB * 1000); // >= 1 MiB/s or it is broken
const T_SESSION_UP = 30_000;
const T_TOOL = 60_000;
const T_APT = 600_000;
const T_GLOBAL = intEnv('BENCH_TIMEOUT_S', 3600, 60) * 1000;

// A clean environment for everything we start: no NODE_EXTRA_CA_CERTS, NODE_OPTIONS or agent.
const BASE_ENV = {
  PATH: `${path.dirname(NODE)}:${process.env.PATH || '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'}`,
  HOME: process.env.HOME || '/root',
  LANG: 'C',
};

class StepError extends Error {}

// ---------------------------------------------------------------------------------------------
// Processes: every child is tracked so that cleanup can end it by its PID.

const children = new Set();

function track(child) {
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

/** Runs a command to completion; rejects on timeout or a spawn error, never on exit status. */
function run(cmd, args, { timeoutMs = T_TOOL, env = BASE_ENV, cwd = REPO, stdin = 'ignore' } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = track(spawn(cmd, args, { env, cwd, stdio: [stdin, 'pipe', 'pipe'] }));
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => { if (stdout.length < 1 << 20) stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d) => { if (stderr.length < 1 << 20) stderr += d; });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new StepError(`timeout after ${timeoutMs} ms: ${cmd} ${args.join(' ')}`));
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new StepError(`${cmd}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      resolve({ code, signal, stdout, stderr, ms });
    });
  });
}

async function mustRun(cmd, args, opts) {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    throw new StepError(`${cmd} ${args.join(' ')}: exit ${r.code ?? r.signal}: ${r.stderr.trim().slice(-2000)}`);
  }
  return r;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what, timeoutMs, fn, intervalMs = 50) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new StepError(`timeout after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

// ---------------------------------------------------------------------------------------------
// /proc

function procTable() {
  const table = new Map();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const ppid = Number(stat.slice(close + 2).split(' ')[1]);
      table.set(Number(name), { pid: Number(name), ppid, comm });
    } catch {
      // gone meanwhile
    }
  }
  return table;
}

function descendants(root, table = procTable()) {
  const out = [];
  const queue = [root];
  while (queue.length) {
    const p = queue.shift();
    for (const e of table.values()) if (e.ppid === p) { out.push(e.pid); queue.push(e.pid); }
  }
  return out;
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function exeOf(pid) {
  try {
    return fs.readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return '';
  }
}

function cmdlineOf(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
  } catch {
    return '';
  }
}

/** Rss, Pss, Private_Dirty … of smaps_rollup, in KiB. */
function smapsRollup(pid) {
  const out = {};
  for (const line of fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8').split('\n')) {
    const m = /^(\w+):\s+(\d+) kB/.exec(line);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Statistics and formatting

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/** Nearest-rank percentile. */
function pct(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil((p / 100) * s.length) - 1)];
}

function summary(xs) {
  return { n: xs.length, median: median(xs), p90: pct(xs, 90), min: Math.min(...xs), max: Math.max(...xs) };
}

const f1 = (x) => x.toFixed(1);
const f2 = (x) => x.toFixed(2);
const mib = (kb) => kb / 1024;

function table(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  return rows
    .map((r, ri) => {
      const line = r.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ');
      return ri === 0 ? `${line}\n${widths.map((w) => '-'.repeat(w)).join('  ')}` : line;
    })
    .join('\n');
}

const say = (s = '') => process.stdout.write(`${s}\n`);

// ---------------------------------------------------------------------------------------------
// Setup

let TMP;
const activators = [];

async function ensureTools() {
  // sshd -i and lukko both switch users; the rc-hiding mount namespace needs root too.
  if (process.getuid() !== 0) throw new StepError('run as root (sshd -i and lukko switch to the logged-in account)');
  if (!fs.existsSync(SSHD)) {
    say(`bench: ${SSHD} missing, installing openssh-server`);
    const env = { ...BASE_ENV, DEBIAN_FRONTEND: 'noninteractive' };
    // Keep the package's postinst from starting a system-wide sshd.
    const policy = '/usr/sbin/policy-rc.d';
    const ownPolicy = !fs.existsSync(policy);
    if (ownPolicy) fs.writeFileSync(policy, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
    try {
      await mustRun('apt-get', ['update', '-qq'], { env, timeoutMs: T_APT });
      await mustRun('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'openssh-server'], { env, timeoutMs: T_APT });
    } finally {
      if (ownPolicy) fs.rmSync(policy, { force: true });
    }
  }
  for (const [tool, args] of [['systemd-socket-activate', ['--version']], ['ssh', ['-V']], ['ssh-keygen', ['-?']], ['head', ['--version']]]) {
    const r = await run(tool, args).catch((e) => ({ error: e }));
    if (r.error) throw new StepError(`${tool} not usable: ${r.error.message}`);
  }
  if (!fs.existsSync(MAIN_JS)) throw new StepError(`${MAIN_JS} missing: run \`npm run build\` first`);
  // sshd's privilege separation directory.
  fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function keygen(file) {
  await mustRun('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'lukko-bench', '-f', file]);
}

// bash sources ~/.bashrc even for `bash -c CMD` when started by an SSH server (Debian builds
// it with SSH_SOURCE_BASHRC), so a heavy rc file (pyenv init …) would be timed as part of
// every login of both servers. By default the servers run where those files read as empty.
const HIDE_RC = (process.env.BENCH_USER_RC || 'hide') !== 'keep';
const HIDE_SCRIPT = 'e=$1; shift; while [ "$1" != -- ]; do mount --bind "$e" "$1" || exit 1; shift; done; shift; exec "$@"';
const EMPTY_RC = () => {
  const f = path.join(TMP, 'empty-rc');
  if (!fs.existsSync(f)) fs.writeFileSync(f, '', { mode: 0o644 });
  return f;
};
let hiddenRc = [];

function rcFilesOf(users) {
  const out = [];
  for (const line of fs.readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const f = line.split(':');
    if (f.length < 7 || !users.includes(f[0]) || path.basename(f[6]) !== 'bash') continue;
    const rc = path.join(f[5], '.bashrc');
    if (fs.existsSync(rc) && fs.statSync(rc).isFile()) out.push(rc);
  }
  return out;
}

async function startActivator(name, port, argv, { inetd }) {
  const log = path.join(TMP, `${name}.log`);
  const fd = fs.openSync(log, 'a');
  const args = ['--accept', ...(inetd ? ['--inetd'] : []), '-l', `127.0.0.1:${port}`, ...argv];
  // Optionally in a private mount namespace where the accounts' shell rc files are empty.
  const [cmd, cmdArgs] = hiddenRc.length
    ? ['unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', HIDE_SCRIPT, 'sh', EMPTY_RC(), ...hiddenRc, '--', 'systemd-socket-activate', ...args]]
    : ['systemd-socket-activate', args];
  const child = track(spawn(cmd, cmdArgs, { env: BASE_ENV, cwd: TMP, stdio: ['ignore', fd, fd] }));
  fs.closeSync(fd);
  const a = { name, port, child, pid: child.pid, log };
  activators.push(a);
  let exited = null;
  child.on('exit', (code, signal) => { exited = code ?? signal; });
  await waitFor(`${name}'s systemd-socket-activate to listen`, 10_000, () => {
    if (exited !== null) throw new StepError(`${name}: systemd-socket-activate exited (${exited}): ${fs.readFileSync(log, 'utf8').trim()}`);
    return fs.readFileSync(log, 'utf8').includes('Listening on');
  });
  return a;
}

async function setup() {
  TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'lukko-bench-'));
  // World-traversable, so that sshd can read the shared authorized_keys as a non-root user.
  fs.chmodSync(TMP, 0o755);
  const dirs = {};
  for (const d of ['lukko', 'sshd', 'client']) {
    dirs[d] = path.join(TMP, d);
    fs.mkdirSync(dirs[d], { mode: 0o755 });
    fs.chmodSync(dirs[d], 0o755);
  }
  const clientKey = path.join(dirs.client, 'id_ed25519');
  await keygen(clientKey);
  await keygen(path.join(dirs.lukko, 'host_ed25519_key'));
  await keygen(path.join(dirs.sshd, 'host_ed25519_key'));
  // One authorized_keys for both servers: lukko's <configdir>/authorized_keys.
  const authorizedKeys = path.join(dirs.lukko, 'authorized_keys');
  fs.copyFileSync(`${clientKey}.pub`, authorizedKeys);
  fs.chmodSync(authorizedKeys, 0o644);

  const lukkoPort = await freePort();
  let sshdPort = await freePort();
  while (sshdPort === lukkoPort) sshdPort = await freePort();

  const lukkoConf = path.join(dirs.lukko, 'lukko.conf');
  fs.writeFileSync(lukkoConf, `listener {\n  bind "127.0.0.1:${lukkoPort}"\n}\n`);
  const sshdConf = path.join(dirs.sshd, 'sshd_config');
  fs.writeFileSync(
    sshdConf,
    [
      `HostKey ${path.join(dirs.sshd, 'host_ed25519_key')}`,
      'UsePAM no',
      `AuthorizedKeysFile ${authorizedKeys}`,
      // The key file lives under /tmp (world-writable), which StrictModes refuses.
      'StrictModes no',
      'PermitRootLogin prohibit-password',
      'PidFile none',
      'LogLevel ERROR',
      '',
    ].join('\n'),
  );
  await mustRun(SSHD, ['-t', '-f', sshdConf]);

  if (HIDE_RC) hiddenRc = rcFilesOf(['root', defaultMemUser()].filter(Boolean));
  const compileCache = path.join(TMP, 'node-compile-cache');
  fs.mkdirSync(compileCache);
  const lukko = await startActivator(
    'lukko',
    lukkoPort,
    ['-E', `NODE_COMPILE_CACHE=${compileCache}`, NODE, MAIN_JS, 'connection', '--config', lukkoConf, '--log-level', 'warn'],
    { inetd: false },
  );
  // sshd -i wants the connection on stdin/stdout (as ssh@.service's StandardInput=socket).
  const sshd = await startActivator('sshd', sshdPort, [SSHD, '-i', '-f', sshdConf], { inetd: true });
  lukko.label = 'lukko';
  sshd.label = 'sshd -i';
  lukko.serverExe = (exe) => path.basename(exe) === 'node';
  sshd.serverExe = (exe) => exe === SSHD;
  return { lukko, sshd, clientKey, compileCache };
}

function sshArgs(ctx, server, cipher, user = 'root') {
  return [
    '-F', '/dev/null',
    '-o', 'BatchMode=yes',
    '-o', 'StrictHostKeyChecking=no',
    '-o', 'UserKnownHostsFile=/dev/null',
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'UpdateHostKeys=no',
    '-o', 'LogLevel=ERROR',
    '-o', 'IdentitiesOnly=yes',
    '-o', 'IdentityAgent=none',
    '-o', 'ControlMaster=no',
    '-o', 'ControlPath=none',
    '-o', 'ConnectTimeout=10',
    '-o', 'KexAlgorithms=curve25519-sha256',
    '-o', 'HostKeyAlgorithms=ssh-ed25519',
    '-c', cipher,
    '-i', ctx.clientKey,
    '-p', String(server.port),
    '-T',
    `${user}@127.0.0.1`,
  ];
}

// ---------------------------------------------------------------------------------------------
// 1. Login latency

async function login(ctx, server) {
  const r = await run('ssh', ['-n', ...sshArgs(ctx, server, LOGIN_CIPHER), 'true'], { timeoutMs: T_LOGIN });
  if (r.code !== 0) throw new StepError(`${server.label}: ssh … true: exit ${r.code ?? r.signal}: ${r.stderr.trim()}`);
  return r.ms;
}

async function latency(ctx) {
  const { lukko, sshd } = ctx;
  for (let i = 0; i < WARMUP; i++) {
    await login(ctx, lukko);
    await login(ctx, sshd);
  }
  // Let the warm-up processes write the compile cache and exit.
  await allServersGone(ctx);
  const cacheFiles = countFiles(ctx.compileCache);
  const cpu0 = { lukko: reapedCpuMs(lukko.pid), sshd: reapedCpuMs(sshd.pid) };
  const t = { lukko: [], sshd: [] };
  for (let i = 0; i < RUNS; i++) {
    // Alternate which server goes first, so that neither always follows the other.
    const order = i % 2 ? [sshd, lukko] : [lukko, sshd];
    for (const s of order) t[s === lukko ? 'lukko' : 'sshd'].push(await login(ctx, s));
  }
  await allServersGone(ctx);
  // CPU time (user + system) of the per-connection servers and their children, per login.
  const cpu = { lukko: (reapedCpuMs(lukko.pid) - cpu0.lukko) / RUNS, sshd: (reapedCpuMs(sshd.pid) - cpu0.sshd) / RUNS };
  return { lukko: summary(t.lukko), sshd: summary(t.sshd), raw: t, compileCacheFiles: cacheFiles, cpuMsPerLogin: cpu };
}

async function allServersGone(ctx) {
  await waitFor('per-connection servers to exit', 10_000, () => descendants(ctx.lukko.pid).length === 0 && descendants(ctx.sshd.pid).length === 0);
}

let clkTck = 100;

/** cutime + cstime of a process: the CPU time of the children it has reaped, in ms. */
function reapedCpuMs(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 16 and 17 of stat(5), counted from 1 including pid and comm.
  return ((Number(f[13]) + Number(f[14])) * 1000) / clkTck;
}

function countFiles(dir) {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) n += e.isDirectory() ? countFiles(path.join(dir, e.name)) : 1;
  return n;
}

// ---------------------------------------------------------------------------------------------
// 2. Upload throughput

// Timed on the server, from the start of the remote command to cat's end of input: the
// transfer without the login. The ssh command's wall time (login included) is kept too.
const TIMED_SINK = 's=$(date +%s%N); cat >/dev/null; e=$(date +%s%N); echo $((e-s))';

function upload(ctx, server, cipher) {
  return new Promise((resolve, reject) => {
    const bytes = UPLOAD_MB * 1024 * 1024;
    const t0 = process.hrtime.bigint();
    const head = track(spawn('head', ['-c', String(bytes), '/dev/zero'], { env: BASE_ENV, stdio: ['ignore', 'pipe', 'pipe'] }));
    // head's stdout pipe is handed to ssh as its stdin: the data never passes through node.
    const ssh = track(spawn('ssh', [...sshArgs(ctx, server, cipher), TIMED_SINK], { env: BASE_ENV, stdio: [head.stdout, 'pipe', 'pipe'] }));
    head.stdout.destroy();
    let out = '';
    let err = '';
    ssh.stdout.setEncoding('utf8').on('data', (d) => { out += d; });
    ssh.stderr.setEncoding('utf8').on('data', (d) => { err += d; });
    head.stderr.resume();
    const timer = setTimeout(() => {
      ssh.kill('SIGKILL');
      head.kill('SIGKILL');
      reject(new StepError(`${server.label}: upload ${cipher}: timeout after ${T_UPLOAD} ms`));
    }, T_UPLOAD);
    const fail = (e) => { clearTimeout(timer); head.kill('SIGKILL'); reject(e); };
    head.on('error', (e) => fail(new StepError(`head: ${e.message}`)));
    ssh.on('error', (e) => fail(new StepError(`ssh: ${e.message}`)));
    ssh.on('close', (code, signal) => {
      clearTimeout(timer);
      const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
      const ns = Number(out.trim().split('\n').pop());
      if (code !== 0 || !Number.isFinite(ns) || ns <= 0) {
        head.kill('SIGKILL');
        reject(new StepError(`${server.label}: upload ${cipher}: exit ${code ?? signal}, output ${JSON.stringify(out)}: ${err.trim()}`));
        return;
      }
      resolve({ bytes, streamMs: ns / 1e6, wallMs, mbps: bytes / 1e6 / (ns / 1e9), wallMbps: bytes / 1e6 / (wallMs / 1e3) });
    });
  });
}

async function throughput(ctx) {
  const { lukko, sshd } = ctx;
  const res = {};
  for (const c of UPLOAD_CIPHERS) res[c] = { lukko: [], sshd: [] };
  for (let rep = 0; rep < UPLOAD_REPS; rep++) {
    for (const c of UPLOAD_CIPHERS) {
      const order = rep % 2 ? [sshd, lukko] : [lukko, sshd];
      for (const s of order) {
        await allServersGone(ctx);
        const cpu0 = reapedCpuMs(s.pid);
        const r = await upload(ctx, s, c);
        await allServersGone(ctx);
        r.serverCpuMs = reapedCpuMs(s.pid) - cpu0;
        res[c][s === lukko ? 'lukko' : 'sshd'].push(r);
      }
    }
  }
  const out = {};
  for (const c of UPLOAD_CIPHERS) {
    out[c] = {};
    for (const k of ['lukko', 'sshd']) {
      const runs = res[c][k];
      out[c][k] = {
        mbps: median(runs.map((r) => r.mbps)),
        wallMbps: median(runs.map((r) => r.wallMbps)),
        // Server CPU (user+sys, login included) per GiB moved: independent of other load.
        cpuSecPerGiB: median(runs.map((r) => r.serverCpuMs / 1000 / (r.bytes / 2 ** 30))),
        runs,
      };
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// 3. Memory of idle sessions

async function idleSessions(ctx, server, user, count) {
  const clients = [];
  const before = new Set(descendants(server.pid));
  try {
    for (let i = 0; i < count; i++) {
      const c = track(spawn('ssh', ['-n', ...sshArgs(ctx, server, LOGIN_CIPHER, user), 'sleep 60'], { env: BASE_ENV, stdio: ['ignore', 'ignore', 'pipe'] }));
      let err = '';
      c.stderr.setEncoding('utf8').on('data', (d) => { err += d; });
      c.on('exit', (code) => { c.failed = `ssh exited ${code}: ${err.trim()}`; });
      clients.push(c);
    }
    // The session is up once the server side runs our `sleep 60`.
    const sleeps = await waitFor(`${count} idle ${server.label} session(s) as ${user}`, T_SESSION_UP, () => {
      for (const c of clients) if (c.failed) throw new StepError(`${server.label}: ${c.failed}`);
      const table = procTable();
      const s = descendants(server.pid, table).filter((p) => !before.has(p) && table.get(p)?.comm === 'sleep');
      return s.length >= count ? s : null;
    });
    await sleep(SETTLE_MS);
    for (const c of clients) if (c.failed) throw new StepError(`${server.label}: session ended early: ${c.failed}`);
    const table = procTable();
    const sessions = [];
    for (const sl of sleeps) {
      // Walk up from the session's command to the activator: the server processes on the way.
      const procs = [];
      for (let p = table.get(sl)?.ppid; p && p !== server.pid; p = table.get(p)?.ppid) {
        if (server.serverExe(exeOf(p))) procs.push({ pid: p, cmdline: cmdlineOf(p), ...smapsRollup(p) });
      }
      if (!procs.length) {
        const chain = [];
        for (let p = sl; p && p !== server.pid; p = table.get(p)?.ppid) chain.push(`${p} ${table.get(p)?.comm} ${exeOf(p)}`);
        throw new StepError(`${server.label}: no server process found above pid ${sl} (${chain.join(' <- ')})`);
      }
      const sum = (k) => procs.reduce((a, p) => a + (p[k] ?? 0), 0);
      sessions.push({ procs, Pss: sum('Pss'), Rss: sum('Rss'), Private_Dirty: sum('Private_Dirty'), Pss_Anon: sum('Pss_Anon'), Pss_File: sum('Pss_File') });
    }
    return sessions;
  } finally {
    await endClients(server, clients, before);
  }
}

async function endClients(server, clients, before) {
  for (const c of clients) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
  await waitFor('ssh clients to exit', 10_000, () => clients.every((c) => c.exitCode !== null || c.signalCode !== null)).catch(() => {
    for (const c of clients) c.kill('SIGKILL');
  });
  // The servers see the client gone and exit; end stragglers by PID.
  const leftover = () => descendants(server.pid).filter((p) => !before.has(p));
  await waitFor(`${server.label} sessions to end`, 10_000, () => leftover().length === 0).catch(() => {
    for (const p of leftover()) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
  });
}

function defaultMemUser() {
  if (process.env.BENCH_MEM_USER !== undefined) return process.env.BENCH_MEM_USER || null;
  // OpenSSH without PAM refuses locked accounts (password field "!…"): only unlocked ones.
  let shadow;
  try {
    shadow = new Map(fs.readFileSync('/etc/shadow', 'utf8').split('\n').map((l) => l.split(':')).map((f) => [f[0], f[1] ?? '']));
  } catch {
    return null;
  }
  for (const line of fs.readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const f = line.split(':');
    if (f.length < 7) continue;
    const uid = Number(f[2]);
    const hash = shadow.get(f[0]);
    if (uid < 1000 || uid >= 60000 || hash === undefined || hash.startsWith('!')) continue;
    if (!/(nologin|false|sync)$/.test(f[6]) && fs.existsSync(f[6])) return f[0];
  }
  return null;
}

async function memory(ctx) {
  const users = ['root'];
  const other = defaultMemUser();
  if (other && other !== 'root') users.push(other);
  const out = { single: {}, concurrent: null, users };
  for (const user of users) {
    out.single[user] = {};
    for (const s of [ctx.lukko, ctx.sshd]) out.single[user][s === ctx.lukko ? 'lukko' : 'sshd'] = (await idleSessions(ctx, s, user, 1))[0];
  }
  if (MEM_SESSIONS > 1) {
    const user = users[users.length - 1];
    out.concurrent = { user, count: MEM_SESSIONS };
    for (const s of [ctx.lukko, ctx.sshd]) {
      const sessions = await idleSessions(ctx, s, user, MEM_SESSIONS);
      out.concurrent[s === ctx.lukko ? 'lukko' : 'sshd'] = {
        pssPerSession: sessions.reduce((a, x) => a + x.Pss, 0) / sessions.length,
        privateDirtyPerSession: sessions.reduce((a, x) => a + x.Private_Dirty, 0) / sessions.length,
      };
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// 4. Where a lukko login's time goes (cheap probes)

/** Time from connect() to the server's identification line. */
function timeToBanner(port) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const sock = net.connect(port, '127.0.0.1');
    let buf = '';
    const timer = setTimeout(() => { sock.destroy(); reject(new StepError(`no SSH banner on port ${port} within 10 s`)); }, 10_000);
    sock.setEncoding('latin1');
    sock.on('data', (d) => {
      buf += d;
      if (buf.includes('SSH-')) {
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        clearTimeout(timer);
        sock.destroy();
        resolve(ms);
      }
    });
    sock.on('error', (e) => { clearTimeout(timer); reject(new StepError(`banner probe: ${e.message}`)); });
  });
}

async function idleNodeMemory(args) {
  const child = track(spawn(NODE, args, { env: { ...BASE_ENV, NODE_DISABLE_COMPILE_CACHE: '1' }, cwd: REPO, stdio: 'ignore' }));
  try {
    await sleep(Math.max(SETTLE_MS, 1000));
    if (child.exitCode !== null || child.signalCode !== null) throw new StepError(`node ${args.join(' ')} exited early`);
    const m = smapsRollup(child.pid);
    return { Pss: m.Pss, Rss: m.Rss, Private_Dirty: m.Private_Dirty, Pss_Anon: m.Pss_Anon, Pss_File: m.Pss_File };
  } finally {
    child.kill('SIGKILL');
  }
}

async function breakdown(ctx) {
  const n = BREAKDOWN_RUNS;
  const nodeTimes = async (args, env) => {
    const xs = [];
    for (let i = 0; i < n; i++) xs.push((await mustRun(NODE, args, { env })).ms);
    return summary(xs);
  };
  const importArgs = ['--input-type=module', '-e', `await import(${JSON.stringify(pathToFileURL(CONNECTION_JS).href)})`];
  const cacheDir = path.join(TMP, 'breakdown-compile-cache');
  const withCache = { ...BASE_ENV, NODE_COMPILE_CACHE: cacheDir };
  const noCache = { ...BASE_ENV, NODE_DISABLE_COMPILE_CACHE: '1' };
  const out = {};
  out.nodeE0 = await nodeTimes(['-e', '0'], BASE_ENV);
  out.importNoCache = await nodeTimes(importArgs, noCache);
  await mustRun(NODE, importArgs, { env: withCache }); // fill the cache
  out.importWithCache = await nodeTimes(importArgs, withCache);
  // Memory of an idle bare node, and of one that has loaded what a connection loads.
  out.memBareNode = await idleNodeMemory(['-e', 'setInterval(() => {}, 1 << 30)']);
  out.memImported = await idleNodeMemory(['--input-type=module', '-e', `${importArgs[2]}; setInterval(() => {}, 1 << 30)`]);
  const banner = { lukko: [], sshd: [] };
  for (let i = 0; i < n; i++) {
    banner.lukko.push(await timeToBanner(ctx.lukko.port));
    banner.sshd.push(await timeToBanner(ctx.sshd.port));
    await sleep(100);
  }
  out.bannerLukko = summary(banner.lukko);
  out.bannerSshd = summary(banner.sshd);
  // Let the probed servers notice the closed connections and exit.
  await waitFor('banner-probe servers to exit', 10_000, () => descendants(ctx.lukko.pid).length === 0 && descendants(ctx.sshd.pid).length === 0).catch(() => {});
  return out;
}

// ---------------------------------------------------------------------------------------------
// Facts about the machine

async function facts() {
  const cpu = /model name\s*:\s*(.*)/.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
  const nodeVersion = (await mustRun(NODE, ['--version'])).stdout.trim();
  const sshV = (await run('ssh', ['-V'])).stderr.trim();
  const sshdV = (await run(SSHD, ['-V'])).stderr.trim().split('\n')[0];
  const bindingScript = [
    "import { createRequire } from 'node:module';",
    `const require = createRequire(${JSON.stringify(path.join(REPO, 'package.json'))});`,
    "process.stdout.write(String(require('ssh2/lib/protocol/crypto.js').bindingAvailable));",
  ].join('\n');
  const binding = (await mustRun(NODE, ['--input-type=module', '-e', bindingScript])).stdout.trim() === 'true';
  const cpuFlags = fs.readFileSync('/proc/cpuinfo', 'utf8');
  clkTck = Number((await mustRun('getconf', ['CLK_TCK'])).stdout.trim()) || 100;
  return {
    cpus: os.availableParallelism(),
    cpu,
    aesni: /\baes\b/.test(cpuFlags),
    kernel: os.release(),
    memTotalMiB: Math.round(os.totalmem() / 1048576),
    node: `${nodeVersion} (${NODE})`,
    ssh: sshV,
    sshd: sshdV,
    ssh2Binding: binding,
  };
}

// ---------------------------------------------------------------------------------------------

function verdict(ok) {
  return ok ? 'PASS' : 'MISS';
}

function report(r) {
  const { lat, tput, mem, f } = r;
  say();
  say(`machine: ${f.cpus} CPUs (${f.cpu}${f.aesni ? ', AES-NI' : ''}), ${f.memTotalMiB} MiB, Linux ${f.kernel}`);
  say(`lukko:   node ${f.node}; ssh2 native crypto binding: ${f.ssh2Binding ? 'active' : 'NOT active'}`);
  say(`openssh: server ${f.sshd}; client ${f.ssh}`);
  say(`load average: ${r.loadBefore.map(f2).join(' ')} at start, ${r.loadAfter.map(f2).join(' ')} at end`);
  say(`shell rc files: ${hiddenRc.length ? `${hiddenRc.join(', ')} read as empty by the servers' sessions (private mount namespace; BENCH_USER_RC=keep to keep them)` : HIDE_RC ? 'none to hide' : 'kept (BENCH_USER_RC=keep)'}`);
  say(`compile cache: ${lat.compileCacheFiles} file(s) after ${WARMUP} warm-up login(s) per server`);
  say();

  const rows = [['', 'lukko', 'sshd -i', 'lukko/sshd', 'target', 'result']];
  const latRatio = lat.lukko.median / lat.sshd.median;
  rows.push([`login median, ms (n=${RUNS}, ${LOGIN_CIPHER.replace('@openssh.com', '')})`, f1(lat.lukko.median), f1(lat.sshd.median), f2(latRatio), '<= 1.00', verdict(latRatio <= 1)]);
  rows.push(['login p90, ms', f1(lat.lukko.p90), f1(lat.sshd.p90), f2(lat.lukko.p90 / lat.sshd.p90), '', '']);
  for (const c of UPLOAD_CIPHERS) {
    const t = tput[c];
    const ratio = t.lukko.mbps / t.sshd.mbps;
    rows.push([`upload ${UPLOAD_MB} MiB ${c.replace('@openssh.com', '')}, MB/s`, f1(t.lukko.mbps), f1(t.sshd.mbps), f2(ratio), '>= 0.90', verdict(ratio >= 0.9)]);
  }
  for (const user of mem.users) {
    const m = mem.single[user];
    rows.push([`idle session PSS as ${user}, MiB`, f1(mib(m.lukko.Pss)), f1(mib(m.sshd.Pss)), f2(m.lukko.Pss / m.sshd.Pss), '< 20 MiB', verdict(m.lukko.Pss < PSS_TARGET_KB)]);
    rows.push(['  same session: RSS, MiB', f1(mib(m.lukko.Rss)), f1(mib(m.sshd.Rss)), f2(m.lukko.Rss / m.sshd.Rss), '', '']);
    rows.push(['  same session: Private_Dirty, MiB', f1(mib(m.lukko.Private_Dirty)), f1(mib(m.sshd.Private_Dirty)), f2(m.lukko.Private_Dirty / m.sshd.Private_Dirty), '', '']);
  }
  say(table(rows));
  say();

  say(`server CPU time per login (user+sys of the per-connection processes and their children, reaped by systemd-socket-activate): lukko ${f1(lat.cpuMsPerLogin.lukko)} ms, sshd -i ${f1(lat.cpuMsPerLogin.sshd)} ms`);
  say(`login latency, ms: min/median/p90/max  lukko ${[lat.lukko.min, lat.lukko.median, lat.lukko.p90, lat.lukko.max].map(f1).join('/')}  sshd -i ${[lat.sshd.min, lat.sshd.median, lat.sshd.p90, lat.sshd.max].map(f1).join('/')}`);
  for (const c of UPLOAD_CIPHERS) {
    const t = tput[c];
    const runs = (k) => t[k].runs.map((x) => f1(x.mbps)).join(', ');
    say(`upload ${c}: stream MB/s lukko [${runs('lukko')}] sshd [${runs('sshd')}]; ssh wall time incl. login: lukko ${f1(t.lukko.wallMbps)}, sshd ${f1(t.sshd.wallMbps)} MB/s; server CPU per GiB: lukko ${f2(t.lukko.cpuSecPerGiB)} s, sshd ${f2(t.sshd.cpuSecPerGiB)} s (medians)`);
  }
  say();
  say('memory of one idle session (KiB; processes counted):');
  for (const user of mem.users) {
    for (const k of ['lukko', 'sshd']) {
      const m = mem.single[user][k];
      say(`  ${user.padEnd(10)} ${k.padEnd(5)} Pss ${m.Pss} (anon ${m.Pss_Anon}, file ${m.Pss_File})  Rss ${m.Rss}  Private_Dirty ${m.Private_Dirty}  <- ${m.procs.map((p) => `${p.pid} "${p.cmdline}"`).join(' + ')}`);
    }
  }
  if (mem.concurrent) {
    const c = mem.concurrent;
    say(`  ${c.count} concurrent idle sessions as ${c.user}, per session: lukko Pss ${f1(mib(c.lukko.pssPerSession))} MiB (Private_Dirty ${f1(mib(c.lukko.privateDirtyPerSession))}), sshd Pss ${f1(mib(c.sshd.pssPerSession))} MiB (Private_Dirty ${f1(mib(c.sshd.privateDirtyPerSession))})`);
  }
  say();
  const b = r.breakdown;
  const med = (s) => `${f1(s.median)} ms (p90 ${f1(s.p90)})`;
  say(`lukko login breakdown (median of ${BREAKDOWN_RUNS}):`);
  say(`  node -e 0                                   ${med(b.nodeE0)}`);
  say(`  node: import connection/main.js, no cache   ${med(b.importNoCache)}`);
  say(`  node: import connection/main.js, cache warm ${med(b.importWithCache)}`);
  say(`  connect -> SSH banner: lukko                ${med(b.bannerLukko)}`);
  say(`  connect -> SSH banner: sshd -i              ${med(b.bannerSshd)}`);
  const mm = (m) => `Pss ${f1(mib(m.Pss))} MiB (anon ${f1(mib(m.Pss_Anon))}, file ${f1(mib(m.Pss_File))}), Private_Dirty ${f1(mib(m.Private_Dirty))} MiB`;
  say(`  idle bare node (setInterval):               ${mm(b.memBareNode)}`);
  say(`  idle node after importing connection/main:  ${mm(b.memImported)}`);
  say(`  full login (above):    lukko ${f1(lat.lukko.median)} ms, sshd -i ${f1(lat.sshd.median)} ms`);
}

async function cleanup() {
  // Per-connection servers first (children of the activators), then everything we started.
  const pids = new Set();
  for (const a of activators) for (const p of descendants(a.pid)) pids.add(p);
  for (const p of pids) try { process.kill(p, 'SIGTERM'); } catch { /* gone */ }
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
  const end = Date.now() + 5000;
  while (Date.now() < end && ([...pids].some(alive) || [...children].some((c) => c.exitCode === null && c.signalCode === null))) await sleep(50);
  for (const p of pids) if (alive(p)) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (TMP && !process.env.BENCH_KEEP_TMP) fs.rmSync(TMP, { recursive: true, force: true });
  else if (TMP) say(`bench: kept ${TMP}`);
}

async function main() {
  if (process.platform !== 'linux') throw new StepError('linux only (/proc, systemd-socket-activate)');
  const t0 = Date.now();
  await ensureTools();
  const f = await facts();
  const loadBefore = os.loadavg();
  const ctx = await setup();
  say(`bench: lukko on 127.0.0.1:${ctx.lukko.port}, sshd -i on 127.0.0.1:${ctx.sshd.port} (${TMP})`);
  say(`bench: login latency, ${WARMUP} warm-up + ${RUNS} logins per server …`);
  const lat = await latency(ctx);
  say(`bench: upload, ${UPLOAD_MB} MiB x ${UPLOAD_REPS} per server and cipher …`);
  const tput = await throughput(ctx);
  say('bench: idle-session memory …');
  const mem = await memory(ctx);
  say('bench: login breakdown probes …');
  const breakdown_ = await breakdown(ctx);
  const loadAfter = os.loadavg();
  const results = { f, lat, tput, mem, breakdown: breakdown_, loadBefore, loadAfter, config: { RUNS, WARMUP, LOGIN_CIPHER, UPLOAD_MB, UPLOAD_REPS, MEM_SESSIONS, SETTLE_MS } };
  report(results);
  const problems = activators.map((a) => fs.readFileSync(a.log, 'utf8').split('\n').filter((l) => /^\{|lukko:|error|fatal/i.test(l) && !/^(Child|Connection from|Spawned|Execing|Communication)/.test(l))).flat();
  if (problems.length) {
    say();
    say(`server output that looks like warnings or errors (${problems.length} line(s), first 10):`);
    for (const l of problems.slice(0, 10)) say(`  ${l.slice(0, 300)}`);
  }
  say();
  say(`bench: done in ${f1((Date.now() - t0) / 1000)} s`);
  if (process.env.BENCH_JSON) fs.writeFileSync(process.env.BENCH_JSON, `${JSON.stringify(results, null, 2)}\n`);
}

let exitCode = 0;
let interrupted = false;
const watchdog = setTimeout(async () => {
  process.stderr.write(`bench: overall timeout after ${T_GLOBAL / 1000} s\n`);
  await cleanup();
  process.exit(1);
}, T_GLOBAL);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, async () => {
    interrupted = true;
    process.stderr.write(`bench: ${sig}, cleaning up\n`);
    await cleanup();
    process.exit(1);
  });
}
try {
  await main();
} catch (e) {
  if (!interrupted) process.stderr.write(`bench: FAILED: ${e instanceof StepError ? e.message : e?.stack ?? e}\n`);
  exitCode = 1;
} finally {
  await cleanup();
  clearTimeout(watchdog);
}
process.exit(exitCode);
