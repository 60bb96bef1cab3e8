// One client connection, from the first byte to exit: ssh2 runs the transport; this wires
// authentication, sessions and limits to it and decides when the process ends.
import type { Socket } from 'node:net';
import type ssh2 from 'ssh2';
import type { Connection as SshClient, Session } from 'ssh2';
import type { AuthOutcome } from '../auth/authenticator.ts';
import { Authenticator } from '../auth/authenticator.ts';
import type { AccountDirectory } from '../auth/directory.ts';
import { nssDirectory } from '../auth/directory.ts';
import type { ListenerConfig } from '../config/index.ts';
import { Forwarding } from '../forward/forwarding.ts';
import type { Logger } from '../log/logger.ts';
import { setLogLevel, verboseLevel } from '../log/logger.ts';
import { childTagsMatch } from '../companion/control-commands.ts';
import type { ClosedReason } from '../companion/report-protocol.ts';
import { CompanionLink } from './companion-link.ts';
import { TransportGate } from './flow-control.ts';
import { tooManyConnections } from './refusal.ts';
import { countTraffic } from './traffic.ts';
import type { Peer } from '../session/command.ts';
import { plainIp } from '../session/command.ts';
import { MAX_SESSIONS, SessionChannel } from '../session/session.ts';
import type { UnitProperty } from '../spawn/unit-limits.ts';
import { mayHaveOwnUnit } from '../spawn/unit-limits.ts';
import { serverAlgorithms } from '../ssh/algorithms.ts';
import { Server } from '../ssh/ssh2-lean.ts';
import type { HostKey } from '../ssh/host-keys.ts';
import { notifyReady, notifyStatus } from '../systemd/notify.ts';
import { translationDirectory } from '../translation/directory.ts';
import { SSH_IDENT } from '../version.ts';

export const FIRST_AUTH_TIMEOUT_MS = 10_000;
export const AUTH_TIMEOUT_MS = 120_000;
// RFC 4254 5.1
const RESOURCE_SHORTAGE = 4;
const DISCONNECT_LINGER_MS = 1000; // time for a DISCONNECT to leave before the socket goes
const KILL_GRACE_MS = 2000;
const DISCONNECT_CONNECTION_LOST = 10;

export interface ConnectionOptions {
  log: Logger;
  configDir: string;
  listener: ListenerConfig;
  hostKeys: HostKey[];
  /** `translation_server` from lukko.conf: accounts come from there instead of NSS. */
  translationServer?: string;
  /** Tests: a shorter wait for the translation server than the default 10 s. */
  translationTimeoutMs?: number;
  remote?: { address?: string; port?: number };
  /** The companion's report socket (`@name`: abstract); undefined: none. */
  companionSocket?: string;
  /** lukko.conf `spawn` resource limits, for the connection's unit at the first session. */
  unitLimits?: UnitProperty[];
  exit(code: number): void;
}

const DISCONNECT_BY_APPLICATION = 11;
// PROTOCOL_ERROR, KEY_EXCHANGE_FAILED, MAC_ERROR, COMPRESSION_ERROR, PROTOCOL_VERSION_NOT_SUPPORTED, ILLEGAL_USER_NAME
const PROTOCOL_REASONS = new Set([2, 3, 5, 6, 8, 15]);

export class Connection {
  private client: SshClient | undefined;
  private readonly log: Logger;
  private readonly peer: Peer;
  private auth: AuthOutcome | undefined;
  private forwarding: Forwarding | undefined;
  private readonly sessions = new Set<SessionChannel>();
  private readonly timers: NodeJS.Timeout[] = [];
  private ending = false;
  private readonly startedAt = Date.now();
  private readonly socket: Socket;
  /** Tunnels and session output stop reading while too much waits on the socket. */
  private readonly gate: TransportGate;
  private readonly opts: ConnectionOptions;
  private readonly link: CompanionLink;
  private closedReason: ClosedReason | undefined;

  constructor(socket: Socket, opts: ConnectionOptions) {
    this.socket = socket;
    this.gate = new TransportGate(socket);
    this.opts = opts;
    this.peer = {
      remoteIp: socket.remoteAddress ?? opts.remote?.address ?? '0.0.0.0',
      remotePort: socket.remotePort ?? opts.remote?.port ?? 0,
      localIp: socket.localAddress ?? '0.0.0.0',
      localPort: socket.localPort ?? 0,
    };
    this.log = opts.log.child({ client: plainIp(this.peer.remoteIp), port: this.peer.remotePort });
    this.link = new CompanionLink(opts.companionSocket, this.log);
    this.link.on({
      verbose: (level) => {
        const name = verboseLevel(level);
        if (name === opts.log.level) return;
        setLogLevel(opts.log, name);
        this.log.info({ verbose: level, logLevel: name }, 'log level set by the companion (VERBOSE)');
      },
      terminateChildren: (tag) => this.terminateTagged(tag),
    });
  }

  /** The listener's name for the companion's per-source accounting: its tag, else its address. */
  private listenerName(): string {
    return this.opts.listener.tag || `${plainIp(this.peer.localIp)}:${this.peer.localPort}`;
  }

  start(): void {
    // Synchronously: a connection that ends at once must not exit before READY=1, or a
    // Type=notify unit counts that as a failure.
    notifyReady();
    this.status();
    this.socket.once('close', () => void this.end('socket closed'));
    this.socket.on('error', (err: NodeJS.ErrnoException) => this.log.debug({ err: err.code ?? err.message }, 'socket error'));
    const { listener } = this.opts;
    void this.link.accepted(plainIp(this.peer.remoteIp), this.listenerName(), { tarpit: listener.tarpit, max: listener.maxConnectionsPerIp }).then((a) => {
      if (this.ending) return;
      if (a.reject) return this.refuseTooMany();
      if (a.delayMs <= 0) return this.startSsh();
      // The original parks the connection before the handshake; a client that hangs up in
      // the meantime ends this process (the 'close' above).
      this.log.info({ delay: a.delayMs / 1000 }, `Connect from ${plainIp(this.peer.remoteIp)} tarpit ${a.delayMs / 1000}s`);
      setTimeout(() => {
        if (!this.ending) this.startSsh();
      }, a.delayMs);
    });
  }

  // Past max_connections_per_ip: the original's answer, an identification line and one
  // unencrypted DISCONNECT (TOO_MANY_CONNECTIONS), then the end of the connection.
  private refuseTooMany(): void {
    this.log.info(`Too many connections from ${plainIp(this.peer.remoteIp)}`);
    try {
      this.socket.end(tooManyConnections(SSH_IDENT));
    } catch {
      /* the client may be gone already */
    }
    setTimeout(() => this.socket.destroy(), DISCONNECT_LINGER_MS).unref();
  }

  private startSsh(): void {
    const server = new Server({
      hostKeys: this.opts.hostKeys.map((k) => k.data),
      ident: SSH_IDENT,
      algorithms: serverAlgorithms(),
      // protocol tracing for debugging a client, at log level "trace"
      ...(this.log.isLevelEnabled('trace') ? { debug: (msg: string) => this.log.trace(msg) } : {}),
    } as ssh2.ServerConfig);
    server.on('connection', (client) => this.onClient(client));
    server.on('error', (err: Error) => this.log.debug({ err: err.message }, 'server error'));
    this.timers.push(setTimeout(() => this.timeout('no authentication request'), FIRST_AUTH_TIMEOUT_MS));
    this.timers.push(setTimeout(() => this.timeout('authentication took too long'), AUTH_TIMEOUT_MS));
    server.injectSocket(this.socket);
    this.log.info({ local: `${plainIp(this.peer.localIp)}:${this.peer.localPort}` }, 'connection');
  }

  // TERMINATE_CHILDREN from the companion: a logged-in connection whose translation response
  // carried this CHILD_TAG ends, with the original's log line and DISCONNECT.
  private terminateTagged(tag: string): void {
    const tags = this.auth?.account.spawn?.childTags;
    if (!tags || !childTagsMatch(tags, tag)) return;
    this.log.info({ user: this.auth?.account.name, tag }, 'Terminating connection');
    this.closedReason = 'terminated';
    this.disconnect(DISCONNECT_CONNECTION_LOST, 'Account disabled');
    void this.end('terminated by the companion (TERMINATE_CHILDREN)');
  }

  private onClient(client: SshClient): void {
    this.client = client;
    this.link.countTraffic(countTraffic(client));
    const auth = new Authenticator({
      log: this.log,
      configDir: this.opts.configDir,
      clientIp: plainIp(this.peer.remoteIp),
      directory: this.directory(),
      disconnect: (reason, text) => this.disconnect(reason, text),
      onFirstRequest: () => clearTimeout(this.timers[0]),
      onAttempt: (a) => {
        if ('method' in a) this.link.auth(a.method, a.ok, a.query);
        if ('translationError' in a) this.link.event({ t: 'error', kind: 'translation' });
        this.link.charge(a.cost);
      },
      onSuccess: (outcome) => {
        this.auth = outcome;
        this.forwarding = new Forwarding({ log: this.log.child({ user: outcome.account.name }), account: outcome.account, policy: outcome.policy, client, gate: this.gate, disconnect: (r, t) => this.disconnect(r, t) });
        const { key } = outcome;
        this.log.info(
          { user: outcome.account.name, method: outcome.method, key: key?.fingerprint, type: key?.type, origin: key?.origin, source: outcome.account.source },
          'accepted',
        );
      },
    });
    client.on('authentication', (ctx) => {
      // The source's tarpit delay, slept before each request is looked at (spec §5.3).
      const delay = this.link.userauthDelayMs;
      if (delay <= 0) return auth.handle(ctx);
      this.log.info({ delay: delay / 1000 }, `Userauth tarpit ${delay / 1000}s`);
      this.link.event({ t: 'tarpit' });
      setTimeout(() => {
        if (!this.ending) auth.handle(ctx);
      }, delay);
    });
    client.on('ready', () => {
      for (const t of this.timers) clearTimeout(t);
      this.status();
    });
    client.on('session', (accept, reject) => {
      // as the original's channel limit (OpenSSH: MaxSessions); every exec is a process
      if (this.sessions.size >= MAX_SESSIONS) {
        this.log.info({ limit: MAX_SESSIONS }, 'session refused: too many sessions');
        return (reject as unknown as (code: number, text: string) => void)(RESOURCE_SHORTAGE, 'Too many sessions');
      }
      this.onSession(accept());
    });
    // Tunnels are decided by the connection's Policy once authenticated (ssh2 opens no
    // channel and passes no forwarding request before that).
    client.on('tcpip', (accept, reject, info) => this.forwarding?.directTcpip(accept, reject as never, info));
    client.on('openssh.streamlocal', (accept, reject, info) => this.forwarding?.directStreamlocal(accept, reject as never, info));
    client.on('request', (accept, reject, name, info) => {
      if (!this.forwarding) return reject?.();
      this.forwarding.request(accept as ((port?: number) => void) | undefined, reject, name, info);
    });
    client.on('rekey', () => this.log.debug('rekeyed'));
    client.on('error', (err: Error & { level?: string }) => {
      // Client and network trouble (bad packets, keepalive timeout, resets) ends this
      // connection, never with a non-zero exit.
      this.log.info({ err: err.message, level: err.level }, 'client error');
      if (err.level === 'client-timeout') this.socket.destroy();
    });
    client.on('close', () => void this.end('client closed'));
  }

  private directory(): AccountDirectory {
    const address = this.opts.translationServer;
    if (address === undefined || address === '') return nssDirectory();
    const { listener } = this.opts;
    return translationDirectory({
      address,
      listenerTag: listener.tag,
      peek: !!(listener.proxyTo || listener.proxyToZeroconf),
      isolationSupport: { unitLimits: mayHaveOwnUnit() },
      ...(this.opts.translationTimeoutMs !== undefined ? { timeoutMs: this.opts.translationTimeoutMs } : {}),
      onRequest: (user, withPassword) => this.log.debug({ user, password: withPassword }, 'translation request'),
    });
  }

  private onSession(session: Session): void {
    const outcome = this.auth;
    if (!outcome) return; // ssh2 only opens channels after authentication
    const s = new SessionChannel(session, {
      log: this.log.child({ user: outcome.account.name }),
      account: outcome.account,
      login: outcome.login,
      policy: outcome.policy,
      peer: this.peer,
      verboseErrors: this.opts.listener.verboseErrors,
      execRejectStderr: this.opts.listener.execRejectStderr,
      ...(this.opts.unitLimits?.length ? { unitLimits: this.opts.unitLimits } : {}),
      agentSocket: () => this.forwarding?.agentSocket(),
      childEvent: (e) => this.link.event(e),
      gate: this.gate,
      disconnect: (r, t) => this.disconnect(r, t),
      started: () => this.status(),
      ended: (done) => {
        this.sessions.delete(done);
        this.status();
      },
    });
    this.sessions.add(s);
  }

  private status(): void {
    const from = plainIp(this.peer.remoteIp);
    if (!this.auth) return notifyStatus(`connection from ${from} port ${this.peer.remotePort}: authenticating`);
    const what = [...this.sessions].map((s) => s.summary);
    const n = what.length;
    notifyStatus(`${this.auth.account.name} from ${from}: ${n ? what.join(', ') : 'idle'}, ${n} channel${n === 1 ? '' : 's'}`);
  }

  private timeout(why: string): void {
    this.log.info({ reason: why }, 'timeout');
    this.disconnect(DISCONNECT_CONNECTION_LOST, 'Timeout');
  }

  disconnect(reason: number, text: string): void {
    // The closes the original counts as lukko_connections_closed{reason="protocol"}.
    if (PROTOCOL_REASONS.has(reason)) this.closedReason ??= 'protocol';
    const proto = (this.client as unknown as { _protocol?: { disconnect(r: number, d: string): void } } | undefined)?._protocol;
    // Nothing the client sends after this matters; a flooding client is not read any more.
    this.socket.pause();
    try {
      proto?.disconnect(reason, text);
      this.socket.end();
    } catch {
      /* the socket may already be gone */
    }
    setTimeout(() => this.socket.destroy(), DISCONNECT_LINGER_MS).unref();
    if (!proto) this.socket.destroy();
  }

  /** Stopped from outside (systemctl stop, shutdown): tell the client, then end as usual. */
  stop(signal: string): Promise<void> {
    this.log.info({ signal }, 'stopping');
    this.disconnect(DISCONNECT_BY_APPLICATION, 'Server shutting down');
    return this.end(`stopped by ${signal}`);
  }

  /** The connection is over: end what the user left running, then exit 0. */
  async end(why: string): Promise<void> {
    if (this.ending) return;
    this.ending = true;
    for (const t of this.timers) clearTimeout(t);
    const live = [...this.sessions];
    for (const s of live) {
      s.terminate('SIGHUP');
      s.terminate('SIGTERM');
    }
    if (live.length) {
      await new Promise<void>((resolve) => {
        const check = setInterval(() => {
          if (this.sessions.size === 0) {
            clearInterval(check);
            resolve();
          }
        }, 20);
        setTimeout(() => {
          clearInterval(check);
          for (const s of this.sessions) s.terminate('SIGKILL');
          resolve();
        }, KILL_GRACE_MS);
      });
    }
    this.forwarding?.end();
    this.log.info({ reason: why, user: this.auth?.account.name, seconds: (Date.now() - this.startedAt) / 1000 }, 'connection closed');
    await this.link.closed(this.closedReason);
    this.opts.exit(0);
  }
}
