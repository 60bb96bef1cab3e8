// How a per-connection lukko instance talks to the companion (docs/companion.md): one AF_UNIX
// stream per instance, newline-delimited JSON objects in both directions. The instance sends
// events ("t"), the companion sends commands ("c"). Both sides treat what they read as
// untrusted: lines are bounded, unknown types are skipped, malformed ones are counted.
//
// Pure: parsing, validation and encoding only. Imported by the per-connection start path, so
// it must stay small and import nothing heavy.

export const DEFAULT_REPORT_SOCKET = '/run/lukko/companion.socket';
/** The longest line either side accepts, newline excluded. */
export const MAX_REPORT_LINE = 4096;

/** The largest delta a single bytes/packets/loop event may add (2^48: far above a real one). */
const MAX_DELTA = 2 ** 48;
const MAX_TEXT = 256;

export type AuthMethod = 'none' | 'password' | 'publickey' | 'hostbased' | 'unsupported' | 'unknown';
export type ClosedReason = 'terminated' | 'unsupported_service' | 'protocol';

export type ReportEvent =
  /** Optional first line: who is reporting. */
  | { t: 'hello'; pid?: number }
  /** An SSH connection was accepted (lukko_connections_accepted; active until `closed`). */
  | { t: 'accepted'; ip?: string; listener?: string; tarpit?: boolean; max?: number }
  /** After a reconnect to a restarted companion: the connection is still up (nothing counted). */
  | { t: 'resume'; ip?: string; listener?: string; children?: number }
  /** Refused: per-IP limit, TOO_MANY_CONNECTIONS or HOST_NOT_ALLOWED_TO_CONNECT. */
  | { t: 'rejected' }
  /** A tarpit delay was applied. */
  | { t: 'tarpit' }
  /** One USERAUTH_REQUEST and its outcome. `none` and queries count as received only. */
  | { t: 'auth'; method: AuthMethod; ok: boolean; query?: boolean }
  /** Tarpit cost of what the client just did (spec §5.3); the companion answers `tarpit`. */
  | { t: 'charge'; cost: number }
  /** Counted errors; `translation`: the translation server failed or answered nonsense. */
  | { t: 'error'; kind: 'translation' }
  /** Traffic since the previous bytes event (deltas): SSH payload bytes and packets. */
  | { t: 'bytes'; in: number; out: number; packetsIn?: number; packetsOut?: number }
  /** One attempt to start a child process and how long it took. */
  | { t: 'spawn'; ok: boolean; seconds?: number }
  /** A signal sent to a child process. */
  | { t: 'kill' }
  /** A child process exited. */
  | { t: 'exit' }
  /** Event loop time since the previous loop event (deltas, seconds). */
  | { t: 'loop'; idle: number; busy: number; iterations?: number }
  /** The connection ended; a reason only for the closes the original counts. */
  | { t: 'closed'; reason?: ClosedReason };

export type ReportCommand =
  | { c: 'verbose'; level: number }
  | { c: 'terminate-children'; tag: string }
  /** The answer to an `accepted` that asked for defences: go on after `delay` ms. */
  | { c: 'admit'; delay: number }
  /** The answer to an `accepted` past the source's `max_connections_per_ip`. */
  | { c: 'reject' }
  /** The source's tarpit delay changed: sleep this long before each USERAUTH_REQUEST. */
  | { c: 'tarpit'; delay: number };

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string; ignored?: boolean };

const AUTH_METHODS = new Set<string>(['none', 'password', 'publickey', 'hostbased', 'unsupported', 'unknown']);
const CLOSED_REASONS = new Set<string>(['terminated', 'unsupported_service', 'protocol']);

function isCount(v: unknown, max = MAX_DELTA): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v <= max;
}

function isSeconds(v: unknown, max: number): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= max;
}

function optionalText(o: Record<string, unknown>, key: string): string | undefined | null {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.length > MAX_TEXT) return null;
  return v;
}

function parseObject(line: string): Record<string, unknown> | string {
  if (line.length > MAX_REPORT_LINE) return 'line too long';
  let o: unknown;
  try {
    o = JSON.parse(line);
  } catch {
    return 'not JSON';
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return 'not a JSON object';
  return o as Record<string, unknown>;
}

/**
 * One line from an instance. Unknown `t` values and unknown fields are ignored (`ignored: true`),
 * so a newer instance can talk to an older companion; known types with bad fields are errors.
 */
export function parseReportEvent(line: string): Parsed<ReportEvent> {
  const o = parseObject(line);
  if (typeof o === 'string') return { ok: false, error: o };
  const bad = (why: string): Parsed<ReportEvent> => ({ ok: false, error: `${String(o.t)}: ${why}` });
  switch (o.t) {
    case 'hello': {
      if (o.pid !== undefined && !isCount(o.pid, 2 ** 32)) return bad('bad pid');
      return { ok: true, value: o.pid === undefined ? { t: 'hello' } : { t: 'hello', pid: o.pid } };
    }
    case 'accepted':
    case 'resume': {
      const ip = optionalText(o, 'ip');
      const listener = optionalText(o, 'listener');
      if (ip === null) return bad('bad ip');
      if (listener === null) return bad('bad listener');
      const e: { t: 'accepted' | 'resume'; ip?: string; listener?: string; children?: number; tarpit?: boolean; max?: number } = { t: o.t };
      if (ip !== undefined) e.ip = ip;
      if (listener !== undefined) e.listener = listener;
      if (o.t === 'accepted') {
        if (o.tarpit !== undefined) {
          if (typeof o.tarpit !== 'boolean') return bad('tarpit is not a boolean');
          e.tarpit = o.tarpit;
        }
        if (o.max !== undefined) {
          if (!isCount(o.max, 1_000_000)) return bad('bad max');
          e.max = o.max;
        }
      }
      if (o.t === 'resume' && o.children !== undefined) {
        if (!isCount(o.children, 1_000_000)) return bad('bad children');
        e.children = o.children;
      }
      return { ok: true, value: e as ReportEvent };
    }
    case 'rejected':
    case 'tarpit':
    case 'kill':
    case 'exit':
      return { ok: true, value: { t: o.t } };
    case 'auth': {
      if (typeof o.method !== 'string' || !AUTH_METHODS.has(o.method)) return bad('bad method');
      if (typeof o.ok !== 'boolean') return bad('ok is not a boolean');
      const method = o.method as AuthMethod;
      if (o.ok && !(method === 'password' || method === 'publickey' || method === 'hostbased' || method === 'none')) {
        return bad(`method ${method} cannot succeed`);
      }
      if (o.query !== undefined && o.query !== true) return bad('query must be true');
      if (o.query && method !== 'publickey') return bad('only publickey has queries');
      return { ok: true, value: o.query ? { t: 'auth', method, ok: o.ok, query: true } : { t: 'auth', method, ok: o.ok } };
    }
    case 'charge':
      if (!isSeconds(o.cost, 100)) return bad('bad cost');
      return { ok: true, value: { t: 'charge', cost: o.cost } };
    case 'error':
      if (o.kind === 'translation') return { ok: true, value: { t: 'error', kind: 'translation' } };
      return { ok: false, error: `error: unknown kind ${JSON.stringify(o.kind)}`, ignored: true };
    case 'bytes': {
      if (!isCount(o.in) || !isCount(o.out)) return bad('in/out must be counts');
      const e: ReportEvent & { t: 'bytes' } = { t: 'bytes', in: o.in, out: o.out };
      if (o.packetsIn !== undefined) {
        if (!isCount(o.packetsIn)) return bad('bad packetsIn');
        e.packetsIn = o.packetsIn;
      }
      if (o.packetsOut !== undefined) {
        if (!isCount(o.packetsOut)) return bad('bad packetsOut');
        e.packetsOut = o.packetsOut;
      }
      return { ok: true, value: e };
    }
    case 'spawn': {
      if (typeof o.ok !== 'boolean') return bad('ok is not a boolean');
      if (o.seconds !== undefined && !isSeconds(o.seconds, 3600)) return bad('bad seconds');
      return { ok: true, value: o.seconds === undefined ? { t: 'spawn', ok: o.ok } : { t: 'spawn', ok: o.ok, seconds: o.seconds } };
    }
    case 'loop': {
      if (!isSeconds(o.idle, 1e9) || !isSeconds(o.busy, 1e9)) return bad('idle/busy must be seconds');
      if (o.iterations !== undefined && !isCount(o.iterations)) return bad('bad iterations');
      const e: ReportEvent & { t: 'loop' } = { t: 'loop', idle: o.idle, busy: o.busy };
      if (o.iterations !== undefined) e.iterations = o.iterations;
      return { ok: true, value: e };
    }
    case 'closed': {
      if (o.reason === undefined || (typeof o.reason === 'string' && !CLOSED_REASONS.has(o.reason))) {
        // Closes the original does not count by reason (a client's EOF, a timeout ...).
        return { ok: true, value: { t: 'closed' } };
      }
      if (typeof o.reason !== 'string') return bad('bad reason');
      return { ok: true, value: { t: 'closed', reason: o.reason as ClosedReason } };
    }
    default:
      return { ok: false, error: `unknown event type ${JSON.stringify(o.t)}`, ignored: true };
  }
}

/** One line from the companion. Unknown commands are ignored (`ignored: true`). */
export function parseReportCommand(line: string): Parsed<ReportCommand> {
  const o = parseObject(line);
  if (typeof o === 'string') return { ok: false, error: o };
  switch (o.c) {
    case 'verbose':
      if (!isCount(o.level, 255)) return { ok: false, error: 'verbose: bad level' };
      return { ok: true, value: { c: 'verbose', level: o.level } };
    case 'terminate-children':
      if (typeof o.tag !== 'string' || o.tag === '' || o.tag.length > MAX_REPORT_LINE) return { ok: false, error: 'terminate-children: bad tag' };
      return { ok: true, value: { c: 'terminate-children', tag: o.tag } };
    case 'admit':
    case 'tarpit':
      if (!isCount(o.delay, 60_000)) return { ok: false, error: `${o.c}: bad delay` };
      return { ok: true, value: { c: o.c, delay: o.delay } };
    case 'reject':
      return { ok: true, value: { c: 'reject' } };
    default:
      return { ok: false, error: `unknown command ${JSON.stringify(o.c)}`, ignored: true };
  }
}

/** A line ready to write (with its newline), or undefined if it would be too long. */
export function encodeLine(message: ReportEvent | ReportCommand): string | undefined {
  const text = JSON.stringify(message);
  return text.length > MAX_REPORT_LINE ? undefined : `${text}\n`;
}

/**
 * Splits a byte stream into lines. A line longer than `max` is dropped whole (up to its
 * newline) and reported once through `onOverlong`; memory stays bounded by `max`.
 */
export class LineSplitter {
  private readonly max: number;
  private chunks: Buffer[] = [];
  private size = 0;
  private skipping = false;

  constructor(max = MAX_REPORT_LINE) {
    this.max = max;
  }

  /** The complete lines in `data` (as UTF-8 text, without newlines); `overlong` counts drops. */
  push(data: Buffer): { lines: string[]; overlong: number } {
    const lines: string[] = [];
    let overlong = 0;
    let start = 0;
    while (start <= data.length) {
      const nl = data.indexOf(0x0a, start);
      const end = nl < 0 ? data.length : nl;
      const piece = data.subarray(start, end);
      if (!this.skipping) {
        if (this.size + piece.length > this.max) {
          this.skipping = true;
          this.chunks = [];
          this.size = 0;
          overlong++;
        } else if (piece.length) {
          this.chunks.push(piece);
          this.size += piece.length;
        }
      }
      if (nl < 0) break;
      if (!this.skipping) {
        lines.push(Buffer.concat(this.chunks, this.size).toString('utf8'));
      }
      this.skipping = false;
      this.chunks = [];
      this.size = 0;
      start = nl + 1;
    }
    // Keep only what is ours: `data` may be a view of a larger pooled buffer.
    if (this.chunks.length) this.chunks = [Buffer.from(Buffer.concat(this.chunks, this.size))];
    return { lines, overlong };
  }
}
