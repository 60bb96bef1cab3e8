// The companion's counters on disk, so that they never go backwards when it restarts: a JSON
// file written atomically (a temporary file, fsync, rename), at most every few seconds while
// counters change, and once more when the companion stops.
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from '../log/logger.ts';
import type { MetricsRegistry } from './metrics.ts';

export const DEFAULT_STATE_PATH = '/var/lib/lukko/companion-state.json';
export const DEFAULT_SAVE_INTERVAL_MS = 5000;
const FORMAT = 'lukko-companion-state';
const VERSION = 1;

export type StateParse = { ok: true; counters: Record<string, number> } | { ok: false; error: string };

/** Pure: the counters in a state file's text. */
export function parseCounterState(text: string): StateParse {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch (e) {
    return { ok: false, error: `not JSON: ${(e as Error).message}` };
  }
  if (typeof o !== 'object' || o === null) return { ok: false, error: 'not an object' };
  const r = o as Record<string, unknown>;
  if (r.format !== FORMAT) return { ok: false, error: `format is not "${FORMAT}"` };
  if (r.version !== VERSION) return { ok: false, error: `unsupported version ${String(r.version)}` };
  const c = r.counters;
  if (typeof c !== 'object' || c === null || Array.isArray(c)) return { ok: false, error: 'counters is not an object' };
  const counters: Record<string, number> = {};
  for (const [k, v] of Object.entries(c as Record<string, unknown>)) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) return { ok: false, error: `counter ${k} is not a non-negative number` };
    counters[k] = v;
  }
  return { ok: true, counters };
}

export function formatCounterState(counters: Readonly<Record<string, number>>, now = new Date()): string {
  return `${JSON.stringify({ format: FORMAT, version: VERSION, saved: now.toISOString(), counters }, null, 1)}\n`;
}

/** Writes `text` to `path` so that a reader sees the old or the new file, never a part. */
export function writeFileAtomic(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, path);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      /* nothing left to clean */
    }
    throw e;
  }
  try {
    // The rename itself is durable only once the directory is synced.
    const dfd = openSync(dirname(path), 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    /* some file systems refuse fsync on a directory; the rename has happened */
  }
}

export class CounterStore {
  private readonly path: string;
  private readonly registry: MetricsRegistry;
  private readonly log: Logger;
  private readonly intervalMs: number;
  private savedVersion = -1;
  private timer: NodeJS.Timeout | undefined;
  private failing = false;

  constructor(o: { path: string; registry: MetricsRegistry; log: Logger; intervalMs?: number }) {
    this.path = o.path;
    this.registry = o.registry;
    this.log = o.log;
    this.intervalMs = o.intervalMs ?? DEFAULT_SAVE_INTERVAL_MS;
  }

  /**
   * Loads the saved counters into the registry. A missing file is a first start. A file that
   * does not parse is moved aside (`.corrupt`) and the counters start from 0: metrics must not
   * stop because of it, and Prometheus' rate() copes with one reset.
   */
  load(): void {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        this.log.info({ state: this.path }, 'no saved counters: starting from 0');
        return;
      }
      throw e;
    }
    const r = parseCounterState(text);
    if (!r.ok) {
      const aside = `${this.path}.corrupt`;
      this.log.error({ state: this.path, error: r.error, movedTo: aside }, 'saved counters unreadable: starting from 0');
      try {
        renameSync(this.path, aside);
      } catch {
        /* the next save replaces it anyway */
      }
      return;
    }
    const unknown = this.registry.restoreCounters(r.counters);
    if (unknown.length) this.log.warn({ state: this.path, unknown }, 'saved counters this release does not know were dropped');
    this.savedVersion = this.registry.counterVersion;
    this.log.info({ state: this.path }, 'saved counters loaded');
  }

  /** Saves now if a counter changed since the last save; false if writing failed. */
  save(): boolean {
    const version = this.registry.counterVersion;
    if (version === this.savedVersion) return true;
    try {
      writeFileAtomic(this.path, formatCounterState(this.registry.counters()));
      this.savedVersion = version;
      if (this.failing) this.log.info({ state: this.path }, 'counters saved again');
      this.failing = false;
      return true;
    } catch (e) {
      if (!this.failing) this.log.error({ state: this.path, error: (e as Error).message }, 'cannot save counters');
      this.failing = true;
      return false;
    }
  }

  /** Saves every `intervalMs` while counters change. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.save(), this.intervalMs);
    this.timer.unref();
  }

  /** Stops the timer and saves a last time. */
  stop(): boolean {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    return this.save();
  }
}
