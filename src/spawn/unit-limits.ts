// Resource limits for a connection's sessions (translation CGROUP_SET, lukko.conf `spawn`
// resources) land on the connection's own systemd unit, lukko@….service, whose cgroup holds
// every process of the connection: `systemctl set-property --runtime` changes it, and
// `systemctl status` shows the limits (docs/design.md, "Session isolation"). Without a unit
// of its own there is nowhere to put them, and the login or the connection is refused
// (fail closed): a limit is never dropped.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
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

/**
 * Puts the properties on the connection's unit (each one once; a repeated property keeps
 * the first value, so a later, different request cannot loosen it: it is refused).
 * Throws when they cannot be applied.
 */
export async function setUnitLimits(props: readonly UnitProperty[]): Promise<string> {
  const name = await ownUnit();
  const todo: string[] = [];
  for (const p of props) {
    const key = p.slice(0, p.indexOf('='));
    const before = applied.get(key);
    if (before === undefined) todo.push(p);
    else if (before !== p) throw new Error(`${key} is already ${before.slice(key.length + 1)} for this connection; cannot also be ${p.slice(key.length + 1)}`);
  }
  if (todo.length === 0) return name;
  await systemctl(['set-property', '--runtime', name, ...todo]);
  for (const p of todo) applied.set(p.slice(0, p.indexOf('=')), p);
  return name;
}
