// The instance's side of the report stream (report-protocol.ts). Rule from the design: an
// instance never waits on the companion. `event()` never blocks and never throws; while the
// stream is not connected events are dropped (a few are kept during the first connect, which
// is bounded by CONNECT_TIMEOUT_MS); a companion that stops reading costs at most
// MAX_PENDING_BYTES of memory, then events are dropped. Nothing here keeps the process alive.
import net from 'node:net';
import { localSocketPath } from '../net/unix-socket.ts';
import type { Logger } from '../log/logger.ts';
import { LineSplitter, encodeLine, parseReportCommand } from './report-protocol.ts';
import type { ReportCommand, ReportEvent } from './report-protocol.ts';

export const CONNECT_TIMEOUT_MS = 50;
/** Events kept while the connection is being made. */
const MAX_EARLY_EVENTS = 64;
/** Bytes the socket may hold unsent before events are dropped. */
const MAX_PENDING_BYTES = 64 * 1024;
const RECONNECT_MIN_MS = 1000;
const RECONNECT_MAX_MS = 30_000;

export interface Reporter {
  /** Sends one event, or drops it. Returns at once, never throws. */
  event(e: ReportEvent): void;
  /** `cb` is called for each command from the companion. */
  onCommand(cb: (c: ReportCommand) => void): void;
  /** Resolves once what was sent has left the process, or after `timeoutMs`. Never rejects. */
  flush(timeoutMs?: number): Promise<void>;
  /** Ends the stream; later events are dropped. */
  close(): void;
  readonly connected: boolean;
  /** Events dropped so far (not connected, or the companion not reading). */
  readonly dropped: number;
}

export interface ReporterOptions {
  connectTimeoutMs?: number;
  /** Reconnect after the companion went away (default true), with backoff from 1 s to 30 s. */
  reconnect?: boolean;
}

type Phase = 'connecting' | 'connected' | 'down' | 'closed';

class ReportClient implements Reporter {
  private readonly path: string;
  private readonly log: Logger | undefined;
  private readonly connectTimeoutMs: number;
  private readonly reconnect: boolean;
  private phase: Phase = 'down';
  private socket: net.Socket | undefined;
  private early: string[] = [];
  private readonly commandCallbacks: ((c: ReportCommand) => void)[] = [];
  private retryMs = RECONNECT_MIN_MS;
  private retryTimer: NodeJS.Timeout | undefined;
  private everConnected = false;
  private firstAttempt = true;
  private loggedDown = false;
  // What a restarted companion needs to hear again (a `resume`), from the events sent.
  private accepted: { ip?: string; listener?: string } | undefined;
  private children = 0;
  dropped = 0;

  constructor(path: string, log: Logger | undefined, o: ReporterOptions) {
    this.path = path;
    this.log = log;
    this.connectTimeoutMs = Math.min(o.connectTimeoutMs ?? CONNECT_TIMEOUT_MS, 1000);
    this.reconnect = o.reconnect ?? true;
    this.connect();
  }

  get connected(): boolean {
    return this.phase === 'connected';
  }

  private connect(): void {
    this.retryTimer = undefined;
    if (this.phase === 'closed') return;
    this.phase = 'connecting';
    let socket: net.Socket;
    try {
      socket = net.createConnection({ path: localSocketPath(this.path) });
    } catch (e) {
      this.down(e as Error);
      return;
    }
    this.socket = socket;
    socket.unref();
    socket.setNoDelay?.(true);
    const timer = setTimeout(() => {
      if (this.socket === socket && this.phase === 'connecting') {
        socket.destroy();
        this.down(new Error(`no connection within ${this.connectTimeoutMs} ms`));
      }
    }, this.connectTimeoutMs);
    timer.unref();
    const splitter = new LineSplitter();
    socket.on('connect', () => {
      clearTimeout(timer);
      if (this.socket !== socket) return;
      this.phase = 'connected';
      this.retryMs = RECONNECT_MIN_MS;
      if (this.everConnected || this.loggedDown) this.log?.info({ companion: this.path }, 'companion connected');
      this.loggedDown = false;
      // The first attempt delivers the events it kept; a later one (the companion came back)
      // kept none and tells what is still up instead.
      if (!this.firstAttempt && this.accepted) {
        this.write(encodeLine({ t: 'resume', ...this.accepted, children: this.children }));
      }
      this.everConnected = true;
      const early = this.early;
      this.early = [];
      for (const line of early) this.write(line);
    });
    socket.on('data', (data: Buffer) => {
      const { lines } = splitter.push(data);
      for (const line of lines) {
        const r = parseReportCommand(line);
        if (!r.ok) {
          if (!r.ignored) this.log?.warn({ error: r.error }, 'bad command from the companion');
          continue;
        }
        for (const cb of this.commandCallbacks) {
          try {
            cb(r.value);
          } catch (e) {
            this.log?.error({ err: e }, 'companion command handler failed');
          }
        }
      }
    });
    socket.on('error', (e) => {
      clearTimeout(timer);
      if (this.socket === socket) this.down(e);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      if (this.socket === socket) this.down(new Error('companion closed the stream'));
    });
  }

  private down(e: Error): void {
    this.socket = undefined;
    this.firstAttempt = false;
    this.dropped += this.early.length;
    this.early = [];
    if (this.phase === 'closed') return;
    this.phase = 'down';
    if (!this.loggedDown) {
      // Debug only at the first attempt: a host without a companion is a normal set-up.
      const fields = { companion: this.path, error: e.message };
      if (this.everConnected) this.log?.warn(fields, 'companion unreachable: events are dropped');
      else this.log?.debug(fields, 'no companion: events are dropped');
      this.loggedDown = true;
    }
    if (this.reconnect && !this.retryTimer) {
      this.retryTimer = setTimeout(() => this.connect(), this.retryMs);
      this.retryTimer.unref();
      this.retryMs = Math.min(this.retryMs * 2, RECONNECT_MAX_MS);
    }
  }

  private write(line: string | undefined): void {
    const socket = this.socket;
    if (line === undefined || !socket || this.phase !== 'connected') {
      this.dropped++;
      return;
    }
    if (socket.writableLength > MAX_PENDING_BYTES) {
      this.dropped++;
      return;
    }
    socket.write(line);
  }

  event(e: ReportEvent): void {
    try {
      this.remember(e);
      if (this.phase === 'closed' || this.phase === 'down') {
        this.dropped++;
        return;
      }
      const line = encodeLine(e);
      if (this.phase === 'connecting') {
        if (line !== undefined && this.firstAttempt && this.early.length < MAX_EARLY_EVENTS) this.early.push(line);
        else this.dropped++;
        return;
      }
      this.write(line);
    } catch {
      this.dropped++;
    }
  }

  private remember(e: ReportEvent): void {
    switch (e.t) {
      case 'accepted': {
        const a: { ip?: string; listener?: string } = {};
        if (e.ip !== undefined) a.ip = e.ip;
        if (e.listener !== undefined) a.listener = e.listener;
        this.accepted = a;
        break;
      }
      case 'closed':
        this.accepted = undefined;
        break;
      case 'spawn':
        if (e.ok) this.children++;
        break;
      case 'exit':
        if (this.children > 0) this.children--;
        break;
      default:
        break;
    }
  }

  onCommand(cb: (c: ReportCommand) => void): void {
    this.commandCallbacks.push(cb);
  }

  flush(timeoutMs = CONNECT_TIMEOUT_MS): Promise<void> {
    return new Promise((resolve) => {
      const socket = this.socket;
      if (!socket || this.phase !== 'connected' || socket.writableLength === 0) {
        if (this.phase !== 'connecting') return resolve();
      }
      const timer = setTimeout(resolve, timeoutMs);
      timer.unref();
      const check = (): void => {
        if (this.phase === 'connecting') return;
        const s = this.socket;
        if (!s || this.phase !== 'connected' || s.writableLength === 0) {
          clearTimeout(timer);
          clearInterval(poll);
          resolve();
        }
      };
      // Node has no "all written" event for a stream that stays open: poll briefly.
      const poll = setInterval(check, 2);
      poll.unref();
      setTimeout(() => clearInterval(poll), timeoutMs).unref();
    });
  }

  close(): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.dropped += this.early.length;
    this.early = [];
    this.socket?.end();
    this.socket = undefined;
  }
}

/**
 * Starts connecting to the companion at `path` (`@name`: abstract) and returns at once. Events
 * given before the connection is made are sent once it is (up to 64 of them); if it cannot be
 * made within `connectTimeoutMs` (≤ 50 ms by default) they are dropped, and so is every later
 * event until a reconnect succeeds.
 */
export function connectReporter(path: string, log?: Logger, o: ReporterOptions = {}): Reporter {
  return new ReportClient(path, log, o);
}
