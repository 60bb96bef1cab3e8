// Resource limits for a connection's sessions (translation CGROUP_SET, lukko.conf `spawn`
// resources) land on the connection's own systemd unit, lukko@….service, whose cgroup holds
// every process of the connection: `systemctl set-property --runtime` changes it, and
// `systemctl status` shows the limits (docs/design.md, "Session isolation"). Without a unit
// of its own there is nowhere to put them, and the login or the connection is refused
// (fail closed): a limit is never dropped.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import type { MemoryLimit, SpawnResources, SwapLimit } from '../config/schema.ts';

/** One systemd property assignment, `Name=value`. */
export type UnitProperty = string;

const BYTES = /^([0-9]{1,19})([KMGT]?)$/;

function byteValue(value: string): string | undefined {
  if (value === 'max') return 'infinity';
  const m = BYTES.exec(value);
  return m === null ? undefined : `${m[1]}${m[2]}`;
}

function integer(value: string, min: number, max: number): string | undefined {
  if (!/^[0-9]{1,10}$/.test(value)) return undefined;
  const n = Number(value);
  return n >= min && n <= max ? String(n) : undefined;
}

/**
 * Pure: the systemd properties for one cgroup v2 attribute (CGROUP_SET `name=value`), or
 * undefined when systemd has no property for it (the login is then refused).
 */
export function unitProperty(name: string, value: string): UnitProperty[] | undefined {
  const bytes = (prop: string): UnitProperty[] | undefined => {
    const v = byteValue(value);
    return v === undefined ? undefined : [`${prop}=${v}`];
  };
  switch (name) {
    case 'memory.max':
      return bytes('MemoryMax');
    case 'memory.high':
      return bytes('MemoryHigh');
    case 'memory.low':
      return bytes('MemoryLow');
    case 'memory.min':
      return bytes('MemoryMin');
    case 'memory.swap.max':
      return bytes('MemorySwapMax');
    case 'pids.max': {
      const v = value === 'max' ? 'infinity' : integer(value, 1, 2 ** 31);
      return v === undefined ? undefined : [`TasksMax=${v}`];
    }
    case 'cpu.weight': {
      const v = integer(value, 1, 10000);
      return v === undefined ? undefined : [`CPUWeight=${v}`];
    }
    case 'io.weight': {
      const v = integer(value.replace(/^default /, ''), 1, 10000);
      return v === undefined ? undefined : [`IOWeight=${v}`];
    }
    case 'cpu.max': {
      // "QUOTA PERIOD" in microseconds, or "max [PERIOD]"
      const m = /^(max|[0-9]{1,12})(?: ([0-9]{1,12}))?$/.exec(value);
      if (m === null) return undefined;
      const period = Number(m[2] ?? '100000');
      if (period < 1000 || period > 1_000_000) return undefined;
      if (m[1] === 'max') return ['CPUQuota=', `CPUQuotaPeriodSec=${period}us`];
      const percent = Math.ceil((Number(m[1]) * 100) / period);
      return percent < 1 ? undefined : [`CPUQuota=${percent}%`, `CPUQuotaPeriodSec=${period}us`];
    }
    default:
      return undefined;
  }
}

function memory(prop: string, v: MemoryLimit | SwapLimit | undefined): UnitProperty[] {
  if (v === undefined) return [];
  if (v === 'infinity') return [`${prop}=infinity`];
  if ('percent' in v) return [`${prop}=${v.percent}%`];
  return [`${prop}=${v.bytes}`];
}

/** Pure: lukko.conf's `spawn` resources as systemd properties. */
export function resourceProperties(r: SpawnResources): UnitProperty[] {
  return [
    ...(r.cpuWeight !== undefined ? [`CPUWeight=${r.cpuWeight}`] : []),
    ...(r.ioWeight !== undefined ? [`IOWeight=${r.ioWeight}`] : []),
    ...(r.tasksMax !== undefined ? [`TasksMax=${r.tasksMax}`] : []),
    ...memory('MemoryMin', r.memoryMin),
    ...memory('MemoryLow', r.memoryLow),
    ...memory('MemoryHigh', r.memoryHigh),
    ...memory('MemoryMax', r.memoryMax),
    ...memory('MemorySwapMax', r.memorySwapMax),
  ];
}

/** Pure: the unit of a /proc/self/cgroup text (cgroup v2 only), e.g. `lukko@3-….service`. */
export function unitOfCgroup(text: string): string | undefined {
  const line = text.split('\n').find((l) => l.startsWith('0::/'));
  const name = line?.slice(line.lastIndexOf('/') + 1);
  return name !== undefined && /^[A-Za-z0-9@:._\\-]+\.service$/.test(name) ? name : undefined;
}

/**
 * Whether this process may have a unit of its own: started by systemd (INVOCATION_ID) in a
 * service's cgroup. setUnitLimits checks that the unit's main process is really this one.
 */
export function mayHaveOwnUnit(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.INVOCATION_ID === undefined) return false;
  try {
    return unitOfCgroup(readFileSync('/proc/self/cgroup', 'utf8')) !== undefined;
  } catch {
    return false;
  }
}

function systemctl(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('systemctl', args, { timeout: 10_000, env: { PATH: '/usr/bin:/bin:/usr/sbin:/sbin' } }, (err, stdout, stderr) => {
      if (err) reject(new Error(`systemctl ${args[0]}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

let unit: Promise<string> | undefined;
const applied = new Map<string, string>();

/** The connection's own unit, checked once: its MainPID must be this process. */
function ownUnit(): Promise<string> {
  unit ??= (async () => {
    const name = unitOfCgroup(readFileSync('/proc/self/cgroup', 'utf8'));
    if (name === undefined) throw new Error('this process is not in a service of its own (cgroup v2)');
    const main = (await systemctl(['show', '--property=MainPID', '--value', name])).trim();
    if (main !== String(process.pid)) throw new Error(`${name} is not this connection's unit (its main process is ${main})`);
    return name;
  })();
  return unit;
}

const SUFFIX: Readonly<Record<string, number>> = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/** A property's value as a number to compare (Infinity for none), or undefined. */
function magnitude(value: string): { n: number; unit: string } | undefined {
  if (value === 'infinity' || value === '') return { n: Infinity, unit: '' };
  let m = /^([0-9]+)([KMGT]?)$/.exec(value);
  if (m) return { n: Number(m[1]) * SUFFIX[m[2]!]!, unit: '' };
  m = /^([0-9]+(?:\.[0-9]+)?)%$/.exec(value);
  if (m) return { n: Number(m[1]), unit: '%' };
  m = /^([0-9]+)us$/.exec(value);
  if (m) return { n: Number(m[1]), unit: 'us' };
  return undefined;
}

const key = (p: UnitProperty): string => p.slice(0, p.indexOf('='));
const val = (p: UnitProperty): string => p.slice(p.indexOf('=') + 1);

/**
 * Pure: of two values for one property, the stricter (the smaller limit; restrictions only
 * add up). Throws when they cannot be compared (64M against 50%).
 */
export function stricter(a: UnitProperty, b: UnitProperty): UnitProperty {
  if (a === b) return a;
  const x = magnitude(val(a));
  const y = magnitude(val(b));
  if (x === undefined || y === undefined || (x.unit !== y.unit && x.n !== Infinity && y.n !== Infinity)) {
    throw new Error(`${key(a)}: cannot combine ${val(a)} and ${val(b)}`);
  }
  return y.n < x.n ? b : a;
}

/** Pure: one value per property, the stricter where two sources name it. */
export function mergeUnitProperties(props: readonly UnitProperty[]): UnitProperty[] {
  const out = new Map<string, UnitProperty>();
  for (const p of props) {
    const before = out.get(key(p));
    out.set(key(p), before === undefined ? p : stricter(before, p));
  }
  return [...out.values()];
}

/**
 * Puts the properties on the connection's unit. A property already set keeps the stricter
 * of the two values, so a later session can tighten a limit but never loosen it. Throws
 * when they cannot be applied.
 */
export async function setUnitLimits(props: readonly UnitProperty[]): Promise<string> {
  const name = await ownUnit();
  const todo: string[] = [];
  for (const p of mergeUnitProperties(props)) {
    const before = applied.get(key(p));
    const next = before === undefined ? p : stricter(before, p);
    if (next !== before) todo.push(next);
  }
  if (todo.length === 0) return name;
  await systemctl(['set-property', '--runtime', name, ...todo]);
  // systemd accepts a limit whose controller the unit does not have (a cgroup v1 or
  // hybrid host, a container without delegation) and nothing enforces it. Fail closed.
  const dir = cgroupDir(readFileSync('/proc/self/cgroup', 'utf8'), readFileSync('/proc/self/mounts', 'utf8'));
  for (const p of todo) {
    const file = CONTROLLER_FILE[key(p)];
    if (file === undefined || dir === undefined || !existsSync(`${dir}/${file}`)) {
      throw new Error(`${key(p)} cannot be enforced: ${name} has no ${file ?? 'cgroup'} (the ${file?.split('.')[0] ?? ''} controller is not enabled for it)`);
    }
    applied.set(key(p), p);
  }
  return name;
}

/** The cgroup v2 file each property writes: it exists only where the controller is enabled. */
const CONTROLLER_FILE: Readonly<Record<string, string>> = {
  MemoryMax: 'memory.max', MemoryHigh: 'memory.high', MemoryLow: 'memory.low', MemoryMin: 'memory.min', MemorySwapMax: 'memory.swap.max',
  TasksMax: 'pids.max', CPUWeight: 'cpu.weight', IOWeight: 'io.weight', CPUQuota: 'cpu.max', CPUQuotaPeriodSec: 'cpu.max',
};

/** Pure: this process's cgroup v2 directory, where cgroup2 is mounted (/sys/fs/cgroup, or …/unified on a hybrid host). */
export function cgroupDir(procSelfCgroup: string, procMounts: string): string | undefined {
  const line = procSelfCgroup.split('\n').find((l) => l.startsWith('0::/'));
  const mount = procMounts.split('\n').map((l) => l.split(' ')).find((f) => f[2] === 'cgroup2')?.[1];
  return line === undefined || mount === undefined ? undefined : `${mount}${line.slice(3)}`.replace(/\/$/, '');
}
