// Helpers for forwarding tests: background ssh forwards, waiting for ports, moving data
// through a tunnel, and looking at one lukko instance's memory from /proc.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import type { Server } from './fixture.ts';
import { sshArgs } from './fixture.ts';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** sshArgs with LogLevel=INFO: the client then prints allocated ports and why a channel failed. */
export function argsInfo(server: Server, key: string | undefined, user: string, extra: string[]): string[] {
  return sshArgs(server.port, key, user, extra).map((a) => (a === 'LogLevel=ERROR' ? 'LogLevel=INFO' : a));
}

/** ssh -N in the background; resolves once `ready` shows in stderr (or after ~0.5 s without one). */
export async function sshBackground(
  server: Server,
  key: string,
  user: string,
  extra: string[],
  ready?: RegExp,
): Promise<{ proc: ChildProcess; stderr: () => string }> {
  const proc = spawn('ssh', argsInfo(server, key, user, ['-N', ...extra]), { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  for (let i = 0; i < 200; i++) {
    if (ready ? ready.test(err) : i > 20) break;
    if (proc.exitCode !== null) break;
    await sleep(25);
  }
  return { proc, stderr: () => err };
}

/** Sends data through 127.0.0.1:port (or a socket path) and returns what comes back until EOF. */
export function roundTrip(target: { port: number } | { path: string }, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = 'path' in target ? net.connect({ path: target.path }) : net.connect({ host: '127.0.0.1', port: target.port });
    const got: Buffer[] = [];
    let n = 0;
    s.on('data', (d: Buffer) => {
      got.push(d);
      n += d.length;
      if (n >= data.length) s.end();
    });
    s.on('close', () => resolve(Buffer.concat(got)));
    s.on('error', reject);
    s.write(data);
  });
}

export async function waitPort(port: number): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(25);
  }
  throw new Error(`port ${port} never opened`);
}

/**
 * The pid of the instance that logged an event matching `pred` (waits for it); only events
 * from index `since` on count (ports are reused, so an older instance may match too).
 */
export async function instancePid(server: Server, pred: (e: Record<string, unknown>) => boolean, since = 0): Promise<number> {
  for (let i = 0; i < 400; i++) {
    const e = server.events().slice(since).find(pred);
    if (e && typeof e.pid === 'number') return e.pid;
    await sleep(25);
  }
  throw new Error('no instance logged the expected event');
}

/** Resident memory now and its high-water mark, in bytes (Linux /proc). */
export function memoryOf(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/**
 * Writes `chunk` to `s` again and again until `max` bytes are written or the stream has
 * not drained for `stallMs` (the other end holds it back). Returns the bytes written.
 */
export async function writeUntilStalled(s: NodeJS.WritableStream, chunk: Buffer, max: number, stallMs: number): Promise<number> {
  let written = 0;
  while (written < max) {
    written += chunk.length;
    if (s.write(chunk)) continue;
    const drained = await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => {
        s.removeListener('drain', onDrain);
        resolve(false);
      }, stallMs);
      const onDrain = (): void => {
        clearTimeout(t);
        resolve(true);
      };
      s.once('drain', onDrain);
    });
    if (!drained) break;
  }
  return written;
}

/** Reads `s` until it ends, counting bytes and checking each against the repeated `chunk`. */
export function readRepeated(s: net.Socket, chunk: Buffer): Promise<{ bytes: number; intact: boolean }> {
  return new Promise((resolve) => {
    let bytes = 0;
    let intact = true;
    s.on('data', (d: Buffer) => {
      for (let i = 0; i < d.length; ) {
        const at = (bytes + i) % chunk.length;
        const n = Math.min(d.length - i, chunk.length - at);
        if (intact && !d.subarray(i, i + n).equals(chunk.subarray(at, at + n))) intact = false;
        i += n;
      }
      bytes += d.length;
    });
    s.on('end', () => resolve({ bytes, intact }));
    s.on('error', () => resolve({ bytes, intact: false }));
    s.resume();
  });
}

/** Samples memoryOf(pid) until stopped or the process is gone; stop() gives the highest VmHWM seen. */
export function watchMemory(pid: number): { stop(): number } {
  let hwm = memoryOf(pid).hwm;
  const sample = (): void => {
    try {
      const now = memoryOf(pid).hwm;
      if (!Number.isNaN(now)) hwm = Math.max(hwm, now); // NaN: exiting, its memory is gone
    } catch {
      clearInterval(t); // exited
    }
  };
  const t = setInterval(sample, 20);
  return {
    stop: () => {
      clearInterval(t);
      sample();
      return hwm;
    },
  };
}
