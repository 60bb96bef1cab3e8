// The translation server's sockets: AF_UNIX stream listeners (a path, an abstract name, or
// sockets systemd passed), one or more sequential LOGIN requests per connection, one response
// each. A connection that sends something else is closed with a log line; nothing a client
// does ends the server.

import { mkdir, unlink } from 'node:fs/promises';
import net from 'node:net';
import { dirname } from 'node:path';
import type { Logger } from '../log/logger.ts';
import { UnixPathError, localSocketPath, prepareUnixPath } from '../net/unix-socket.ts';
import { verifyPassword } from './password-hash.ts';
import { MAX_REQUEST_BYTES, RequestError, frameRequest, parseLoginRequest } from './request.ts';
import type { ParsedLoginRequest } from './request.ts';
import { NO_PASSWORD_SET, NO_SUCH_USER, WRONG_PASSWORD, buildRejection } from './response-builder.ts';
import type { UsersFile } from './users-file.ts';

/** A request must be complete this long after the connection opened or the last response. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

/** Far above what lukko needs (one short connection per login attempt); caps memory under a flood. */
export const MAX_CONNECTIONS = 1024;

export type Outcome =
  | 'account' // no PASSWORD: the account data
  | 'password-accepted'
  | 'password-not-needed' // a PASSWORD for a no_password account without a hash
  | 'no-such-user'
  | 'wrong-password'
  | 'no-password-set'
  | 'unsupported-service';

export interface Answer {
  readonly response: Buffer;
  readonly outcome: Outcome;
}

export interface TranslationServerOptions {
  readonly log: Logger;
  readonly users: UsersFile;
  readonly requestTimeoutMs?: number;
  readonly maxRequestBytes?: number;
}

export class ListenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ListenError';
  }
}

export class TranslationServer {
  readonly #log: Logger;
  readonly #users: UsersFile;
  readonly #timeoutMs: number;
  readonly #maxBytes: number;
  readonly #servers: net.Server[] = [];
  readonly #sockets = new Set<net.Socket>();
  /** Socket files this process created and removes again. */
  readonly #paths: string[] = [];
  #connections = 0;

  constructor(options: TranslationServerOptions) {
    this.#log = options.log;
    this.#users = options.users;
    this.#timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.#maxBytes = options.maxRequestBytes ?? MAX_REQUEST_BYTES;
  }

  /** The answer to one well-formed request. Every PASSWORD request costs exactly one scrypt. */
  async answer(request: ParsedLoginRequest): Promise<Answer> {
    await this.#users.refresh();
    const users = this.#users.current;
    if (request.service !== 'ssh') {
      return { response: buildRejection(400, 'Unsupported SERVICE'), outcome: 'unsupported-service' };
    }
    const entry = users.accounts.get(request.user);
    const { password } = request;
    if (password === undefined) {
      // An account lookup (publickey, none, …): never a rejection for an existing account,
      // lukko checks keys and NO_PASSWORD itself.
      return entry === undefined ? { response: NO_SUCH_USER, outcome: 'no-such-user' } : { response: entry.response, outcome: 'account' };
    }
    if (entry === undefined) {
      await verifyPassword(users.dummy, password);
      return { response: NO_SUCH_USER, outcome: 'no-such-user' };
    }
    const hash = entry.account.password;
    if (hash !== undefined) {
      return (await verifyPassword(hash, password))
        ? { response: entry.response, outcome: 'password-accepted' }
        : { response: WRONG_PASSWORD, outcome: 'wrong-password' };
    }
    await verifyPassword(users.dummy, password);
    // NO_PASSWORD already lets every method but publickey in: a password changes nothing.
    if (entry.account.noPassword !== undefined) return { response: entry.response, outcome: 'password-not-needed' };
    return { response: NO_PASSWORD_SET, outcome: 'no-password-set' };
  }

  #server(): net.Server {
    const server = net.createServer({ allowHalfOpen: true }, (socket) => this.#handle(socket));
    server.maxConnections = MAX_CONNECTIONS;
    server.on('error', (e) => this.#log.error({ error: e.message }, 'listener error'));
    server.on('drop', () => this.#log.warn({ max: MAX_CONNECTIONS }, 'too many connections; one was dropped'));
    this.#servers.push(server);
    return server;
  }

  /** Listens on a socket systemd passed (Accept=no: a listening socket). */
  listenFd(fd: number): Promise<void> {
    const server = this.#server();
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ fd }, () => {
        server.off('error', reject);
        resolve();
      });
    });
  }

  /**
   * Listens on a path (mode 0600, parent directories created, a stale socket file of a
   * server that is gone replaced) or on an abstract name (`@name`).
   */
  async listen(listen: string): Promise<void> {
    if (listen === '' || listen === '@') throw new ListenError('empty --listen');
    const path = localSocketPath(listen);
    if (Buffer.byteLength(path) > 107) throw new ListenError(`socket name ${listen} is longer than 107 bytes`);
    const abstract = path.startsWith('\0');
    if (!abstract) {
      await mkdir(dirname(path), { recursive: true, mode: 0o755 });
      await this.#removeStale(path);
    }
    const server = this.#server();
    // 0600 from the start: lukko runs as root, nobody else has any business here.
    const umask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ path }, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new ListenError(`cannot listen on ${listen}: ${code === 'EADDRINUSE' ? 'another process listens there' : (e as Error).message}`);
    } finally {
      process.umask(umask);
    }
    if (!abstract) this.#paths.push(path);
  }

  async #removeStale(path: string): Promise<void> {
    try {
      await prepareUnixPath(path);
    } catch (e) {
      if (!(e instanceof UnixPathError)) throw e;
      throw new ListenError(e.reason === 'in-use' ? `another process listens on ${path}` : e.message);
    }
  }

  /** Stops listening, closes every connection and removes the socket files it made. */
  async close(): Promise<void> {
    await Promise.all(this.#servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))).concat(
      [...this.#sockets].map(async (s) => void s.destroy()),
    ));
    for (const path of this.#paths.splice(0)) await unlink(path).catch(() => {});
  }

  #handle(socket: net.Socket): void {
    const conn = ++this.#connections;
    const log = this.#log.child({ conn });
    this.#sockets.add(socket);
    let buffer: Buffer = Buffer.alloc(0);
    let busy = false;
    let ended = false;
    let timer: NodeJS.Timeout | undefined;

    const close = (level: 'debug' | 'warn', msg: string, extra: Record<string, unknown> = {}): void => {
      log[level](extra, msg);
      socket.destroy();
    };
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        if (buffer.length > 0) close('warn', 'request incomplete in time; connection closed', { ms: this.#timeoutMs, bytes: buffer.length });
        else close('debug', 'idle connection closed', { ms: this.#timeoutMs });
      }, this.#timeoutMs);
    };
    arm();

    const work = async (): Promise<void> => {
      busy = true;
      try {
        while (!socket.destroyed) {
          const frame = frameRequest(buffer, this.#maxBytes);
          if (frame.kind === 'need-more') break;
          if (frame.kind === 'malformed') return close('warn', 'malformed request; connection closed', { reason: frame.error.message });
          clearTimeout(timer);
          buffer = buffer.subarray(frame.size);
          let request: ParsedLoginRequest;
          try {
            request = parseLoginRequest(frame.packets);
          } catch (e) {
            if (e instanceof RequestError) return close('warn', 'malformed request; connection closed', { reason: e.message });
            throw e;
          }
          const t0 = performance.now();
          socket.pause();
          const { response, outcome } = await this.answer(request);
          if (socket.destroyed) return;
          socket.write(response);
          log.info({
            user: request.user,
            ...(request.listenerTag === undefined ? {} : { tag: request.listenerTag }),
            ...(request.service === 'ssh' ? {} : { service: request.service }),
            password: request.password !== undefined,
            ...(request.peek ? { peek: true } : {}),
            outcome,
            ms: Math.round(performance.now() - t0),
          }, 'login request');
          arm();
          socket.resume();
        }
        if (ended) {
          if (buffer.length > 0) log.warn({ bytes: buffer.length }, 'connection ended inside a request');
          clearTimeout(timer);
          socket.end();
        }
      } catch (e) {
        close('warn', 'request failed; connection closed', { error: e instanceof Error ? e.message : String(e) });
      } finally {
        busy = false;
      }
    };

    socket.on('data', (chunk: Buffer) => {
      buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
      if (!busy) void work();
    });
    socket.on('end', () => {
      ended = true;
      if (!busy) void work();
    });
    socket.on('error', (e) => log.debug({ error: e.message }, 'connection error'));
    socket.on('close', () => {
      clearTimeout(timer);
      this.#sockets.delete(socket);
    });
  }
}
