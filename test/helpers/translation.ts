// Translation-server helpers for integration tests: a scripted raw-bytes server (the test
// decides exactly which bytes answer each request, malformed ones included) and a password
// login through the real OpenSSH client with SSH_ASKPASS.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { localSocketPath } from '../../src/net/unix-socket.ts';
import { decodePacket } from '../../src/translation/codec.ts';
import { TranslationCommand } from '../../src/translation/commands.ts';
import type { Result, Server, World } from './fixture.ts';
import { MAIN, NODE, ROOT, run, sshArgs } from './fixture.ts';

/** How the scripted server answers one request. */
export type Answer =
  | Buffer // these bytes, then close
  | { chunks: Buffer[]; thenClose?: boolean } // written one by one (with a tick between)
  | 'hang' // read the request, never answer, keep the connection open
  | 'close'; // close without a byte

export interface ScriptedServer {
  address: string;
  /** Every request received, as raw bytes. */
  requests: Buffer[];
  /** The answer for the next requests; a function sees the request's packets. */
  answer: Answer | ((packets: { command: number; payload: Buffer }[]) => Answer);
  close(): Promise<void>;
}

function packetsOf(bytes: Buffer): { packets: { command: number; payload: Buffer }[]; complete: boolean; used: number } {
  const packets: { command: number; payload: Buffer }[] = [];
  let offset = 0;
  for (;;) {
    const d = decodePacket(bytes, offset);
    if (d.kind === 'need-more') return { packets, complete: false, used: offset };
    packets.push(d.packet);
    offset = d.next;
    if (d.packet.command === TranslationCommand.END) return { packets, complete: true, used: offset };
  }
}

/** Listens on `address` (a path, or `@name` for an abstract socket). */
export function scriptedServer(address: string): Promise<ScriptedServer> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buf = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const { packets, complete, used } = packetsOf(buf);
      if (!complete) return;
      const request = buf.subarray(0, used);
      buf = buf.subarray(used);
      scripted.requests.push(Buffer.from(request));
      const a = typeof scripted.answer === 'function' ? scripted.answer(packets) : scripted.answer;
      if (a === 'hang') return;
      if (a === 'close') return void socket.end();
      if (Buffer.isBuffer(a)) return void socket.end(a);
      let i = 0;
      const next = (): void => {
        if (socket.destroyed) return;
        const chunk = a.chunks[i++];
        if (chunk === undefined) {
          if (a.thenClose !== false) socket.end();
          return;
        }
        socket.write(chunk, () => setTimeout(next, 20));
      };
      next();
    });
  });
  const scripted: ScriptedServer = {
    address,
    requests: [],
    answer: 'close',
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(localSocketPath(address), () => resolve(scripted));
  });
}

/**
 * `ssh` with password authentication only, the password given by an SSH_ASKPASS script as
 * a person would type it. One prompt: a wrong password ends the attempt.
 */
export function sshPassword(server: Server, dir: string, user: string, password: string, command: string[], extra: string[] = []): Promise<Result> {
  const askpass = join(dir, `askpass-${Math.random().toString(36).slice(2)}`);
  writeFileSync(askpass, `#!/bin/sh\nprintf '%s\\n' '${password.replace(/'/g, `'\\''`)}'\n`);
  chmodSync(askpass, 0o700);
  const args = sshArgs(server.port, undefined, user, [
    '-o', 'PreferredAuthentications=password', '-o', 'PubkeyAuthentication=no', '-o', 'NumberOfPasswordPrompts=1', ...extra,
  ]).map((a) => (a === 'BatchMode=yes' ? 'BatchMode=no' : a));
  return run('setsid', ['-w', 'ssh', ...args, ...command], {
    env: { ...process.env, SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: ':0' },
  });
}

/** `lukko translation-server --users FILE --listen ADDR` (the built dist/), once it listens. */
export function startTranslationServer(users: string, listen: string): Promise<{ proc: ChildProcess; out: () => string }> {
  const proc = spawn(NODE, [MAIN, 'translation-server', '--users', users, '--listen', listen, '--log-level', 'debug'], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NODE_COMPILE_CACHE: join(ROOT, 'node_modules/.cache/lukko-compile') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + 15000;
    const poll = setInterval(() => {
      const ready = listen.startsWith('@') ? /listening|ready/i.test(out) : existsSync(listen);
      if (ready) {
        clearInterval(poll);
        resolve({ proc, out: () => out });
      } else if (proc.exitCode !== null || Date.now() > deadline) {
        clearInterval(poll);
        reject(new Error(`translation server did not start: ${out}`));
      }
    }, 25);
  });
}

/**
 * Makes `world`'s accounts come from a real translation server: writes `users` as its
 * users.ini (mode 0600), starts it on a socket in the world's directory, and points lukko.conf
 * at it (one listener on 127.0.0.1:22; `listener` adds lines to that block).
 */
export async function useTranslationServer(world: World, users: string, listener = ''): Promise<{ proc: ChildProcess; out: () => string; socket: string }> {
  const file = join(world.dir, 'users.ini');
  writeFileSync(file, users, { mode: 0o600 });
  const socket = join(world.dir, 'translation.socket');
  const started = await startTranslationServer(file, socket);
  writeFileSync(world.configPath, `translation_server "${socket}"\nlistener {\n  bind "127.0.0.1:22"\n${listener}}\n`);
  return { ...started, socket };
}
