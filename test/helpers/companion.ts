// `lukko companion` as a process for integration tests, its /metrics, and control datagrams
// sent the way an operator would (python3 for AF_UNIX: Node has no AF_UNIX datagram sockets).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MAIN, NODE, ROOT, freePort } from './fixture.ts';

export interface Companion {
  proc: ChildProcess;
  out(): string;
  metricsPort: number;
  /** The report socket instances connect to (LUKKO_COMPANION_SOCKET). */
  socket: string;
  stop(): Promise<void>;
}

export interface Launched {
  proc: ChildProcess;
  out(): string;
  exited: Promise<number | null>;
}

/** `lukko companion` with exactly these files, once it says it is ready. */
export async function launchCompanion(o: { config: string; state: string; report: string; logLevel?: string }): Promise<Launched> {
  const proc = spawn(NODE, [MAIN, 'companion', '--config', o.config, '--state', o.state, '--report-socket', o.report, '--log-level', o.logLevel ?? 'info'], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NODE_COMPILE_CACHE: join(ROOT, 'node_modules/.cache/lukko-compile') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const deadline = Date.now() + 15_000;
  while (!out.includes('companion ready')) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`companion did not start: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return { proc, out: () => out, exited };
}

/** Starts a companion in `dir` with a TCP exporter and `extraConfig` (control blocks ...). */
export async function startCompanion(dir: string, name: string, extraConfig = '', logLevel = 'info'): Promise<Companion> {
  const metricsPort = await freePort();
  const config = join(dir, `${name}-companion.conf`);
  writeFileSync(config, `prometheus_exporter {\n  bind "127.0.0.1:${metricsPort}"\n}\n${extraConfig}`);
  const socket = join(dir, `${name}.socket`);
  const { proc, out } = await launchCompanion({ config, state: join(dir, `${name}-state.json`), report: socket, logLevel });
  return {
    proc,
    out,
    metricsPort,
    socket,
    stop: () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
      }),
  };
}

export async function scrape(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

export function sample(body: string, key: string): number {
  const line = body.split('\n').find((l) => l.startsWith(`${key} `));
  assert.ok(line, `no sample ${key}`);
  return Number(line.slice(key.length + 1));
}

// One sendto() is one datagram, whatever its size.
const SEND_UNIX = `
import socket, sys
t = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(bytes.fromhex(sys.argv[2]), ('\\0' + t[1:]) if t.startswith('@') else t)
`;

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')}: exit ${code}: ${err}`))));
  });
}

/** A datagram (hex) to an AF_UNIX control socket (`@name`: abstract), as root. */
export const sendUnix = (target: string, hex: string): Promise<void> => run('/usr/bin/python3', ['-c', SEND_UNIX, target, hex]);

/** The same from uid/gid 65534 (nobody), through util-linux setpriv. */
export const sendUnixAsNobody = (target: string, hex: string): Promise<void> =>
  run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--', '/usr/bin/python3', '-c', SEND_UNIX, target, hex]);

/** VERBOSE `level` as a control datagram (hex). */
export const verboseDatagram = (level: number): string => `6304610100010007${level.toString(16).padStart(2, '0')}000000`;

/** TERMINATE_CHILDREN `tag` as a control datagram (hex), payload padded to 4 bytes. */
export function terminateDatagram(tag: string): string {
  const p = Buffer.from(tag);
  const padded = Buffer.concat([p, Buffer.alloc((4 - (p.length % 4)) % 4)]);
  return `63046101${p.length.toString(16).padStart(4, '0')}0010${padded.toString('hex')}`;
}
