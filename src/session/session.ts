// One "session" channel (RFC 4254 6): pty, env, then exactly one of exec, shell or
// subsystem, then signals and window changes until the process exits. Requests are checked
// against the connection's Policy; what runs is described by describeSession() and made by
// the spawner.
import { existsSync } from 'node:fs';
import type { Writable } from 'node:stream';
import type { ServerChannel, Session } from 'ssh2';
import type { Account } from '../auth/account.ts';
import type { Login } from '../auth/directory.ts';
import type { Policy } from '../auth/policy.ts';
import { DISCONNECT_PROTOCOL_ERROR } from '../auth/authenticator.ts';
import type { TransportGate } from '../connection/flow-control.ts';
import { WINDOW_OVERRUN, pump, refuseWindowOverrun } from '../connection/flow-control.ts';
import type { Logger } from '../log/logger.ts';
import type { PtySpec } from '../spawn/description.ts';
import type { ExitInfo, UserProcess } from '../spawn/spawn.ts';
import { spawnUserProcess } from '../spawn/spawn.ts';
import type { SpawnDescription } from '../spawn/description.ts';
import type { UnitProperty } from '../spawn/unit-limits.ts';
import { setUnitLimits, unitProperty } from '../spawn/unit-limits.ts';
import type { Peer, SessionRequest } from './command.ts';
import { acceptedClientEnv, describeSession } from './command.ts';
import { parsePartitionCommand } from './partition-command.ts';

// RFC 4254 6.10 signal names a client may send.
const CLIENT_SIGNALS = new Set(['ABRT', 'ALRM', 'FPE', 'HUP', 'ILL', 'INT', 'KILL', 'PIPE', 'QUIT', 'SEGV', 'TERM', 'USR1', 'USR2']);
/** Open session channels per connection; the next open fails with resource shortage. */
export const MAX_SESSIONS = 64;
const ENV_BUDGET = 16384; // bytes of name + value + 32 per variable, as the original
// The statically linked sftp-server the original runs for an sftp partition without EXECUTE.
const CM4ALL_SFTP_SERVER = '/usr/lib/cm4all/openssh/libexec/sftp-server';
const GIT_PROGRAMS = { 'git-receive-pack': '/usr/bin/git-receive-pack', 'git-upload-pack': '/usr/bin/git-upload-pack' } as const;
const SFTP_ONLY_MESSAGE = 'Shell access denied (SFTP only).\r\n';
const SFTP_SERVERS = ['/usr/lib/openssh/sftp-server', '/usr/libexec/openssh/sftp-server', '/usr/libexec/sftp-server', '/usr/lib/ssh/sftp-server', '/usr/lib64/misc/sftp-server'];

export function findSftpServer(): string | undefined {
  return SFTP_SERVERS.find((p) => existsSync(p));
}

export interface SessionHost {
  log: Logger;
  account: Account;
  login: Login;
  policy: Policy;
  peer: Peer;
  verboseErrors: boolean;
  execRejectStderr: boolean;
  /** lukko.conf `spawn` resource limits for the connection's unit. */
  unitLimits?: UnitProperty[];
  /** ssh -A: the connection's agent socket, made on first use; undefined when refused. */
  agentSocket(): string | undefined;
  started(s: SessionChannel): void;
  ended(s: SessionChannel): void;
  /** The connection socket's gate: output is held while too much waits on it. */
  gate?: TransportGate;
  /** Ends the whole connection (a client breaking flow control). */
  disconnect?(reason: number, text: string): void;
  /** Child process events for the companion's metrics (spawned, signalled, exited). */
  childEvent?(e: { t: 'spawn'; ok: boolean; seconds: number } | { t: 'kill' } | { t: 'exit' }): void;
}

/** The account's CGROUP_SET as unit properties; login.ts let only mappable ones through. */
function cgroupProperties(account: Account): UnitProperty[] {
  const out: UnitProperty[] = [];
  for (const { name, value } of account.spawn?.isolation?.cgroupSet ?? []) {
    const props = unitProperty(name, value);
    if (props === undefined) throw new Error(`CGROUP_SET ${name} cannot be enforced`);
    out.push(...props);
  }
  return out;
}

type Accept = (() => void) | undefined;
type AcceptChannel = () => ServerChannel | undefined;
type Reject = (() => void) | undefined;

// Resolves once everything written so far has left `stream`. Not 'drain': Writable emits it
// only after a write() returned false, so a buffer below the high-water mark would wait for
// ever. An empty write's callback runs after every earlier write has completed.
function waitDrained(stream: Writable): Promise<void> {
  if (stream.writableLength === 0 || stream.destroyed || !stream.writable) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      stream.off('close', done);
      resolve();
    };
    stream.once('close', done);
    stream.write(Buffer.alloc(0), () => done());
  });
}

export class SessionChannel {
  readonly id: number;
  private static next = 0;
  private pty: PtySpec | undefined;
  private readonly env: [string, string][] = [];
  private agentPath: string | undefined;
  private envUsed = 0;
  private proc: UserProcess | undefined;
  private closed = false;
  request: SessionRequest | undefined;
  private readonly host: SessionHost;

  constructor(session: Session, host: SessionHost) {
    this.host = host;
    this.id = SessionChannel.next++;
    session.on('pty', (accept, reject, info) => this.onPty(accept, reject, info as unknown as PtySpec | undefined));
    session.on('window-change', (accept, reject, info) => {
      if (!this.pty || !info) return reject?.();
      this.pty = { ...this.pty, cols: info.cols, rows: info.rows, width: info.width, height: info.height };
      this.proc?.resize(info.cols, info.rows);
      accept?.();
    });
    session.on('env', (accept, reject, info) => this.onEnv(accept, reject, info.key, info.val));
    session.on('signal', (accept, reject, info) => this.onSignal(accept, reject, info.name));
    session.on('shell', (accept, reject) => this.onExec(accept as AcceptChannel, reject, { kind: 'shell' }));
    session.on('exec', (accept, reject, info) => this.onExec(accept as AcceptChannel, reject, { kind: 'exec', command: info.command }));
    session.on('subsystem', (accept, reject, info) => this.onSubsystem(accept as AcceptChannel, reject, info.name));
    session.on('x11', (_accept, reject) => {
      this.host.log.info({ session: this.id, reason: 'X11 forwarding is not offered' }, 'x11 refused');
      reject?.();
    });
    session.on('auth-agent', (accept, reject) => {
      if (this.request) return reject?.();
      if (!this.host.policy.exec) {
        this.host.log.info({ session: this.id, reason: 'exec not allowed for this account' }, 'agent forwarding refused');
        return reject?.();
      }
      const path = this.host.agentSocket();
      if (!path) return reject?.();
      this.agentPath = path;
      accept?.();
    });
    session.on('close', () => this.onClose());
  }

  get summary(): string {
    const r = this.request;
    if (!r) return 'session';
    if (r.kind === 'shell') return this.pty ? 'shell' : 'shell (no tty)';
    if (r.kind === 'subsystem' || r.kind === 'program') return r.name;
    return `exec ${r.command.length > 40 ? r.command.slice(0, 40) + '…' : r.command}`;
  }

  private onPty(accept: Accept, reject: Reject, info: PtySpec | undefined): void {
    // The original's courtesy to SFTP-only accounts on an exec_reject_stderr listener: the
    // pty "succeeds" (nothing is allocated) so that the shell request can print why not.
    if (!this.host.policy.exec && this.rejectsOnStderr()) return accept?.();
    if (!info || this.request || !this.host.policy.pty) {
      if (!this.host.policy.pty) this.host.log.info({ origin: this.host.policy.origins }, 'pty refused by policy');
      return reject?.();
    }
    this.pty = { term: info.term, cols: info.cols, rows: info.rows, width: info.width, height: info.height, modes: info.modes ?? {} };
    this.host.log.debug({ term: info.term, cols: info.cols, rows: info.rows, modes: this.pty.modes }, 'pty');
    accept?.();
  }

  private onEnv(accept: Accept, reject: Reject, key: string, val: string): void {
    const cost = Buffer.byteLength(key) + Buffer.byteLength(val) + 32;
    if (this.request || !this.host.policy.exec || !acceptedClientEnv(key) || this.envUsed + cost > ENV_BUDGET) {
      this.host.log.debug({ name: key.slice(0, 64) }, 'environment variable refused');
      return reject?.();
    }
    this.envUsed += cost;
    this.env.push([key, val]);
    accept?.();
  }

  private onSignal(accept: Accept, reject: Reject, name: string): void {
    const sig = name.replace(/^SIG/, '');
    if (!this.proc || !CLIENT_SIGNALS.has(sig)) return reject?.();
    this.proc.kill(`SIG${sig}` as NodeJS.Signals, false);
    accept?.();
  }

  private rejectsOnStderr(): boolean {
    return this.host.login.sftpOnly && this.host.execRejectStderr;
  }

  // shell and exec: for accounts that may not execute (SFTP-only, or no top-level options
  // from the translation server), only the rsync and git programs their partitions set up.
  private onExec(accept: AcceptChannel, reject: Reject, request: SessionRequest): void {
    const { login, policy, log } = this.host;
    if (policy.exec || this.request || this.closed) return this.start(accept, reject, request, this.host.account);
    const command = request.kind === 'exec' ? request.command : undefined;
    const partition = command !== undefined ? parsePartitionCommand(command) : undefined;
    if (partition && command !== undefined && login.sftpAllowed) {
      const account = login.services[partition.service];
      const file = account?.spawn?.execute ?? (partition.service === 'rsync' ? undefined : GIT_PROGRAMS[partition.service]);
      if (account && file) {
        return this.start(accept, reject, { kind: 'program', name: partition.service, file, args: partition.args, command }, account);
      }
      if (account) log.warn({ service: partition.service }, 'rsync partition without EXECUTE');
    }
    log.info({ request: request.kind, command, origin: policy.origins }, `${request.kind} refused: no shell access`);
    if (!this.rejectsOnStderr()) return reject?.();
    // As the original: success, the reason on stderr, then EOF and close without an exit status.
    const channel = this.open(accept);
    if (!channel) return;
    this.request = request;
    channel.stderr.write(SFTP_ONLY_MESSAGE);
    channel.end();
  }

  private onSubsystem(accept: AcceptChannel, reject: Reject, name: string): void {
    const { login, log } = this.host;
    const refuse = (why: string): void => {
      log.info({ subsystem: name }, `subsystem refused: ${why}`);
      reject?.();
    };
    if (name !== 'sftp') return refuse('unknown subsystem');
    if (!login.sftpAllowed) return refuse('SFTP not allowed for this account');
    if (this.pty) return refuse('a pty was requested');
    // An sftp partition: its EXECUTE, else the original's static sftp-server, run directly
    // with the partition's options. Otherwise OpenSSH's sftp-server with the account's.
    const partition = login.services.sftp;
    const program = partition?.spawn?.execute ?? (existsSync(CM4ALL_SFTP_SERVER) ? CM4ALL_SFTP_SERVER : undefined);
    if (partition && program) {
      return this.start(accept, reject, { kind: 'program', name: 'sftp', file: program, args: [], command: 'internal-sftp' }, partition);
    }
    const server = findSftpServer();
    if (!server) return refuse('no sftp-server installed');
    this.start(accept, reject, { kind: 'subsystem', name, command: server }, this.host.account);
  }

  private start(accept: AcceptChannel, reject: Reject, request: SessionRequest, account: Account): void {
    if (this.request || this.closed) return reject?.();
    const { policy, peer, log } = this.host;
    let desc: SpawnDescription;
    let limits: UnitProperty[];
    try {
      limits = [...(this.host.unitLimits ?? []), ...cgroupProperties(account)];
      desc = describeSession({ account, policy, request, peer, clientEnv: this.env, pty: this.pty, ...(this.agentPath ? { agentSocket: this.agentPath } : {}) });
    } catch (err) {
      // A container the spawner cannot describe (a bug: login.ts lets only enforceable
      // isolation through): no process rather than a process with less isolation.
      log.error({ err: (err as Error).message }, 'session refused: isolation cannot be set up');
      return reject?.();
    }
    // Accept at once: ssh2 drops channel data and EOF that arrive before the channel object
    // exists, and the client may send both right after the request.
    const channel = this.open(accept);
    if (!channel) return;
    this.request = request;
    channel.on('error', (err: Error) => log.debug({ err: err.message }, 'channel error'));
    channel.stderr.on('error', () => {});
    log.info(
      { session: this.id, request: request.kind, command: request.kind === 'shell' ? undefined : request.command, forced: policy.forcedCommand !== undefined, pty: !!this.pty },
      'session start',
    );
    this.host.started(this);
    const cgroup = account.spawn?.isolation?.cgroup;
    const ready = limits.length > 0
      ? setUnitLimits(limits).then(
        (unit) => log.info({ unit, limits, cgroup }, 'resource limits on the connection\'s unit'),
        (err: Error) => {
          // Fail closed: no process without its limits. The client hears that, not why.
          log.warn({ session: this.id, limits, err: err.message }, 'session refused: resource limits cannot be enforced');
          channel.stderr.write('lukko: session refused: its resource limits cannot be enforced\r\n');
          throw err;
        },
      )
      : Promise.resolve();
    const t0 = performance.now();
    const spawned = (ok: boolean) => this.host.childEvent?.({ t: 'spawn', ok, seconds: (performance.now() - t0) / 1000 });
    ready.then(() => spawnUserProcess(desc)).then(
      (proc) => {
        spawned(true);
        this.attach(proc, channel);
      },
      (err: Error) => {
        spawned(false);
        log.warn({ session: this.id, err: err.message }, 'spawn failed');
        if (this.host.verboseErrors) channel.stderr.write(`Failed to execute: ${err.message}\r\n`);
        channel.end();
      },
    );
  }

  /** Accepts the channel; a client that sends beyond its window loses the connection. */
  private open(accept: AcceptChannel): ServerChannel | undefined {
    const channel = accept();
    if (!channel) return undefined;
    refuseWindowOverrun(channel, () => {
      this.host.log.warn({ session: this.id, reason: 'client sent data beyond the window' }, 'disconnecting');
      this.host.disconnect?.(DISCONNECT_PROTOCOL_ERROR, WINDOW_OVERRUN);
    });
    return channel;
  }

  private attach(proc: UserProcess, channel: ServerChannel): void {
    this.proc = proc;
    if (this.closed) {
      proc.kill('SIGHUP');
      return;
    }
    const { gate } = this.host;
    // Input: pipe() pauses the channel while the process does not read, and a paused
    // channel makes ssh2 stop topping up the client's window.
    proc.stdin.on('error', () => {}); // EPIPE once the process stops reading
    channel.pipe(proc.stdin);
    // Output: held while the client's window is used up or the connection's socket is full.
    const outputs: Writable[] = [channel];
    pump(proc.stdout, channel, gate, false);
    if (proc.stderr) {
      pump(proc.stderr, channel.stderr, gate, false);
      outputs.push(channel.stderr);
    }
    proc.onExit((info) => void this.finish(info, channel, outputs));
  }

  private async finish(info: ExitInfo, channel: ServerChannel, outputs: Writable[]): Promise<void> {
    this.host.log.info({ session: this.id, code: info.code, signal: info.signal }, 'session end');
    await Promise.all(outputs.map(waitDrained));
    if (!this.closed) {
      try {
        if (info.signal) channel.exit(info.signal, info.coreDumped, '');
        else channel.exit(info.code ?? 255);
      } catch {
        channel.exit(255); // a signal name RFC 4254 does not know
      }
      channel.end();
    }
    this.proc = undefined;
    this.host.childEvent?.({ t: 'exit' });
    this.host.ended(this);
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    // The client closed the channel (or the connection went): the process goes with it.
    this.terminate('SIGHUP');
    this.terminate('SIGTERM');
    if (!this.proc) this.host.ended(this);
  }

  /** Ends the process group, for the connection's last moments. */
  terminate(signal: NodeJS.Signals): void {
    if (!this.proc) return;
    this.proc.kill(signal);
    this.host.childEvent?.({ t: 'kill' });
  }
}
