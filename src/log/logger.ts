// One JSON object per event. Under systemd each line carries a syslog priority prefix
// ("<6>{...}"), which journald turns into PRIORITY= (SyslogLevelPrefix= defaults to on); in a
// terminal the same events are printed readably. Writes are synchronous: a per-connection
// process may exit right after its last line, and no pino transport (a worker thread) is
// worth its start-up cost here.
import { writeSync } from 'node:fs';
import pino from 'pino';

export type Logger = pino.Logger;
export type LogMode = 'journal' | 'json' | 'pretty' | 'none';

const SYSLOG_PRIORITY: Record<number, number> = { 10: 7, 20: 7, 30: 6, 40: 4, 50: 3, 60: 2 };
const LEVEL_NAME: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

export function chooseLogMode(fd: number, env: NodeJS.ProcessEnv = process.env, isTty = false): LogMode {
  if (fd < 0) return 'none';
  if (env.JOURNAL_STREAM || env.INVOCATION_ID) return 'journal';
  return isTty ? 'pretty' : 'json';
}

function writeAll(fd: number, text: string): void {
  try {
    writeSync(fd, text);
  } catch {
    // A full or closed log pipe must never take the connection down with it.
  }
}

export function prettyLine(json: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const { level, time, msg, pid, hostname, ...rest } = o;
  void hostname;
  const t = typeof time === 'number' ? new Date(time).toISOString().slice(11, 23) : '';
  const extra = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return `${t} ${LEVEL_NAME[level as number] ?? level} [${pid}] ${msg ?? ''}${extra ? ' ' + extra : ''}\n`;
}

function destination(fd: number, mode: LogMode): { write(s: string): void } {
  switch (mode) {
    case 'journal':
      return {
        write(s: string) {
          const m = /"level":(\d+)/.exec(s);
          writeAll(fd, `<${SYSLOG_PRIORITY[Number(m?.[1])] ?? 6}>${s}`);
        },
      };
    case 'pretty':
      return { write: (s: string) => writeAll(fd, prettyLine(s)) };
    case 'none':
      return { write: () => {} };
    default:
      return { write: (s: string) => writeAll(fd, s) };
  }
}

// pino gives each child its own level, fixed when it is made; a level changed at run time
// (the companion's VERBOSE) must reach the children too, so every logger is remembered.
const family = new WeakMap<Logger, Set<WeakRef<Logger>>>();

/** Sets the level of `root` and of every child made from it so far (and later ones inherit it). */
export function setLogLevel(root: Logger, level: string): void {
  root.level = level;
  for (const ref of family.get(root) ?? []) {
    const child = ref.deref();
    if (child) child.level = level;
  }
}

/**
 * VERBOSE's levels (spec §3.4: 0 quiet, 1 the default, more is more) in pino's terms: 0 error,
 * 1 info, 2 debug, 3 and above trace. The companion and every instance use this one mapping.
 */
export function verboseLevel(level: number): string {
  return level <= 0 ? 'error' : level === 1 ? 'info' : level === 2 ? 'debug' : 'trace';
}

export function createLogger(opts: { fd: number; mode: LogMode; level?: string; base?: Record<string, unknown> }): Logger {
  const children = new Set<WeakRef<Logger>>();
  const root = pino(
    {
      onChild: (child: Logger) => {
        children.add(new WeakRef(child));
      },
      level: opts.level ?? 'info',
      base: { pid: process.pid, ...opts.base },
      timestamp: opts.mode === 'journal' ? false : pino.stdTimeFunctions.epochTime, // journald stamps lines itself
    },
    destination(opts.fd, opts.mode),
  );
  family.set(root, children);
  return root;
}
