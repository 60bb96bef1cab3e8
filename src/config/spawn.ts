// `spawn { ... }`: identity rules and systemd resource limits for spawned sessions. Repeated
// blocks update the same settings. User and group names stay strings here; they are resolved
// (and `No such user`/`No such group` raised) at startup, outside the pure parser.
import type { LineCursor } from './lexer.ts';
import type { LineContext } from './reader.ts';
import type { Config, IdSpec, SpawnConfig, SpawnResources } from './schema.ts';
import { parseMemoryLimit, parseSwapLimit, type SizeResult } from './byte-size.ts';
import { dispatch, parsePositiveInteger, readBool, readValue, type AttributeHandler, type BlockParser } from './settings.ts';

// uid_t/gid_t are 32 bits, and (uid_t)-1 means "no change" to the kernel, so it is no real id.
const MAX_ID = 0xfffffffe;

function parseId(v: string, c: LineCursor, what: 'user' | 'group'): IdSpec {
  if (!/^[0-9]+$/.test(v)) return { name: v };
  const id = Number(v);
  if (id > MAX_ID) throw c.failLast(`Invalid ${what} id`);
  return { id };
}

function readUser(c: LineCursor): IdSpec {
  return parseId(readValue(c), c, 'user');
}

function readGroup(c: LineCursor): IdSpec {
  return parseId(readValue(c), c, 'group');
}

function allowUser(s: SpawnConfig, c: LineCursor): void {
  const v = readValue(c);
  const from = /^([0-9]+)-$/.exec(v);
  if (from === null) {
    s.allowUsers.push(parseId(v, c, 'user'));
    return;
  }
  const id = Number(from[1]);
  if (id > MAX_ID) throw c.failLast('Invalid user id');
  s.allowUsersFrom = id;
}

const IDENTITY = new Map<string, AttributeHandler<SpawnConfig>>([
  ['allow_user', allowUser],
  ['allow_group', (s, c) => {
    s.allowGroups.push(readGroup(c));
  }],
  ['cgroups_writable_by_group', (s, c) => {
    s.cgroupsWritableByGroup = readGroup(c);
  }],
  ['default_user', (s, c) => {
    const user = readUser(c);
    if (s.defaultUser !== undefined) throw c.failLast("Duplicate 'default_user'");
    s.defaultUser = user;
  }],
  ['systemd_scope_optional', (s, c) => {
    s.systemdScopeOptional = readBool(c);
  }],
]);

// The original's range message always names the minimum; lukko names the bound that was crossed.
function readRange(c: LineCursor, min: number, max: number): number {
  const v = readValue(c);
  const n = parsePositiveInteger(v) ?? (/^0+$/.test(v) ? 0 : undefined);
  if (n === undefined) throw c.failLast('Positive integer expected');
  if (n < min) throw c.failLast(`Value too small (minimum ${min})`);
  if (n > max) throw c.failLast(`Value too large (maximum ${max})`);
  return n;
}

function readSize<T>(c: LineCursor, parse: (text: string) => SizeResult<T>): T {
  const result = parse(readValue(c));
  if (!result.ok) throw c.failLast(result.reason);
  return result.value;
}

type ResourceHandler = (r: SpawnResources, c: LineCursor) => void;

/** systemd resource-control names, matched case-insensitively like the original. */
const RESOURCES = new Map<string, ResourceHandler>([
  ['cpuweight', (r, c) => {
    r.cpuWeight = readRange(c, 1, 10000);
  }],
  ['ioweight', (r, c) => {
    r.ioWeight = readRange(c, 1, 10000);
  }],
  ['tasksmax', (r, c) => {
    r.tasksMax = readRange(c, 1, 2 ** 31);
  }],
  ['memorymin', (r, c) => {
    r.memoryMin = readSize(c, parseMemoryLimit);
  }],
  ['memorylow', (r, c) => {
    r.memoryLow = readSize(c, parseMemoryLimit);
  }],
  ['memoryhigh', (r, c) => {
    r.memoryHigh = readSize(c, parseMemoryLimit);
  }],
  ['memorymax', (r, c) => {
    r.memoryMax = readSize(c, parseMemoryLimit);
  }],
  ['memoryswapmax', (r, c) => {
    r.memorySwapMax = readSize(c, parseSwapLimit);
  }],
]);

export class SpawnBlock implements BlockParser {
  readonly keyword = 'spawn';
  private readonly spawn: SpawnConfig;

  constructor(config: Config) {
    this.spawn = config.spawn;
  }

  attribute(name: string, c: LineCursor, ctx: LineContext): void {
    const resource = RESOURCES.get(name.toLowerCase());
    if (resource !== undefined) resource(this.spawn.resources, c);
    else dispatch(IDENTITY, name, this.spawn, c, ctx);
  }

  finish(): void {}
}
