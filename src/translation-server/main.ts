// `lukko translation-server` and `lukko translation-server hash-password`
// (docs/translation-server.md).

import net from 'node:net';
import { EXIT_CONFIG } from '../exit-codes.ts';
import { chooseLogMode, createLogger } from '../log/logger.ts';
import { takeListenFds } from '../systemd/listen-fds.ts';
import { notifyReady, notifyStatus } from '../systemd/notify.ts';
import { MAX_LOGIN_FIELD } from '../translation/login-request.ts';
import { DEFAULT_PARAMS, PasswordHashError, hashPassword, parseParams } from './password-hash.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS, ListenError, TranslationServer } from './server.ts';
import { UserDbError } from './user-db.ts';
import { UsersFile } from './users-file.ts';
import type { LoadedUsers } from './users-file.ts';

export const DEFAULT_USERS_PATH = '/etc/cm4all/lukko/users.ini';
export const DEFAULT_LISTEN = '/run/lukko/translation.socket';

export interface ServerCommandOptions {
  readonly users: string;
  readonly listen: string;
  /** --listen was on the command line (it is ignored when systemd passes sockets). */
  readonly listenGiven: boolean;
  readonly logLevel: string;
  /** Seconds a connection may take to send a complete request. */
  readonly requestTimeout?: number;
}

function fail(message: string, code = EXIT_CONFIG): never {
  for (const line of message.split('\n')) process.stderr.write(`lukko translation-server: ${line}\n`);
  process.exit(code);
}

export async function runTranslationServer(o: ServerCommandOptions): Promise<void> {
  const log = createLogger({ fd: 1, mode: chooseLogMode(1, process.env, !!process.stdout.isTTY), level: o.logLevel });
  const activation = takeListenFds();
  if (activation.kind === 'error') fail(activation.message);

  const status = (users: LoadedUsers): void => notifyStatus(`${users.accounts.size} accounts from ${o.users}`);
  let users: UsersFile;
  try {
    users = await UsersFile.open(o.users, log, status);
  } catch (e) {
    const message = e instanceof UserDbError ? e.message : `cannot read the user file: ${e instanceof Error ? e.message : String(e)}`;
    // Hang up on the connection that made systemd start us: left in the queue, it would start
    // the service again at once, until systemd's start limit fails the socket for good.
    if (activation.kind === 'fds') await hangUpPending(activation.fds.map((f) => f.fd));
    fail(message);
  }

  const timeout = o.requestTimeout ?? DEFAULT_REQUEST_TIMEOUT_MS / 1000;
  if (!(timeout > 0 && timeout <= 3600)) fail(`--request-timeout ${timeout} is not between 0 and 3600 seconds`);
  const server = new TranslationServer({ log, users, requestTimeoutMs: timeout * 1000 });
  let where: string[];
  try {
    if (activation.kind === 'fds') {
      for (const { fd } of activation.fds) await server.listenFd(fd);
      where = activation.fds.map((f) => `fd ${f.fd} (${f.name})`);
      if (o.listenGiven) log.info({ listen: o.listen }, 'systemd passed the listening socket; --listen is not used');
    } else {
      await server.listen(o.listen);
      where = [o.listen];
    }
  } catch (e) {
    if (e instanceof ListenError || (e as NodeJS.ErrnoException).code !== undefined) fail((e as Error).message);
    throw e;
  }

  process.on('SIGHUP', () => void users.refresh(true));
  const stop = (signal: string): void => {
    log.info({ signal }, 'translation server stopping');
    void server.close().then(() => process.exit(0));
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));

  log.info({ users: o.users, accounts: users.current.accounts.size, listen: where }, 'translation server ready');
  status(users.current);
  notifyReady();
}

/** Accepts and closes whatever waits on the listening sockets `fds`. */
async function hangUpPending(fds: number[]): Promise<void> {
  const servers = fds.map((fd) => net.createServer((s) => s.destroy()).on('error', () => {}).listen({ fd }));
  await new Promise((resolve) => setTimeout(resolve, 100));
  for (const s of servers) s.close();
}

// ---------------------------------------------------------------- hash-password

/** Reads one line without echo from the terminal on stdin; the prompt goes to stderr. */
function readHidden(prompt: string): Promise<Buffer> {
  const stdin = process.stdin;
  // Raw (and so without echo) before the prompt shows: nothing typed after it is echoed.
  stdin.setRawMode(true);
  process.stderr.write(prompt);
  return new Promise((resolve, reject) => {
    let bytes: number[] = [];
    const done = (error?: Error): void => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
      if (error) reject(error);
      else resolve(Buffer.from(bytes));
    };
    const onData = (chunk: Buffer): void => {
      for (const b of chunk) {
        if (b === 0x0d || b === 0x0a) return done();
        if (b === 0x03) return done(new Error('interrupted'));
        if (b === 0x04) {
          if (bytes.length === 0) return done(new Error('no password (end of input)'));
          return done();
        }
        if (b === 0x15) {
          bytes = []; // Ctrl-U
        } else if (b === 0x7f || b === 0x08) {
          // one UTF-8 character back: continuation bytes, then its first byte
          while (bytes.length > 0 && (bytes[bytes.length - 1]! & 0xc0) === 0x80) bytes.pop();
          bytes.pop();
        } else {
          bytes.push(b);
        }
      }
    };
    stdin.on('data', onData);
    stdin.resume();
  });
}

async function readPiped(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    chunks.push(chunk as Buffer);
    size += (chunk as Buffer).length;
    if (size > 65536) throw new Error('more than 64 KiB on stdin');
  }
  let data = Buffer.concat(chunks);
  if (data.at(-1) === 0x0a) data = data.subarray(0, data.at(-2) === 0x0d ? -2 : -1);
  if (data.includes(0x0a) || data.includes(0x0d)) throw new Error('stdin holds more than one line; give the password alone');
  return data;
}

/** Why lukko could never send this password, or undefined. */
export function passwordProblem(password: Buffer): string | undefined {
  if (password.length === 0) return 'empty password (lukko never asks about an empty one)';
  if (password.length > MAX_LOGIN_FIELD) return `longer than ${MAX_LOGIN_FIELD} bytes (lukko refuses longer passwords)`;
  if (password.includes(0)) return 'contains a NUL byte';
  return undefined;
}

export async function runHashPassword(o: { params?: string | undefined }): Promise<void> {
  let params = DEFAULT_PARAMS;
  if (o.params !== undefined) {
    try {
      params = parseParams(o.params);
    } catch (e) {
      if (e instanceof PasswordHashError) fail(`--params: ${e.message}`, 1);
      throw e;
    }
  }
  let password: Buffer;
  try {
    if (process.stdin.isTTY) {
      password = await readHidden('Password: ');
      const again = await readHidden('Again: ');
      if (!password.equals(again)) fail('the passwords differ', 1);
    } else {
      password = await readPiped();
    }
  } catch (e) {
    fail(e instanceof Error ? e.message : String(e), 1);
  }
  const problem = passwordProblem(password);
  if (problem !== undefined) fail(problem, 1);
  process.stdout.write(`${await hashPassword(password, params)}\n`);
}
