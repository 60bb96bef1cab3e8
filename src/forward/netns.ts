// TCP forwarding for an account whose sessions live in a named network namespace
// (NETWORK_NAMESPACE_NAME): direct-tcpip connects and tcpip-forward listens inside that
// namespace, never in the host's. Node cannot setns(2), so every socket is made by
// lukko-netns (lukko-netns.c) after it joined /run/netns/NAME and dropped to the account;
// if it cannot join, the forward is refused (there is no fall-back to the host's network).
//
//   connect: one helper per channel; its stdin/stdout are the connection, fd 3 says
//            "ok" or "fail STAGE CODE" before any data, so the channel open is confirmed
//            or refused properly.
//   listen:  one helper per forward; fd 3 says "ok PORT". Each accepted connection comes
//            back to this process over an abstract Unix socket of its own, opened with
//            "TOKEN ID ADDR PORT\n" (the token, random per SSH connection and sent to the
//            helper on its stdin, keeps other local processes from posing as forwarded
//            peers: an abstract socket has no file permissions).
//
// Policy (permitopen, permitlisten, loopback only, limits) is decided by forwarding.ts
// before anything comes here. Both helpers relay with one bounded buffer per direction
// and Node side pipes with backpressure, so a stalled side never makes either buffer more.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import net from 'node:net';
import type { Duplex, Readable } from 'node:stream';
import type { Connection as SshClient, ServerChannel } from 'ssh2';
import type { Account } from '../auth/account.ts';
import type { Logger } from '../log/logger.ts';
import { builtHelper } from '../spawn/helper-path.ts';

const HEADER_MAX = 256;
const HEADER_TIMEOUT_MS = 10_000;

export interface NetnsHost {
  log: Logger;
  account: Account;
  client: SshClient;
  /** The namespace's name (/run/netns/NAME). */
  name: string;
  /** Takes one of the connection's forwarded-channel slots; false when none is left. */
  openChannel(): boolean;
  closedChannel(): void;
  /** forwarding.ts's splice: a channel and a socket joined until either ends. */
  splice(channel: Duplex, socket: Duplex, done: () => void): void;
  /** At most this many forwarded connections per listening forward at once. */
  maxChannels: number;
}

/** A listening forward inside the namespace. */
export interface NetnsListener {
  port: number;
  /** cancel-tcpip-forward: stop listening; connections already forwarded go on. */
  close(): void;
}

/** dist/forward/lukko-netns (LUKKO_NETNS overrides). */
export function lukkoNetnsPath(): string | undefined {
  return builtHelper('forward', 'lukko-netns', process.env.LUKKO_NETNS);
}

/** Pure: the helper's identity and namespace arguments for an account. */
export function helperArgs(account: Account, name: string): string[] {
  const groups = account.groups === 'nss' ? ['--init-groups', account.name] : ['--groups', account.groups.join(',')];
  return ['--netns', name, '--uid', String(account.uid), '--gid', String(account.gid), ...groups];
}

/** Pure: the helper's status line → ok (with the port, for listen) or why it failed. */
export function parseStatus(line: string | undefined, name: string): { ok: true; port?: number } | { ok: false; why: string } {
  if (line === undefined) return { ok: false, why: `network namespace ${name}: helper ended without an answer` };
  const f = line.split(' ');
  if (f[0] === 'ok' && f.length === 1) return { ok: true };
  if (f[0] === 'ok' && f.length === 2 && /^\d{1,5}$/.test(f[1]!)) return { ok: true, port: Number(f[1]) };
  if (f[0] === 'fail' && f.length === 3) {
    const [, stage, code] = f as [string, string, string];
    if (stage === 'netns') return { ok: false, why: `network namespace ${name}: cannot enter (${code})` };
    if (stage === 'connect' || stage === 'resolve') return { ok: false, why: `connect failed: ${code} (network namespace ${name})` };
    if (stage === 'listen') return { ok: false, why: `listen failed: ${code} (network namespace ${name})` };
    return { ok: false, why: `network namespace ${name}: ${stage} ${code}` };
  }
  return { ok: false, why: `network namespace ${name}: bad helper answer` };
}

/** The first line on a stream, or undefined at EOF/error before one. */
function firstLine(stream: Readable, done: (line: string | undefined) => void): void {
  let got = '';
  let finished = false;
  const finish = (line: string | undefined): void => {
    if (finished) return;
    finished = true;
    stream.removeAllListeners('data');
    stream.destroy();
    done(line);
  };
  stream.on('data', (d: Buffer) => {
    got += d.toString('latin1');
    const nl = got.indexOf('\n');
    if (nl >= 0) finish(got.slice(0, nl));
    else if (got.length > 128) finish('');
  });
  stream.once('end', () => finish(undefined));
  stream.once('error', () => finish(undefined));
  stream.once('close', () => finish(undefined)); // destroyed without an end: spawn failed
}

interface ListenEntry {
  bindAddr: string;
  port: number;
}

export class NetnsForwarding {
  private readonly host: NetnsHost;
  private readonly helpers = new Set<ChildProcess>();
  private readonly listens = new Map<string, ListenEntry>();
  private readonly token = randomBytes(24).toString('hex');
  private nextId = 1;
  private relay: { server: net.Server; name: string } | undefined;
  private ended = false;

  constructor(host: NetnsHost) {
    this.host = host;
  }

  get name(): string {
    return this.host.name;
  }

  private start(args: string[], stdio: ('pipe' | 'ignore')[]): ChildProcess | string {
    const path = lukkoNetnsPath();
    if (!path) return 'lukko-netns helper not found (run npm run build)';
    const child = spawn(path, [...helperArgs(this.host.account, this.host.name), ...args], { stdio: [...stdio, 'pipe'], env: {} });
    this.helpers.add(child);
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      if (stderr.length < 1000) stderr += d.toString();
    });
    child.once('error', () => this.helpers.delete(child));
    child.once('close', (code, signal) => {
      this.helpers.delete(child);
      if (stderr) this.host.log.warn({ netns: this.host.name, code, signal, stderr: stderr.trim() }, 'lukko-netns');
    });
    return child;
  }

  /**
   * direct-tcpip inside the namespace. `opened` runs once the connection stands and returns
   * the accepted channel (or undefined); `failed` refuses the channel open.
   */
  connect(host: string, port: number, opened: () => ServerChannel | undefined, failed: (why: string) => void): void {
    const child = this.start(['connect', host, String(port)], ['pipe', 'pipe', 'pipe']);
    if (typeof child === 'string') return failed(child);
    child.stdin!.on('error', () => undefined); // EPIPE after the helper ended: handled at close
    firstLine(child.stdio[3] as Readable, (line) => {
      const s = parseStatus(line, this.host.name);
      if (!s.ok) {
        child.kill('SIGKILL');
        return failed(s.why);
      }
      const channel = opened();
      if (!channel) {
        child.kill('SIGKILL');
        return;
      }
      this.join(channel, child);
    });
  }

  // The channel and the helper's stdin/stdout, half-closes passed on both ways (the helper
  // shuts the socket down for writing at EOF on stdin and closes stdout at EOF from it).
  private join(channel: ServerChannel, child: ChildProcess): void {
    let over = false;
    const end = (): void => {
      if (over) return;
      over = true;
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      channel.destroy();
      this.host.closedChannel();
    };
    channel.on('error', end);
    channel.on('close', end);
    child.stdin!.on('error', end);
    child.stdout!.on('error', end);
    channel.pipe(child.stdin!);
    child.stdout!.pipe(channel);
    child.once('close', () => {
      // Both ways are done (or the helper failed): let what is written reach the client.
      if (channel.writableFinished) end();
      else channel.once('finish', end);
    });
  }

  /** tcpip-forward inside the namespace, on `address` (already loopback) and `port`. */
  listen(bindAddr: string, address: string, port: number, done: (err: string | undefined, l?: NetnsListener) => void, gone: () => void): void {
    void this.relaySocket().then(
      (relay) => {
        if (this.ended) return done('connection ended');
        const id = String(this.nextId++);
        const child = this.start(['listen', address, String(port), relay, id, String(this.host.maxChannels)], ['pipe', 'ignore', 'pipe']);
        if (typeof child === 'string') return done(child);
        child.stdin!.on('error', () => undefined);
        child.stdin!.write(`${this.token}\n`);
        let listening = false;
        child.once('close', () => {
          this.listens.delete(id);
          if (listening) gone();
        });
        firstLine(child.stdio[3] as Readable, (line) => {
          const s = parseStatus(line, this.host.name);
          if (!s.ok || s.port === undefined) {
            child.kill('SIGKILL');
            return done(s.ok ? `network namespace ${this.host.name}: no port` : s.why);
          }
          listening = true;
          this.listens.set(id, { bindAddr, port: s.port });
          done(undefined, {
            port: s.port,
            close: () => {
              this.listens.delete(id);
              child.stdin!.end();
            },
          });
        });
      },
      (err: Error) => done(`relay socket: ${err.message}`),
    );
  }

  /** The abstract socket forwarded connections come back on, made at the first listen. */
  private relaySocket(): Promise<string> {
    if (this.relay) return Promise.resolve(this.relay.name);
    const name = `lukko-netns-${process.pid}-${randomBytes(8).toString('hex')}`;
    const server = net.createServer((socket) => this.incoming(socket));
    this.relay = { server, name };
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(`\0${name}`, () => resolve(name));
    });
  }

  // One connection accepted inside the namespace: check the header, then a forwarded-tcpip
  // channel to the client with the originator the helper saw.
  private incoming(socket: net.Socket): void {
    let got = Buffer.alloc(0);
    socket.setTimeout(HEADER_TIMEOUT_MS, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    const onData = (d: Buffer): void => {
      got = Buffer.concat([got, d]);
      const nl = got.indexOf(10);
      if (nl < 0) {
        if (got.length > HEADER_MAX) socket.destroy();
        return;
      }
      socket.off('data', onData);
      socket.pause();
      socket.setTimeout(0);
      const rest = got.subarray(nl + 1);
      if (rest.length > 0) socket.unshift(rest);
      this.forwardIn(socket, got.subarray(0, nl).toString('latin1'));
    };
    socket.on('data', onData);
  }

  private forwardIn(socket: net.Socket, header: string): void {
    const [token, id, addr, port] = header.split(' ');
    const expected = Buffer.from(this.token);
    const given = Buffer.from(token ?? '');
    const entry = id === undefined ? undefined : this.listens.get(id);
    if (given.length !== expected.length || !timingSafeEqual(given, expected) || !entry || !/^\d{1,5}$/.test(port ?? '') || addr === undefined) {
      this.host.log.warn({ netns: this.host.name }, 'forwarded connection with a bad header dropped');
      return void socket.destroy();
    }
    if (!this.host.openChannel()) return void socket.destroy();
    this.host.client.forwardOut(entry.bindAddr, entry.port, addr, Number(port), (err, channel) => {
      if (err) {
        this.host.closedChannel();
        return void socket.destroy();
      }
      this.host.splice(channel, socket, () => this.host.closedChannel());
    });
  }

  /** The connection is over: no helper outlives it. */
  end(): void {
    this.ended = true;
    for (const child of this.helpers) child.kill('SIGKILL');
    this.helpers.clear();
    this.listens.clear();
    this.relay?.server.close();
    this.relay = undefined;
  }
}
