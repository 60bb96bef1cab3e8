// A throw-away world for integration tests: test accounts that exist only inside a private
// mount namespace (our own /etc/passwd and /etc/group bind-mounted over the system's, so the
// machine is never changed), homes and keys under a temp directory, host keys, and lukko
// started either by `lukko serve` or by systemd-socket-activate --accept (the LISTEN_FDS
// path systemd uses). The OpenSSH client runs outside the namespace, as a real user would.
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ROOT = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');
export const MAIN = join(ROOT, 'dist/cli/main.js');
export const NODE = process.execPath;

export interface TestUser {
  name: string;
  uid: number;
  gid: number;
  groups: number[];
  home: string;
  shell: string;
}

export interface World {
  dir: string;
  configDir: string;
  configPath: string;
  users: Record<string, TestUser>;
  passwd: string;
  group: string;
  keys: Record<string, string>; // name -> private key path
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

let uidBase = 20100 + (process.pid % 50) * 20;

/** Generates a client key with ssh-keygen; returns the private key path. */
export function clientKey(dir: string, name: string, type: string, bits?: number): string {
  const path = join(dir, `key-${name}`);
  execFileSync('ssh-keygen', ['-q', '-t', type, ...(bits ? ['-b', String(bits)] : []), '-N', '', '-C', name, '-f', path]);
  return path;
}

export function publicKey(path: string): string {
  return readFileSync(`${path}.pub`, 'utf8').trim();
}

export function makeWorld(opts: { users?: string[]; keyTypes?: Record<string, [string, number?]> } = {}): World {
  const dir = mkdtempSync(join(tmpdir(), 'lukko-test-'));
  chmodSync(dir, 0o755);
  const configDir = join(dir, 'etc');
  mkdirSync(configDir);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(configDir, 'host_ed25519_key')]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ecdsa', '-b', '256', '-N', '', '-f', join(configDir, 'host_ecdsa_key')]);
  const configPath = join(configDir, 'lukko.conf');
  writeFileSync(configPath, 'listener {\n  bind "127.0.0.1:22"\n}\n');

  const base = uidBase;
  uidBase += 10;
  const names = opts.users ?? ['alice', 'bob'];
  const users: Record<string, TestUser> = {};
  let passwd = readFileSync('/etc/passwd', 'utf8');
  let group = readFileSync('/etc/group', 'utf8');
  const g1 = base + 5;
  const g2 = base + 6;
  group += `lukkot${base}a:x:${g1}:${names[0]}\nlukkot${base}b:x:${g2}:${names[0]}\n`;
  names.forEach((n, i) => {
    const uid = base + i;
    const home = join(dir, 'home', n);
    mkdirSync(join(home, '.ssh'), { recursive: true });
    users[n] = { name: n, uid, gid: uid, groups: i === 0 ? [g1, g2] : [], home, shell: '/bin/bash' };
    passwd += `${n}:x:${uid}:${uid}:test user:${home}:/bin/bash\n`;
    group += `${n}:x:${uid}:\n`;
  });
  const passwdPath = join(dir, 'passwd');
  const groupPath = join(dir, 'group');
  writeFileSync(passwdPath, passwd);
  writeFileSync(groupPath, group);

  const keys: Record<string, string> = {};
  const keyDir = join(dir, 'client');
  mkdirSync(keyDir, { mode: 0o700 });
  for (const [name, [type, bits]] of Object.entries(opts.keyTypes ?? { ed25519: ['ed25519'] })) {
    keys[name] = clientKey(keyDir, name, type, bits);
  }
  return { dir, configDir, configPath, users, passwd: passwdPath, group: groupPath, keys };
}

/** Writes ~user/.ssh/authorized_keys (owned by the user, mode 0600). */
export function authorize(world: World, user: string, lines: string[]): void {
  const u = world.users[user]!;
  const path = join(u.home, '.ssh', 'authorized_keys');
  writeFileSync(path, lines.join('\n') + '\n', { mode: 0o600 });
  for (const p of [u.home, join(u.home, '.ssh'), path]) chownSync(p, u.uid, u.gid);
  chmodSync(join(u.home, '.ssh'), 0o700);
}

export function keyLine(world: World, key: string, options = ''): string {
  return `${options ? options + ' ' : ''}${publicKey(world.keys[key]!)}`;
}

export interface Server {
  port: number;
  proc: ChildProcess;
  output(): string;
  events(): Record<string, unknown>[];
  stop(): Promise<void>;
}

function inNamespace(world: World, argv: string[]): string[] {
  const script = 'mount --bind "$1" /etc/passwd && mount --bind "$2" /etc/group && shift 2 && exec "$@"';
  return ['unshare', '--mount', '--propagation', 'private', '--', '/bin/sh', '-c', script, 'sh', world.passwd, world.group, ...argv];
}

async function waitForPort(port: number, proc: ChildProcess, out: () => string): Promise<void> {
  const deadline = Date.now() + 15000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`server exited ${proc.exitCode}: ${out()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 30));
  }
  throw new Error(`server did not listen on ${port}: ${out()}`);
}

export type Activation = 'serve' | 'socket-activate' | 'inetd';

/**
 * Starts lukko for `world`. `serve` probes the port once (a connect-and-close, which must
 * itself be harmless); `socket-activate` waits for systemd-socket-activate's listener.
 */
export async function startServer(world: World, opts: { activation?: Activation; logLevel?: string; env?: Record<string, string> } = {}): Promise<Server> {
  const port = await freePort();
  const level = opts.logLevel ?? 'debug';
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', NODE_COMPILE_CACHE: join(ROOT, 'node_modules/.cache/lukko-compile'), ...opts.env };
  let argv: string[];
  if ((opts.activation ?? 'serve') === 'serve') {
    argv = [NODE, MAIN, 'serve', '--config', world.configPath, '--listen', `127.0.0.1:${port}`, '--log-level', level];
  } else {
    const envArgs = Object.entries(env).flatMap(([k, v]) => ['-E', `${k}=${v}`]);
    // --inetd: the connection on stdin and stdout (StandardInput=socket), not as fd 3
    const inetd = opts.activation === 'inetd' ? ['--inetd'] : [];
    argv = ['systemd-socket-activate', '--accept', ...inetd, '-l', `127.0.0.1:${port}`, ...envArgs, NODE, MAIN, 'connection', '--config', world.configPath, '--log-level', level];
  }
  const proc = spawn(inNamespace(world, argv)[0]!, inNamespace(world, argv).slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  await waitForPort(port, proc, () => out);
  const server: Server = {
    port,
    proc,
    output: () => out,
    events: () =>
      out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => {
          try {
            return JSON.parse(l) as Record<string, unknown>;
          } catch {
            return {};
          }
        }),
    stop: () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
        setTimeout(() => proc.kill('SIGKILL'), 3000).unref();
      }),
  };
  // The port probe was a connection too; under `serve` wait for its process to finish so
  // tests counting exits start from a quiet server.
  if ((opts.activation ?? 'serve') === 'serve' && level === 'debug') {
    for (let i = 0; i < 400 && childExits(server).length === 0; i++) await new Promise((r) => setTimeout(r, 25));
  }
  return server;
}

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export function sshArgs(port: number, key: string | undefined, user: string, extra: string[] = []): string[] {
  return [
    '-F', '/dev/null', '-p', String(port),
    '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'StrictHostKeyChecking=no',
    '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', 'ConnectTimeout=10',
    ...(key ? ['-i', key] : ['-o', 'IdentityFile=/dev/null']),
    ...extra,
    `${user}@127.0.0.1`,
  ];
}

/** Options for sftp and scp (-P for the port, no destination). */
export function copyArgs(port: number, key: string): string[] {
  return sshArgs(port, key, 'x').slice(0, -1).map((a, i, all) => (a === '-p' && all[i + 1] === String(port) ? '-P' : a));
}

/** Runs a client program to completion (async, so servers in this process keep running). */
export function run(cmd: string, args: string[], opts: { input?: string | Buffer; timeout?: number; env?: NodeJS.ProcessEnv } = {}): Promise<Result> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const p = spawn(cmd, args, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.stderr.on('data', (d: Buffer) => err.push(d));
    const timer = setTimeout(() => p.kill('SIGKILL'), opts.timeout ?? 30000);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out).toString('latin1'), stderr: Buffer.concat(err).toString(), ms: Date.now() - t0 });
    });
    p.stdin.on('error', () => {});
    p.stdin.end(opts.input);
  });
}

export function ssh(server: Server, key: string | undefined, user: string, command: string[] = [], opts: { extra?: string[]; input?: string | Buffer; timeout?: number } = {}): Promise<Result> {
  return run('ssh', [...sshArgs(server.port, key, user, opts.extra), ...command], opts);
}

export function cleanup(world: World): void {
  rmSync(world.dir, { recursive: true, force: true });
}


/** Waits until every per-connection process `lukko serve` started has exited. */
export async function settled(server: Server, ms = 15000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const ev = server.events();
    const started = ev.filter((e) => e.msg === 'connection process started').length;
    if (started === childExits(server).length) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('per-connection processes still running');
}

/** Exit codes of finished per-connection processes under `lukko serve` (debug log). */
export function childExits(server: Server): number[] {
  return server
    .events()
    .filter((e) => e.msg === 'connection process exited' || e.msg === 'connection process failed')
    .map((e) => e.code as number);
}
