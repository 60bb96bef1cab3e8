// A real systemd for tests: wraps the shared systemd-nspawn harness (boot.sh, exec.sh,
// netexec.sh, stop.sh) so that a test file boots its own container, installs lukko the way a
// package would (application tree at /usr/lib/lukko, units in /usr/lib/systemd/system) and
// drives it with systemctl and a real OpenSSH client. Each test file passes its own name:
// several containers may run side by side.
//
// Layout inside the container, all read-only bind mounts of this checkout:
//   /usr/lib/lukko/node          ← .runtime (our Node 24, not the host's node)
//   /usr/lib/lukko/dist          ← dist (npm run build)
//   /usr/lib/lukko/node_modules  ← node_modules
//   /usr/lib/lukko/package.json  ← package.json ("type": "module")
// The units are copied from units/ at install time, so a test always sees the current ones.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const ROOT = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');
export const HARNESS_DIR = process.env.LUKKO_HARNESS_DIR ?? resolve(ROOT, '../shared/systemd-harness');
// systemd 257 (Debian trixie), the major version Flatcar stable ships.
export const HARNESS_SUITE = process.env.LUKKO_HARNESS_SUITE ?? 'trixie';
// The host's node for clients run in the container's network namespace: ours.
export const HOST_NODE = join(ROOT, '.runtime/bin/node');

export const LUKKO_DIR = '/usr/lib/lukko';
export const CONFIG_DIR = '/etc/cm4all/lukko';
export const CONFIG_PATH = `${CONFIG_DIR}/lukko.conf`;
export const UNIT_DIR = '/usr/lib/systemd/system';
export const MINIMAL_CONFIG = 'listener {\n  bind "*:22"\n}\n';

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string;
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
  /** Resolve with a non-zero status instead of rejecting. */
  allowFail?: boolean;
}

function cleanEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env.NODE_EXTRA_CA_CERTS; // costs every node start ~80 ms; systemd never sets it
  delete env.NODE_OPTIONS;
  delete env.NODE_TEST_CONTEXT; // the client scripts are not tests
  for (const [k, v] of Object.entries(extra)) if (v === undefined) delete env[k];
  return env;
}

export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<Run> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(cmd, args, { env: cleanEnv(opts.env), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const r = { code, signal, stdout, stderr };
      if (code === 0 || opts.allowFail) resolveRun(r);
      else reject(new Error(`${cmd} ${args.join(' ')}: exit ${code ?? signal}\n${stderr.slice(-3000)}${stdout.slice(-1000)}`));
    });
    child.stdin.on('error', () => {}); // the command may not read its input
    child.stdin.end(opts.input ?? '');
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` until it returns something other than undefined, or throws with `what`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 10_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(everyMs);
  }
}

export interface UnitLine {
  unit: string;
  load: string;
  active: string;
  sub: string;
}

/** `systemctl list-units --plain --no-legend` (and `--failed`) output, parsed. */
export function parseUnitList(text: string): UnitLine[] {
  return text
    .split('\n')
    .map((l) => l.trim().replace(/^[●×*]\s+/, ''))
    .filter((l) => l !== '')
    .map((l) => {
      const [unit = '', load = '', active = '', sub = ''] = l.split(/\s+/);
      return { unit, load, active, sub };
    });
}

/** `systemctl show` KEY=VALUE lines (one unit) as a record. */
export function parseShow(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

export interface HarnessOptions {
  /** HARNESS_NAME: unique per test file. */
  name: string;
  /** Extra systemd-nspawn arguments (no spaces inside one argument: the harness splits). */
  nspawnArgs?: string[];
}

export class Harness {
  readonly name: string;
  readonly env: Record<string, string>;
  info: Record<string, string> = {};
  private booted = false;

  constructor(opts: HarnessOptions) {
    this.name = opts.name;
    const binds = [
      `--bind-ro=${ROOT}/.runtime:${LUKKO_DIR}/node`,
      `--bind-ro=${ROOT}/dist:${LUKKO_DIR}/dist`,
      `--bind-ro=${ROOT}/node_modules:${LUKKO_DIR}/node_modules`,
      `--bind-ro=${ROOT}/package.json:${LUKKO_DIR}/package.json`,
    ];
    this.env = {
      HARNESS_NAME: opts.name,
      HARNESS_SUITE,
      HARNESS_NODE: '0', // the host's /usr/bin/node is not our runtime
      HARNESS_NSPAWN_ARGS: [...binds, ...(opts.nspawnArgs ?? [])].join(' '),
    };
  }

  /** Why this machine cannot run the harness, or undefined. Never a reason to skip: a test fails with it. */
  static unusable(): string | undefined {
    if (process.getuid?.() !== 0) return 'the systemd harness needs root (systemd-nspawn, mounts)';
    if (!existsSync(join(HARNESS_DIR, 'boot.sh'))) return `no systemd harness at ${HARNESS_DIR} (set LUKKO_HARNESS_DIR)`;
    for (const f of ['.runtime/bin/node', 'dist/cli/main.js', 'dist/spawn/lukko-exec', 'node_modules/sd-notify/package.json']) {
      if (!existsSync(join(ROOT, f))) return `${f} is missing (run scripts/setup.sh and npm run build)`;
    }
    if (!existsSync('/usr/bin/ssh') || !existsSync('/usr/bin/ssh-keygen')) return 'the OpenSSH client (ssh, ssh-keygen) is not installed on the host';
    return undefined;
  }

  private script(name: string, args: string[], opts: RunOptions = {}): Promise<Run> {
    return run(join(HARNESS_DIR, name), args, { ...opts, env: { ...this.env, ...opts.env } });
  }

  /** Boots the container (a stale one of the same name is stopped first). Throws with the harness's own words. */
  async boot(): Promise<void> {
    const why = Harness.unusable();
    if (why) throw new Error(`cannot run real-systemd tests here: ${why}`);
    await this.script('stop.sh', [], { allowFail: true }); // a leftover from an interrupted run
    let r: Run;
    try {
      r = await this.script('boot.sh', [], { timeoutMs: 600_000 });
    } catch (e) {
      throw new Error(`systemd harness did not boot: ${(e as Error).message}`);
    }
    this.booted = true;
    for (const line of r.stdout.split('\n')) {
      const m = /^(HARNESS_[A-Z_]+)=(.*)$/.exec(line);
      if (m) this.info[m[1]!] = m[2]!;
    }
  }

  async stop(): Promise<void> {
    if (!this.booted) return;
    this.booted = false;
    await this.script('stop.sh', [], { allowFail: true, timeoutMs: 120_000 });
  }

  /** A command inside the container (clean environment). Rejects on non-zero unless allowFail. */
  exec(args: string[], opts: RunOptions = {}): Promise<Run> {
    return this.script('exec.sh', args, opts);
  }

  /** `sh -c script` inside; returns stdout. */
  async sh(script: string, opts: RunOptions = {}): Promise<string> {
    return (await this.exec(['sh', '-c', script], opts)).stdout;
  }

  /** A HOST program in the container's network namespace (a client "from outside"). */
  netexec(args: string[], opts: RunOptions = {}): Promise<Run> {
    return this.script('netexec.sh', args, opts);
  }

  async writeFile(path: string, content: string, mode = '0644', owner = 'root:root'): Promise<void> {
    const q = shellQuote(path);
    await this.exec(['sh', '-c', `mkdir -p "$(dirname ${q})" && cat > ${q} && chmod ${mode} ${q} && chown ${owner} ${q}`], { input: content });
  }

  async systemctl(args: string[], opts: RunOptions = {}): Promise<Run> {
    return this.exec(['systemctl', ...args], opts);
  }

  async show(unit: string, props: string[]): Promise<Record<string, string>> {
    const r = await this.systemctl(['show', unit, ...props.map((p) => `--property=${p}`)]);
    return parseShow(r.stdout);
  }

  /** Every loaded unit matching `pattern`, whatever its state. */
  async units(pattern: string): Promise<UnitLine[]> {
    return parseUnitList((await this.systemctl(['list-units', '--all', '--plain', '--no-legend', '--no-pager', pattern])).stdout);
  }

  /** `systemctl --failed` exits 0 whatever it lists: this parses it. */
  async failed(): Promise<UnitLine[]> {
    return parseUnitList((await this.systemctl(['--failed', '--plain', '--no-legend', '--no-pager'])).stdout);
  }

  async journal(args: string[]): Promise<string> {
    return (await this.exec(['journalctl', '--no-pager', ...args])).stdout;
  }

  /** Copies units/ into the vendor unit directory and reloads systemd. */
  async installUnits(): Promise<void> {
    for (const unit of ['lukko.socket', 'lukko@.service']) {
      await this.writeFile(`${UNIT_DIR}/${unit}`, readFileSync(join(ROOT, 'units', unit), 'utf8'));
    }
    await this.systemctl(['daemon-reload']);
  }

  /** lukko.conf and host keys, made by lukko itself inside the container. */
  async installConfig(config = MINIMAL_CONFIG): Promise<void> {
    await this.writeFile(CONFIG_PATH, config);
    await this.exec([`${LUKKO_DIR}/node/bin/node`, `${LUKKO_DIR}/dist/cli/main.js`, 'keygen', '--config', CONFIG_PATH]);
  }

  /** A login account with a home, a shell and `publicKey` in its authorized_keys. */
  async addUser(name: string, publicKey: string): Promise<void> {
    await this.exec(['useradd', '--create-home', '--shell', '/bin/bash', name]);
    await this.writeFile(`/home/${name}/.ssh/authorized_keys`, publicKey, '0600', `${name}:${name}`);
    await this.exec(['sh', '-c', `chmod 0700 /home/${name}/.ssh && chown ${name}:${name} /home/${name}/.ssh`]);
  }
}

export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A client key pair and a known_hosts file for the container's host key, in a host temp dir. */
export class SshClient {
  readonly dir: string;
  readonly key: string;
  private readonly harness: Harness;

  constructor(harness: Harness) {
    this.harness = harness;
    this.dir = mkdtempSync(join(tmpdir(), 'lukko-systemd-'));
    this.key = join(this.dir, 'id_ed25519');
  }

  async init(): Promise<string> {
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'lukko-systemd-test', '-f', this.key]);
    return readFileSync(`${this.key}.pub`, 'utf8');
  }

  /** Trusts exactly the container's ed25519 host key (under an alias, so any port works). */
  async trustHostKey(): Promise<void> {
    const pub = (await this.harness.exec(['cat', `${CONFIG_DIR}/host_ed25519_key.pub`])).stdout.trim();
    const [type, blob] = pub.split(/\s+/);
    await run('sh', ['-c', `cat > ${shellQuote(join(this.dir, 'known_hosts'))}`], { input: `lukko-test ${type} ${blob}\n` });
  }

  args(user: string, port = 22): string[] {
    return [
      '-F', 'none',
      '-o', 'BatchMode=yes',
      '-o', 'IdentitiesOnly=yes',
      '-o', `IdentityFile=${this.key}`,
      '-o', 'HostKeyAlias=lukko-test',
      '-o', `UserKnownHostsFile=${join(this.dir, 'known_hosts')}`,
      '-o', 'GlobalKnownHostsFile=/dev/null',
      '-o', 'StrictHostKeyChecking=yes',
      '-o', 'ConnectTimeout=10',
      '-o', 'LogLevel=ERROR',
      '-p', String(port),
      `${user}@127.0.0.1`,
    ];
  }

  /** `ssh user@127.0.0.1 command` from the host, in the container's network namespace. */
  async ssh(user: string, command: string, opts: RunOptions & { port?: number } = {}): Promise<Run> {
    try {
      return await this.harness.netexec(['ssh', ...this.args(user, opts.port), command], opts);
    } catch (err) {
      // a login that fails unexpectedly: what the server side said, for the test's report
      const said = await this.harness.journal(['-n', '40', '-o', 'short-monotonic', '-u', 'lukko*']).catch((e: Error) => `(no journal: ${e.message})`);
      (err as Error).message += `\n--- journal of lukko* units, last 40 lines ---\n${said}`;
      throw err;
    }
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Raw TCP clients from the host (our Node) in the container's network namespace, all at once:
 *   fin        connect, then close normally
 *   rst        connect, then reset at once (SO_LINGER 0: what port scanners do)
 *   rst-banner connect, wait for the server's identification line, then reset
 *   half       send an identification line and wait: the server must end it
 * Prints one JSON object: per-client outcome counts, server banners seen, and duration.
 */
const CLIENT_SCRIPT = String.raw`
const net = require('node:net');
const [mode, count, port] = process.argv.slice(1);
const one = () => new Promise((done) => {
  const t0 = Date.now();
  let banner = false, by = 'client';
  const s = net.connect(+port, '127.0.0.1', () => {
    if (mode === 'fin') s.end();
    else if (mode === 'rst') s.resetAndDestroy();
    else if (mode === 'half') s.write('SSH-2.0-lukko_systemd_test\r\n');
  });
  s.on('data', (d) => {
    if (String(d).startsWith('SSH-2.0-')) banner = true;
    if (mode === 'rst-banner') s.resetAndDestroy();
  });
  s.on('end', () => { by = 'server'; });
  s.on('error', (e) => { by = e.code || 'error'; });
  s.on('close', () => done({ by, banner, ms: Date.now() - t0 }));
});
Promise.all(Array.from({ length: +count }, one)).then((rs) => {
  const by = {};
  for (const r of rs) by[r.by] = (by[r.by] || 0) + 1;
  console.log(JSON.stringify({ by, banners: rs.filter((r) => r.banner).length,
    minMs: Math.min(...rs.map((r) => r.ms)), maxMs: Math.max(...rs.map((r) => r.ms)) }));
});
`;

export interface ClientStats {
  by: Record<string, number>;
  banners: number;
  minMs: number;
  maxMs: number;
}

export async function rawClients(h: Harness, mode: 'fin' | 'rst' | 'rst-banner' | 'half', count: number, port = 22): Promise<ClientStats> {
  const r = await h.netexec([HOST_NODE, '-e', CLIENT_SCRIPT, mode, String(count), String(port)], { timeoutMs: 60_000 });
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as ClientStats;
}

/**
 * The setup most harness tests share: boot, install the units and a minimal lukko.conf, add
 * `alice` with the client's key, trust the container's host key and `systemctl enable --now
 * lukko.socket`; `teardown` stops everything. Tests pass them to node:test's before/after.
 */
export function installedLukko(name: string): { h: Harness; client: SshClient; setup(): Promise<void>; teardown(): Promise<void> } {
  const h = new Harness({ name });
  const client = new SshClient(h);
  return {
    h,
    client,
    async setup() {
      await h.boot();
      await h.installUnits();
      await h.installConfig();
      await h.addUser('alice', await client.init());
      await client.trustHostKey();
      await h.systemctl(['enable', '--now', 'lukko.socket']);
    },
    async teardown() {
      await h.stop();
      client.cleanup();
    },
  };
}

// ---- Installed trees (scripts/install.sh, scripts/build-sysext.sh): install.test.ts, sysext.test.ts ----
// (Imports are hoisted; this one sits here to keep the block self-contained.)
import { readdirSync } from 'node:fs';

/**
 * A harness whose container does NOT see this checkout at /usr/lib/lukko: tests of an installed
 * tree (install.sh, the sysext image) must not run the checkout's copy by accident.
 * `nspawnArgs` replace the checkout's bind mounts entirely.
 */
export function bareHarness(name: string, nspawnArgs: string[] = []): Harness {
  const h = new Harness({ name });
  h.env.HARNESS_NSPAWN_ARGS = nspawnArgs.join(' ');
  return h;
}

/** The booted container's root directory as the host sees it (boot.sh's HARNESS_ROOTFS). */
export function rootfsOf(h: Harness): string {
  const rootfs = h.info.HARNESS_ROOTFS;
  if (!rootfs || !existsSync(rootfs)) throw new Error(`harness ${h.name}: no HARNESS_ROOTFS after boot (${rootfs ?? 'unset'})`);
  return rootfs;
}

/**
 * nspawn arguments that let systemd-sysext inside the container attach a raw image: the host's
 * /dev/loop-control and every /dev/loopN node (the kernel hands out host-wide numbers), plus
 * the device cgroup rules. Empty when the host has no loop-control.
 */
export function loopDeviceArgs(): string[] {
  if (!existsSync('/dev/loop-control')) return [];
  const loops = readdirSync('/dev').filter((n) => /^loop\d+$/.test(n)).map((n) => `--bind=/dev/${n}`);
  return ['--bind=/dev/loop-control', ...loops, '--property=DeviceAllow=block-loop', '--property=DeviceAllow=/dev/loop-control'];
}
