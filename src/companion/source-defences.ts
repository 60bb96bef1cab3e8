// Cross-connection defences the original keeps per listener and client address
// (spec/config-control-metrics.md §5.2 max_connections_per_ip, §5.3 tarpit). Under socket
// activation no instance sees another, so the companion holds this state for all of them.
// Pure: time comes in as an argument (milliseconds), so the algorithm is tested exactly.
import { TARPIT_COST } from './tarpit-costs.ts';

/** Token bucket: 1 token per second, at most 10 (spec §5.3, hard-coded in the original). */
const RATE_PER_S = 1;
const BURST = 10;
const PENALTY_WINDOW_MS = 60_000;
const DELAY_STEP_MS = 100;
const MAX_DELAY_MS = 60_000;
/** An entry outlives its last connection by this long, so its bucket and delay persist. */
export const ENTRY_LINGER_MS = 5 * 60_000;


export interface ListenerDefences {
  /** `tarpit yes` on the listener. */
  tarpit: boolean;
  /** `max_connections_per_ip`; 0: no limit. */
  maxPerIp: number;
}

interface Entry {
  tarpit: boolean;
  /** Bucket: tokens available at `now` are min((now - zero) / 1000 * RATE, BURST). */
  zeroMs: number;
  untilMs: number;
  delayMs: number;
  connections: number;
  expiresMs: number;
}

export type Admission = { reject: true } | { reject: false; delayMs: number };

/**
 * The original keys entries by the full client address, IPv4 as v4-mapped IPv6, so that one
 * client counts the same on IPv4 and dual-stack sockets; port and scope do not matter.
 */
export function sourceKey(listener: string, ip: string): string {
  let a = ip.toLowerCase();
  const pct = a.indexOf('%');
  if (pct >= 0) a = a.slice(0, pct);
  if (/^\d+\.\d+\.\d+\.\d+$/.test(a)) a = `::ffff:${a}`;
  return `${listener}\n${a}`;
}

export class SourceDefences {
  private readonly entries = new Map<string, Entry>();

  get size(): number {
    return this.entries.size;
  }

  /**
   * A new connection from `key`: charge the accept (tarpit), then refuse it if the source
   * already holds `maxPerIp` connections on this listener. An admitted connection counts until
   * `release()`. The delay is how long to hold the connection before the SSH handshake.
   */
  admit(key: string, d: ListenerDefences, nowMs: number): Admission {
    if (!d.tarpit && d.maxPerIp <= 0) return { reject: false, delayMs: 0 };
    let e = this.entries.get(key);
    if (!e) {
      e = { tarpit: d.tarpit, zeroMs: nowMs - (BURST / RATE_PER_S) * 1000, untilMs: 0, delayMs: 0, connections: 0, expiresMs: 0 };
      this.entries.set(key, e);
    }
    e.tarpit = d.tarpit;
    this.chargeEntry(e, TARPIT_COST.accept, nowMs);
    if (d.maxPerIp > 0 && e.connections >= d.maxPerIp) {
      e.expiresMs = Math.max(e.expiresMs, nowMs + ENTRY_LINGER_MS);
      return { reject: true };
    }
    e.connections++;
    return { reject: false, delayMs: e.delayMs };
  }

  /** Charges `cost` to the source; returns its delay now (0 without tarpit or entry). */
  charge(key: string, cost: number, nowMs: number): number {
    const e = this.entries.get(key);
    if (!e) return 0;
    this.chargeEntry(e, cost, nowMs);
    return e.delayMs;
  }

  delay(key: string): number {
    return this.entries.get(key)?.delayMs ?? 0;
  }

  /** An admitted connection ended. */
  release(key: string, nowMs: number): void {
    const e = this.entries.get(key);
    if (!e) return;
    if (e.connections > 0) e.connections--;
    e.expiresMs = nowMs + ENTRY_LINGER_MS;
  }

  /** Drops entries without connections whose linger time is over. */
  sweep(nowMs: number): void {
    for (const [k, e] of this.entries) if (e.connections === 0 && e.expiresMs <= nowMs) this.entries.delete(k);
  }

  // spec §5.3: avail = min(now − zero, 10) − c; zero = now − avail; debt is possible.
  private chargeEntry(e: Entry, cost: number, nowMs: number): void {
    if (!e.tarpit) return;
    const avail = Math.min(((nowMs - e.zeroMs) / 1000) * RATE_PER_S, BURST) - cost;
    e.zeroMs = nowMs - (avail / RATE_PER_S) * 1000;
    if (avail < 0) {
      e.untilMs = nowMs + PENALTY_WINDOW_MS;
      if (e.delayMs < MAX_DELAY_MS) e.delayMs = Math.min(e.delayMs + DELAY_STEP_MS, MAX_DELAY_MS);
    } else if (nowMs < e.untilMs) {
      if (e.delayMs > DELAY_STEP_MS) e.delayMs -= DELAY_STEP_MS;
    } else {
      e.delayMs = 0;
    }
  }
}
