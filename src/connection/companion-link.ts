// One instance's link to `lukko companion` (docs/companion.md): what this connection reports
// (accept, auth attempts, tarpit costs, spawns, bytes, close) and what the companion asks of
// it (log level, TERMINATE_CHILDREN, tarpit delays, per-source refusals).
//
// The design's rule: an instance never depends on the companion. Events never block; the only
// wait is the answer to a listener's defences at accept, bounded by ADMIT_TIMEOUT_MS, and
// without an answer the connection goes on undelayed (fail open: with the companion stopped,
// logins work; systemd's MaxConnectionsPerSource= still caps per-source connections).
import type { Logger } from '../log/logger.ts';
import { connectReporter } from '../companion/report-client.ts';
import type { Reporter } from '../companion/report-client.ts';
import { DEFAULT_REPORT_SOCKET } from '../companion/report-protocol.ts';
import type { AuthMethod, ClosedReason, ReportCommand, ReportEvent } from '../companion/report-protocol.ts';

/** Connecting (≤ 50 ms) plus the companion's answer; beyond this the connection goes on. */
export const ADMIT_TIMEOUT_MS = 250;
/** Bytes are reported at most this often while traffic flows, and once at the end. */
const BYTES_EVERY_MS = 5000;
/** The last events may take this long to leave before the process exits. */
const FLUSH_AT_EXIT_MS = 100;

export interface Traffic {
  bytesIn: number;
  bytesOut: number;
  packetsIn: number;
  packetsOut: number;
}

export interface CompanionHandlers {
  verbose(level: number): void;
  terminateChildren(tag: string): void;
}

export type Admission = { reject: boolean; delayMs: number; answered: boolean };

/** `LUKKO_COMPANION_SOCKET`: the report socket (`@name`: abstract); empty: no companion. */
export function companionSocketPath(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const v = env.LUKKO_COMPANION_SOCKET;
  if (v === undefined) return DEFAULT_REPORT_SOCKET;
  return v === '' ? undefined : v;
}

export class CompanionLink {
  private readonly reporter: Reporter | undefined;
  private admission: ((c: ReportCommand) => void) | undefined;
  private tarpitMs = 0;
  private handlers: CompanionHandlers | undefined;
  private traffic: () => Traffic = () => ({ bytesIn: 0, bytesOut: 0, packetsIn: 0, packetsOut: 0 });
  private sent: Traffic = { bytesIn: 0, bytesOut: 0, packetsIn: 0, packetsOut: 0 };
  private bytesTimer: NodeJS.Timeout | undefined;

  constructor(path: string | undefined, log: Logger) {
    if (path === undefined) return;
    this.reporter = connectReporter(path, log);
    this.reporter.event({ t: 'hello', pid: process.pid });
    this.reporter.onCommand((c) => this.command(c));
  }

  private command(c: ReportCommand): void {
    switch (c.c) {
      case 'admit':
      case 'reject':
        this.admission?.(c);
        return;
      case 'tarpit':
        this.tarpitMs = c.delay;
        return;
      case 'verbose':
        this.handlers?.verbose(c.level);
        return;
      case 'terminate-children':
        this.handlers?.terminateChildren(c.tag);
        return;
    }
  }

  on(handlers: CompanionHandlers): void {
    this.handlers = handlers;
  }

  event(e: ReportEvent): void {
    this.reporter?.event(e);
  }

  /**
   * Reports the accepted connection. With `tarpit` or a per-source limit on the listener, asks
   * the companion whether and when to go on; otherwise answers at once.
   */
  accepted(ip: string, listener: string, defences: { tarpit: boolean; max: number }): Promise<Admission> {
    const ask = defences.tarpit || defences.max > 0;
    this.event({ t: 'accepted', ip, listener, ...(ask ? { tarpit: defences.tarpit, max: defences.max } : {}) });
    if (!ask || !this.reporter) return Promise.resolve({ reject: false, delayMs: 0, answered: false });
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.admission = undefined;
        resolve({ reject: false, delayMs: 0, answered: false });
      }, ADMIT_TIMEOUT_MS);
      this.admission = (c) => {
        clearTimeout(timer);
        this.admission = undefined;
        resolve(c.c === 'reject' ? { reject: true, delayMs: 0, answered: true } : { reject: false, delayMs: c.c === 'admit' ? c.delay : 0, answered: true });
      };
    });
  }

  /** The source's tarpit delay before the next USERAUTH_REQUEST, as the companion last said. */
  get userauthDelayMs(): number {
    return this.tarpitMs;
  }

  charge(cost: number): void {
    if (cost > 0) this.event({ t: 'charge', cost });
  }

  auth(method: AuthMethod, ok: boolean, query = false): void {
    this.event(query ? { t: 'auth', method, ok, query: true } : { t: 'auth', method, ok });
  }

  /** Reports traffic from `read` every few seconds while the connection lives, and at close. */
  countTraffic(read: () => Traffic): void {
    if (!this.reporter) return;
    this.traffic = read;
    this.bytesTimer = setInterval(() => this.reportBytes(), BYTES_EVERY_MS);
    this.bytesTimer.unref();
  }

  private reportBytes(): void {
    const now = this.traffic();
    const d = {
      in: now.bytesIn - this.sent.bytesIn,
      out: now.bytesOut - this.sent.bytesOut,
      packetsIn: now.packetsIn - this.sent.packetsIn,
      packetsOut: now.packetsOut - this.sent.packetsOut,
    };
    if (d.in === 0 && d.out === 0 && d.packetsIn === 0 && d.packetsOut === 0) return;
    this.sent = now;
    this.event({ t: 'bytes', ...d });
  }

  /** The last report: traffic, then `closed`; waits at most FLUSH_AT_EXIT_MS for it to leave. */
  async closed(reason?: ClosedReason): Promise<void> {
    if (!this.reporter) return;
    if (this.bytesTimer) clearInterval(this.bytesTimer);
    this.reportBytes();
    this.event(reason ? { t: 'closed', reason } : { t: 'closed' });
    await this.reporter.flush(FLUSH_AT_EXIT_MS);
    this.reporter.close();
  }
}
