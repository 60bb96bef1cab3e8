// `lukko connection`: the per-connection entry for lukko@.service (and for `lukko serve`'s
// children). Imports only what one connection needs; no yargs here (design.md).
import { fstatSync } from 'node:fs';
import net from 'node:net';
import { parseArgs } from 'node:util';
import { ConfigError, DEFAULT_CONFIG_PATH, loadConfig, selectListener } from '../config/index.ts';
import { EXIT_CONFIG, EXIT_OK, EXIT_SOFTWARE } from '../exit-codes.ts';
import type { Logger } from '../log/logger.ts';
import { chooseLogMode, createLogger } from '../log/logger.ts';
import { HostKeyError, loadHostKeys } from '../ssh/host-keys.ts';
import { takeListenFds } from '../systemd/listen-fds.ts';
import { companionSocketPath } from './companion-link.ts';
import { Connection } from './connection.ts';
import { unsupportedSettings } from './unsupported.ts';
import { mayHaveOwnUnit, resourceProperties } from '../spawn/unit-limits.ts';

function sameSocket(a: number, b: number): boolean {
  try {
    const x = fstatSync(a);
    const y = fstatSync(b);
    return x.dev === y.dev && x.ino === y.ino;
  } catch {
    return false;
  }
}

function isSocket(fd: number): boolean {
  try {
    return fstatSync(fd).isSocket();
  } catch {
    return false;
  }
}

/** Which fd is the connection: systemd's LISTEN_FDS (fd 3) or a socket on stdin. */
function connectionFd(): { fd: number } | { error: string } {
  const r = takeListenFds();
  if (r.kind === 'error') return { error: r.message };
  if (r.kind === 'fds') {
    if (r.fds.length !== 1) return { error: `expected exactly one socket from systemd, got ${r.fds.length} (use Accept=yes)` };
    return { fd: r.fds[0]!.fd };
  }
  if (isSocket(0)) return { fd: 0 }; // StandardInput=socket
  return { error: 'no connection: neither LISTEN_FDS nor a socket on standard input' };
}

function fatal(log: Logger | undefined, code: number, message: string): never {
  // stderr too: for a terminal, and under systemd for `systemctl status` (as an error).
  const prefix = process.env.JOURNAL_STREAM || process.env.INVOCATION_ID ? '<3>' : '';
  process.stderr.write(`${prefix}lukko: ${message}\n`);
  log?.fatal({ exit: code }, message);
  process.exit(code);
}

export function main(argv: string[]): void {
  const { values } = parseArgs({
    args: argv,
    options: { config: { type: 'string' }, 'log-level': { type: 'string' } },
    strict: true,
  });
  const conn = connectionFd();
  // With StandardInput=socket stdout may be the client's socket too: never log into it.
  const logFd = 'fd' in conn && conn.fd === 0 ? [1, 2].find((fd) => !sameSocket(fd, 0)) ?? -1 : 1;
  const log = createLogger({
    fd: logFd,
    mode: chooseLogMode(logFd, process.env, logFd >= 0 && !!process.stdout.isTTY),
    level: values['log-level'] ?? process.env.LUKKO_LOG_LEVEL ?? 'info',
  });
  process.on('uncaughtException', (err) => {
    log.fatal({ err }, 'bug: uncaught exception');
    process.exit(EXIT_SOFTWARE);
  });
  process.on('unhandledRejection', (err) => {
    log.fatal({ err }, 'bug: unhandled rejection');
    process.exit(EXIT_SOFTWARE);
  });
  if ('error' in conn) fatal(log, EXIT_CONFIG, conn.error);

  const configPath = values.config ?? DEFAULT_CONFIG_PATH;
  let config;
  try {
    config = loadConfig(configPath);
  } catch (e) {
    if (e instanceof ConfigError) fatal(log, EXIT_CONFIG, e.message);
    throw e;
  }
  const socket = new net.Socket({ fd: conn.fd, readable: true, writable: true });
  // ssh2 never sets it; Nagle costs ~80 ms per login (spec/dependencies.md 0.2).
  socket.setNoDelay(true);
  const local =
    socket.localAddress !== undefined
      ? { address: socket.localAddress, port: socket.localPort ?? 0, family: socket.localFamily }
      : { path: '' };
  const { listener } = selectListener(config.listeners, local);
  const unsupported = unsupportedSettings(config, listener, { unitLimits: mayHaveOwnUnit() });
  if (unsupported.fatal.length) fatal(log, EXIT_CONFIG, unsupported.fatal.join('; '));
  for (const message of unsupported.ignored) log.warn(message);
  let hostKeys;
  try {
    hostKeys = loadHostKeys(config.configDir, listener.hostKeyFiles);
  } catch (e) {
    if (e instanceof HostKeyError) fatal(log, EXIT_CONFIG, e.message);
    throw e;
  }
  const companionSocket = companionSocketPath();
  const connection = new Connection(socket, {
    log,
    configDir: config.configDir,
    listener,
    hostKeys,
    ...(config.translationServer ? { translationServer: config.translationServer } : {}),
    ...(process.env.LUKKO_TRANSLATION_TIMEOUT_MS ? { translationTimeoutMs: Number(process.env.LUKKO_TRANSLATION_TIMEOUT_MS) } : {}),
    // systemd's REMOTE_ADDR/REMOTE_PORT: a reset connection has no peer address left to ask
    remote: { address: process.env.REMOTE_ADDR, port: Number(process.env.REMOTE_PORT) || undefined },
    ...(companionSocket ? { companionSocket } : {}),
    unitLimits: resourceProperties(config.spawn.resources),
    exit: (code) => process.exit(code ?? EXIT_OK),
  });
  // `systemctl stop lukko@…` and shutdown: say goodbye and end the user's processes gently.
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.once(sig, () => void connection.stop(sig));
  connection.start();
}
