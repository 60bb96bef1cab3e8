// `lukko serve`: the embedded default. Accepts on its own sockets and hands each connection
// to a `lukko connection` child exactly as systemd's Accept=yes does: the socket as fd 3,
// LISTEN_FDS=1, LISTEN_PID (the child's own pid, set by a one-line sh exec so it is right
// from the first instruction), LISTEN_FDNAMES=connection, REMOTE_ADDR and REMOTE_PORT.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../log/logger.ts';
import { writeMissingHostKeys } from '../ssh/keygen.ts';

const MAX_CHILDREN = 256;

export interface ServeOptions {
  log: Logger;
  configPath?: string;
  listen: string[]; // host:port, [v6]:port
  stateDir?: string;
  logLevel?: string;
}

export function parseListen(spec: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(spec) ?? /^([^:]*):(\d+)$/.exec(spec);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) throw new Error(`--listen: expected HOST:PORT or [V6]:PORT, got "${spec}"`);
  return { host: m[1] === '*' || m[1] === '' ? '::' : m[1]!, port: Number(m[2]) };
}

/** With --state-dir and no --config: a config and host keys of its own, made once. */
export function prepareStateDir(dir: string, listen: string[]): string {
  const abs = resolve(dir);
  mkdirSync(abs, { recursive: true, mode: 0o700 });
  writeMissingHostKeys(abs, ['ed25519', 'ecdsa']);
  const conf = join(abs, 'lukko.conf');
  if (!existsSync(conf)) {
    const binds = listen.map((l) => `listener {\n  bind "${l}"\n}\n`).join('\n');
    writeFileSync(conf, `# Made by "lukko serve --state-dir"; edit freely.\n${binds}`);
  }
  return conf;
}

export function serve(opts: ServeOptions): Promise<void> {
  const mainJs = fileURLToPath(new URL('../cli/main.js', import.meta.url));
  const configPath = opts.configPath ?? (opts.stateDir ? prepareStateDir(opts.stateDir, opts.listen) : undefined);
  const childArgs = ['connection', ...(configPath ? ['--config', configPath] : []), ...(opts.logLevel ? ['--log-level', opts.logLevel] : [])];
  const baseEnv: NodeJS.ProcessEnv = { ...process.env };
  if (!baseEnv.NODE_COMPILE_CACHE && opts.stateDir) baseEnv.NODE_COMPILE_CACHE = join(resolve(opts.stateDir), 'compile-cache');
  let children = 0;

  const onConnection = (socket: net.Socket) => {
    if (children >= MAX_CHILDREN) {
      opts.log.warn({ client: socket.remoteAddress }, 'too many connections, refused');
      socket.destroy();
      return;
    }
    const env = {
      ...baseEnv,
      LISTEN_FDS: '1',
      LISTEN_FDNAMES: 'connection',
      REMOTE_ADDR: socket.remoteAddress ?? '',
      REMOTE_PORT: String(socket.remotePort ?? ''),
    };
    const child = spawn('/bin/sh', ['-c', 'LISTEN_PID=$$ exec "$0" "$@"', process.execPath, mainJs, ...childArgs], {
      stdio: ['ignore', 'inherit', 'inherit', socket],
      env,
    });
    children++;
    opts.log.debug({ child: child.pid, client: env.REMOTE_ADDR }, 'connection process started');
    // The child holds its own copy of the fd; ours must go without shutting the connection.
    socket.destroy();
    child.on('error', (err) => opts.log.error({ err: err.message }, 'could not start connection process'));
    child.on('exit', (code, signal) => {
      children--;
      // systemd would show a failed unit; say it as loudly
      if (code !== 0) opts.log.warn({ child: child.pid, code, signal }, 'connection process failed');
      else opts.log.debug({ child: child.pid, code }, 'connection process exited');
    });
  };

  return new Promise((resolveDone, reject) => {
    const servers = opts.listen.map((spec) => {
      const { host, port } = parseListen(spec);
      const server = net.createServer({ pauseOnConnect: true }, onConnection);
      server.on('error', reject);
      server.listen({ host, port, ipv6Only: false }, () => {
        opts.log.info({ listen: spec, config: configPath }, 'listening');
      });
      return server;
    });
    const stop = () => {
      for (const s of servers) s.close();
      resolveDone();
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}
