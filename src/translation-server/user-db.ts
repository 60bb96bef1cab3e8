// The translation server's user file (docs/translation-server.md): INI text → validated
// accounts, or every problem found, each with its line. Pure: no file system, no clock.
//
//   [alice]                  an account (the section name is the SSH user name)
//   uid = 2001
//   ...
//   [alice:sftp]             a partition of that account (sftp, rsync, git-*-pack)
//   execute = /usr/lib/openssh/sftp-server
//
// Values are read with the `ini` package, one line at a time, so they mean exactly what
// `ini` makes of them (quotes, `\;` escapes, true/false). The structure is read here: the
// package would split a section name at its dots ([john.doe] becomes john → doe), would let a
// repeated key silently replace the first one, merge repeated sections and skip lines it
// cannot read. All of that is an error here instead, with the line number, and so is an
// unknown key. One more trap is refused: `;` and `#` start a comment anywhere in an unquoted
// value, so `a;b` would silently become `a`. A `;` or `#` right after other text is refused
// with a hint to quote the value; after whitespace it is a comment, as operators expect.

import ini from 'ini';
import { parseAuthorizedKeys } from '../auth/authorized-keys.ts';
import { isValidUserName } from '../translation/login-request.ts';
import { SERVICE_NAMES } from '../translation/response.ts';
import type { ServiceName } from '../translation/response.ts';
import { parseRlimits } from '../translation/rlimits.ts';
import { PasswordHashError, parsePasswordHash } from './password-hash.ts';
import type { PasswordHash } from './password-hash.ts';

export type BindMountKey = 'bind_mount' | 'bind_mount_rw' | 'bind_mount_exec' | 'bind_mount_rw_exec' | 'bind_mount_file' | 'bind_mount_file_exec';
const BIND_MOUNT_KEYS: readonly string[] = ['bind_mount', 'bind_mount_rw', 'bind_mount_exec', 'bind_mount_rw_exec', 'bind_mount_file', 'bind_mount_file_exec'];

export interface BindMount {
  readonly key: BindMountKey;
  readonly source: string;
  readonly target: string;
  /** A missing source skips the mount (OPTIONAL); not for bind_mount_file_exec. */
  readonly optional: boolean;
}

/** The other mounts, in file order after the bind mounts. */
export type OtherMount =
  | { readonly key: 'mount_tmpfs' | 'mount_empty'; readonly target: string }
  | { readonly key: 'write_file'; readonly path: string; readonly contents: string }
  | { readonly key: 'symlink'; readonly target: string; readonly linkPath: string };
type OtherMountKey = OtherMount['key'];
const OTHER_MOUNT_KEYS: readonly string[] = ['mount_tmpfs', 'mount_empty', 'write_file', 'symlink'];

/** How one process runs: the account's own, or one partition's. */
export interface ProcessSettings {
  uid: number;
  gid: number;
  groups: number[];
  home: string;
  shell?: string;
  /** Partitions only: the program (EXECUTE). */
  execute?: string;
  chdir?: string;
  umask?: number;
  rlimits?: string;
  noNewPrivs: boolean;
  setenv: string[];
  childTags: string[];
  userNamespace: boolean;
  /** MAPPED_UID_GID: the uid inside the user namespace. */
  mappedUid?: number;
  pidNamespace: boolean;
  networkNamespace: boolean;
  /** NETWORK_NAMESPACE_NAME: an `ip netns` namespace. */
  networkNamespaceName?: string;
  ipcNamespace: boolean;
  cgroupNamespace: boolean;
  utsHostname?: string;
  mountRootTmpfs: boolean;
  pivotRoot?: string;
  mountProc: boolean;
  mountDev: boolean;
  mountHome?: string;
  /** tmpfs options for /tmp; '' for the defaults. */
  mountTmpTmpfs?: string;
  mountTmpTmpfsExec: boolean;
  tmpfsDirsReadable: boolean;
  bindMounts: BindMount[];
  otherMounts: OtherMount[];
  chroot?: string;
  cgroup?: string;
  cgroupSet: string[];
}

export interface Partition {
  readonly name: ServiceName;
  readonly line: number;
  readonly settings: ProcessSettings;
}

export interface Account {
  readonly name: string;
  /** Line of the section header. */
  readonly line: number;
  readonly password?: PasswordHash;
  readonly authorizedKeys: readonly string[];
  readonly noHomeAuthorizedKeys: boolean;
  readonly sftpOnly: boolean;
  readonly noPassword?: 'unrestricted' | 'sftp';
  readonly settings: ProcessSettings;
  /** In file order. */
  readonly partitions: readonly Partition[];
}

export interface UserDb {
  readonly accounts: ReadonlyMap<string, Account>;
}

export interface UserDbProblem {
  /** 1-based; 0 when the problem is about the whole file. */
  readonly line: number;
  readonly message: string;
}

/** How many problems an error message lists before it stops. */
const MAX_LISTED = 20;

export class UserDbError extends Error {
  readonly file: string;
  readonly problems: readonly UserDbProblem[];

  constructor(file: string, problems: readonly UserDbProblem[]) {
    const listed = problems.slice(0, MAX_LISTED).map((p) => (p.line > 0 ? `${file}:${p.line}: ${p.message}` : `${file}: ${p.message}`));
    if (problems.length > MAX_LISTED) listed.push(`${file}: … and ${problems.length - MAX_LISTED} more problems`);
    super(listed.join('\n'));
    this.name = 'UserDbError';
    this.file = file;
    this.problems = problems;
  }
}

// ---------------------------------------------------------------- keys

type Kind = 'bool' | 'text' | 'list';
type Scope = 'account' | 'process' | 'partition';

const KEYS: Readonly<Record<string, { kind: Kind; scope: Scope }>> = {
  password: { kind: 'text', scope: 'account' },
  authorized_keys: { kind: 'list', scope: 'account' },
  no_home_authorized_keys: { kind: 'bool', scope: 'account' },
  sftp_only: { kind: 'bool', scope: 'account' },
  no_password: { kind: 'text', scope: 'account' },

  uid: { kind: 'text', scope: 'process' },
  gid: { kind: 'text', scope: 'process' },
  groups: { kind: 'text', scope: 'process' },
  home: { kind: 'text', scope: 'process' },
  shell: { kind: 'text', scope: 'process' },
  chdir: { kind: 'text', scope: 'process' },
  umask: { kind: 'text', scope: 'process' },
  rlimits: { kind: 'text', scope: 'process' },
  no_new_privs: { kind: 'bool', scope: 'process' },
  setenv: { kind: 'list', scope: 'process' },
  child_tag: { kind: 'list', scope: 'process' },
  user_namespace: { kind: 'bool', scope: 'process' },
  mapped_uid: { kind: 'text', scope: 'process' },
  pid_namespace: { kind: 'bool', scope: 'process' },
  network_namespace: { kind: 'bool', scope: 'process' },
  network_namespace_name: { kind: 'text', scope: 'process' },
  ipc_namespace: { kind: 'bool', scope: 'process' },
  cgroup_namespace: { kind: 'bool', scope: 'process' },
  uts_hostname: { kind: 'text', scope: 'process' },
  mount_root_tmpfs: { kind: 'bool', scope: 'process' },
  pivot_root: { kind: 'text', scope: 'process' },
  mount_proc: { kind: 'bool', scope: 'process' },
  mount_dev: { kind: 'bool', scope: 'process' },
  mount_home: { kind: 'text', scope: 'process' },
  mount_tmp_tmpfs: { kind: 'text', scope: 'process' },
  mount_tmp_tmpfs_exec: { kind: 'bool', scope: 'process' },
  tmpfs_dirs_readable: { kind: 'bool', scope: 'process' },
  bind_mount: { kind: 'list', scope: 'process' },
  bind_mount_rw: { kind: 'list', scope: 'process' },
  bind_mount_exec: { kind: 'list', scope: 'process' },
  bind_mount_rw_exec: { kind: 'list', scope: 'process' },
  bind_mount_file: { kind: 'list', scope: 'process' },
  bind_mount_file_exec: { kind: 'list', scope: 'process' },
  mount_tmpfs: { kind: 'list', scope: 'process' },
  mount_empty: { kind: 'list', scope: 'process' },
  write_file: { kind: 'list', scope: 'process' },
  symlink: { kind: 'list', scope: 'process' },
  chroot: { kind: 'text', scope: 'process' },
  cgroup: { kind: 'text', scope: 'process' },
  cgroup_set: { kind: 'list', scope: 'process' },

  execute: { kind: 'text', scope: 'partition' },
};

/** Every key, for documentation and tests. */
export const USER_DB_KEYS: readonly string[] = Object.keys(KEYS);

// ---------------------------------------------------------------- scanning

interface Item {
  readonly value: unknown;
  readonly line: number;
}

interface Entry {
  readonly key: string;
  readonly line: number;
  /** Written with [] at least once. */
  bracketed: boolean;
  readonly items: Item[];
}

interface Section {
  readonly user: string;
  readonly partition: ServiceName | undefined;
  readonly line: number;
  readonly entries: Map<string, Entry>;
}

const KEY = /^[A-Za-z][A-Za-z0-9_-]*$/;
const HEADER = /^\s*\[([^\]]*)\]\s*(?:[;#].*)?$/;

class Problems {
  readonly list: UserDbProblem[] = [];

  add(line: number, message: string): void {
    this.list.push({ line, message });
  }
}

/**
 * Where an unquoted value's comment starts (the first `;` or `#` not escaped with `\`),
 * as `ini` decides it; -1 without one.
 */
function commentStart(value: string): number {
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c === '\\') i++;
    else if (c === ';' || c === '#') return i;
  }
  return -1;
}

/** Why `ini` would not read this value as written, or undefined when it would. */
function valueTrap(raw: string): string | undefined {
  const v = raw.trim();
  if (v.startsWith('"') || v.startsWith("'")) {
    const q = v[0]!;
    if (v.length < 2 || !v.endsWith(q)) return 'a quoted value must end the line (no comment after it) and close its quote';
    if (q === '"') {
      try {
        JSON.parse(v);
      } catch {
        return 'a "…" value is a JSON string: escape \\ and " inside it with \\';
      }
    }
    return undefined;
  }
  const at = commentStart(v);
  if (at > 0 && !/\s/.test(v[at - 1]!)) {
    const c = v[at]!;
    return `"${c}" starts a comment and would cut this value short; write \\${c} or quote the whole value ("…")`;
  }
  return undefined;
}

function scan(text: string, problems: Problems): Section[] {
  const sections: Section[] = [];
  const byHeader = new Map<string, Section>();
  let current: Section | undefined;
  let skipping = false; // inside a section whose header was refused
  const lines = text.replace(/^\uFEFF/, '').split(/\r\n|\n|\r/);
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    const line = i + 1;
    if (/^\s*$/.test(raw) || /^\s*[;#]/.test(raw)) continue;

    const header = HEADER.exec(raw);
    if (header !== null) {
      const name = header[1]!.trim();
      const colon = name.indexOf(':');
      const user = colon < 0 ? name : name.slice(0, colon);
      const partition = colon < 0 ? undefined : name.slice(colon + 1);
      skipping = true;
      current = undefined;
      if (!isValidUserName(user)) {
        problems.add(line, `[${name.slice(0, 64)}]: "${user.slice(0, 64)}" is not a user name lukko accepts (1 to 255 of A-Z a-z 0-9 . _ @ -)`);
        continue;
      }
      if (partition !== undefined && !(SERVICE_NAMES as readonly string[]).includes(partition)) {
        problems.add(line, `[${name}]: unknown partition "${partition.slice(0, 64)}" (lukko uses ${SERVICE_NAMES.join(', ')})`);
        continue;
      }
      const first = byHeader.get(name);
      if (first !== undefined) {
        problems.add(line, `[${name}] appears again (first on line ${first.line}); put all of its keys in one section`);
        continue;
      }
      current = { user, partition: partition as ServiceName | undefined, line, entries: new Map() };
      byHeader.set(name, current);
      sections.push(current);
      skipping = false;
      continue;
    }

    if (current === undefined) {
      if (!skipping) problems.add(line, 'a key outside any section: start an account with [username]');
      continue;
    }
    const where = `[${current.user}${current.partition === undefined ? '' : `:${current.partition}`}]`;
    const eq = raw.indexOf('=');
    if (eq < 0) {
      problems.add(line, `${where}: "${raw.trim().slice(0, 64)}" is neither "key = value" nor a [section]`);
      continue;
    }
    const rawKey = raw.slice(0, eq).trim();
    const bracketed = rawKey.endsWith('[]');
    const key = bracketed ? rawKey.slice(0, -2) : rawKey;
    if (!KEY.test(key)) {
      problems.add(line, `${where}: "${rawKey.slice(0, 64)}" is not a key`);
      continue;
    }
    const spec = Object.hasOwn(KEYS, key) ? KEYS[key] : undefined;
    if (spec === undefined) {
      const guess = key.toLowerCase().replace(/-/g, '_');
      const similar = Object.hasOwn(KEYS, guess) ? ` (did you mean ${guess}?)` : '';
      problems.add(line, `${where}: unknown key "${key}"${similar}`);
      continue;
    }
    const trap = valueTrap(raw.slice(eq + 1));
    if (trap !== undefined) {
      problems.add(line, `${where} ${key}: ${trap}`);
      continue;
    }
    // The value as `ini` reads this line (the key is plain, so it comes back as written).
    const decoded = (ini.decode(`${rawKey}=${raw.slice(eq + 1)}`) as Record<string, unknown>)[key];
    const value = bracketed && Array.isArray(decoded) ? decoded[0] : decoded;

    const entry = current.entries.get(key);
    if (entry === undefined) {
      current.entries.set(key, { key, line, bracketed, items: [{ value, line }] });
      continue;
    }
    if (spec.kind !== 'list') {
      problems.add(line, `${where} ${key}: given again (first on line ${entry.line}); it takes one value`);
      continue;
    }
    if (!bracketed && !entry.bracketed) {
      problems.add(line, `${where} ${key}: given again (first on line ${entry.line}); write ${key}[] = … for each value`);
      continue;
    }
    entry.bracketed ||= bracketed;
    entry.items.push({ value, line });
  }
  return sections;
}

// ---------------------------------------------------------------- values

const MAX_ID = 0xfffffffe; // (uid_t)-1 means "unchanged" to setresuid()
const MAX_GROUPS = 32; // UID_GID's limit
const MAX_PATH = 4096;
const NAME = /^[A-Za-z0-9_-]{1,255}$/;
const CGROUP_NAME = /^[a-z_]+$/;
const HOSTNAME = /^(?=.{1,64}$)[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/;
/** NUL would cut a string short on a C server; other control characters have no place in these values. */
const CONTROL = /[\u0000-\u001f\u007f]/;

class Reject extends Error {}

function text(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  throw new Reject('not a plain value');
}

function bool(value: unknown): boolean {
  if (value === true || value === 'yes') return true;
  if (value === false || value === 'no') return false;
  throw new Reject(`"${text(value).slice(0, 64)}" is not true or false`);
}

function id(s: string, what: string): number {
  if (!/^[0-9]{1,10}$/.test(s) || Number(s) < 1 || Number(s) > MAX_ID) {
    const root = what === 'group id' ? '' : ' (0 is root, which cannot log in through the translation server)';
    throw new Reject(`"${s.slice(0, 64)}" is not a ${what} from 1 to ${MAX_ID}${root}`);
  }
  return Number(s);
}

function absolute(s: string): string {
  if (!s.startsWith('/')) throw new Reject(`"${s.slice(0, 64)}" is not an absolute path`);
  if (CONTROL.test(s)) throw new Reject('contains a control character');
  if (Buffer.byteLength(s) > MAX_PATH) throw new Reject(`longer than ${MAX_PATH} bytes`);
  return s;
}

function plain(s: string, max = 1024): string {
  if (CONTROL.test(s)) throw new Reject('contains a control character');
  if (Buffer.byteLength(s) > max) throw new Reject(`longer than ${max} bytes`);
  return s;
}

function groupList(s: string): number[] {
  const groups = s.split(/[\s,]+/).filter((g) => g !== '').map((g) => {
    if (g === '0') throw new Reject('group 0 (root) cannot be given to an account here');
    return id(g, 'group id');
  });
  if (groups.length > MAX_GROUPS) throw new Reject(`more than ${MAX_GROUPS} groups`);
  return groups;
}

function bindMount(key: BindMountKey, s: string): BindMount {
  const parts = s.trim().split(/\s+/);
  const optional = parts.length > 1 && parts[parts.length - 1] === 'optional';
  if (optional) parts.pop();
  if (parts.length < 1 || parts.length > 2 || parts[0] === '') {
    throw new Reject('needs SOURCE, "SOURCE TARGET" or either with "optional" after it (absolute paths without whitespace)');
  }
  if (optional && key === 'bind_mount_file_exec') throw new Reject('bind_mount_file_exec cannot be optional (the protocol has no such mount)');
  const source = absolute(parts[0]!);
  const target = absolute(parts[1] ?? source);
  return { key, source, target, optional };
}

function otherMount(key: OtherMountKey, s: string): OtherMount {
  const t = s.trim();
  const space = t.search(/\s/);
  const first = space < 0 ? t : t.slice(0, space);
  const rest = space < 0 ? '' : t.slice(space).trim();
  switch (key) {
    case 'mount_tmpfs':
    case 'mount_empty':
      if (rest !== '') throw new Reject('needs one absolute path');
      if (absolute(first) === '/tmp') throw new Reject('/tmp takes mount_tmp_tmpfs');
      return { key, target: first };
    case 'write_file':
      // The contents may hold spaces; a control character (a newline too) cannot be written here.
      return { key, path: absolute(first), contents: plain(rest, 4096) };
    case 'symlink': {
      if (rest === '' || /\s/.test(rest)) throw new Reject('needs "TARGET LINKPATH" (no whitespace in either)');
      return { key, target: plain(first, MAX_PATH), linkPath: absolute(rest) };
    }
  }
}

function cgroupSet(s: string): string {
  plain(s);
  const eq = s.indexOf('=');
  const name = eq < 0 ? s : s.slice(0, eq);
  const value = eq < 0 ? '' : s.slice(eq + 1);
  const dot = name.indexOf('.');
  const controller = dot < 0 ? '' : name.slice(0, dot);
  const ok = dot > 0 && CGROUP_NAME.test(controller) && controller !== 'cgroup'
    && name.slice(dot + 1).split('.').every((a) => CGROUP_NAME.test(a)) && value !== '' && !value.includes('/');
  if (!ok) throw new Reject(`"${s.slice(0, 64)}" is not controller.attribute=value (lower case names, controller not "cgroup", value without "/")`);
  return s;
}

// ---------------------------------------------------------------- sections → accounts

/** ProcessSettings while a section is read: uid, gid and home may still be missing. */
type Draft = Omit<ProcessSettings, 'uid' | 'gid' | 'home'> & Partial<Pick<ProcessSettings, 'uid' | 'gid' | 'home'>>;

function emptyDraft(): Draft {
  return {
    groups: [], noNewPrivs: false, setenv: [], childTags: [], userNamespace: false, pidNamespace: false,
    networkNamespace: false, ipcNamespace: false, cgroupNamespace: false, mountRootTmpfs: false, mountProc: false, mountDev: false,
    mountTmpTmpfsExec: false, tmpfsDirsReadable: false, bindMounts: [], otherMounts: [], cgroupSet: [],
  };
}

function copyDraft(d: Draft): Draft {
  return {
    ...d,
    groups: [...d.groups], setenv: [...d.setenv], childTags: [...d.childTags], bindMounts: [...d.bindMounts], otherMounts: [...d.otherMounts], cgroupSet: [...d.cgroupSet],
  };
}

type TextField = 'home' | 'shell' | 'execute' | 'chdir' | 'rlimits' | 'utsHostname' | 'mountHome' | 'mountTmpTmpfs' | 'chroot' | 'cgroup' | 'pivotRoot' | 'networkNamespaceName';
const TEXT_FIELDS: Readonly<Record<string, TextField>> = {
  home: 'home', shell: 'shell', execute: 'execute', chdir: 'chdir', rlimits: 'rlimits', uts_hostname: 'utsHostname',
  mount_home: 'mountHome', mount_tmp_tmpfs: 'mountTmpTmpfs', chroot: 'chroot', cgroup: 'cgroup', pivot_root: 'pivotRoot',
  network_namespace_name: 'networkNamespaceName',
};
type BoolField = 'noNewPrivs' | 'userNamespace' | 'pidNamespace' | 'networkNamespace' | 'ipcNamespace' | 'cgroupNamespace' | 'mountRootTmpfs' | 'mountProc' | 'mountDev' | 'mountTmpTmpfsExec' | 'tmpfsDirsReadable';
const BOOL_FIELDS: Readonly<Record<string, BoolField>> = {
  no_new_privs: 'noNewPrivs', user_namespace: 'userNamespace', pid_namespace: 'pidNamespace', network_namespace: 'networkNamespace',
  ipc_namespace: 'ipcNamespace', cgroup_namespace: 'cgroupNamespace', mount_root_tmpfs: 'mountRootTmpfs', mount_proc: 'mountProc',
  mount_dev: 'mountDev', mount_tmp_tmpfs_exec: 'mountTmpTmpfsExec', tmpfs_dirs_readable: 'tmpfsDirsReadable',
};

/**
 * One process key into `d`. In a partition, an empty value drops what the account gave
 * (a list key: one empty item drops the whole inherited list); uid, gid and home cannot be
 * dropped.
 */
function applyProcessKey(d: Draft, entry: Entry, inPartition: boolean): void {
  const { key } = entry;
  const kind = KEYS[key]!.kind;
  if (kind === 'bool') {
    d[BOOL_FIELDS[key]!] = bool(entry.items[0]!.value);
    return;
  }
  if (kind === 'list') {
    const values = entry.items.map((i) => text(i.value));
    if (values.length === 1 && values[0]!.trim() === '' && inPartition) {
      if (key.startsWith('bind_mount')) d.bindMounts = d.bindMounts.filter((m) => m.key !== key);
      else if (OTHER_MOUNT_KEYS.includes(key)) d.otherMounts = d.otherMounts.filter((m) => m.key !== key);
      else if (key === 'setenv') d.setenv = [];
      else if (key === 'child_tag') d.childTags = [];
      else if (key === 'cgroup_set') d.cgroupSet = [];
      return;
    }
    // Per item, so that a problem names the item's own line.
    const parsed: unknown[] = [];
    for (const item of entry.items) {
      try {
        const s = text(item.value);
        if (s.trim() === '') throw new Reject('empty value');
        switch (key) {
          case 'setenv':
            plain(s, 4096);
            if (!/^[^=\s]+=/.test(s)) throw new Reject(`"${s.slice(0, 64)}" is not NAME=VALUE`);
            parsed.push(s);
            break;
          case 'child_tag':
            if (/\s/.test(s)) throw new Reject('a tag has no whitespace');
            parsed.push(plain(s, 255));
            break;
          case 'cgroup_set':
            parsed.push(cgroupSet(s));
            break;
          default:
            if (OTHER_MOUNT_KEYS.includes(key)) parsed.push(otherMount(key as OtherMountKey, s));
            else parsed.push(bindMount(key as BindMountKey, s));
        }
      } catch (e) {
        if (e instanceof Reject) throw new ItemReject(item.line, e.message);
        throw e;
      }
    }
    if (key === 'setenv') d.setenv = parsed as string[];
    else if (key === 'child_tag') d.childTags = parsed as string[];
    else if (key === 'cgroup_set') d.cgroupSet = parsed as string[];
    else if (OTHER_MOUNT_KEYS.includes(key)) d.otherMounts = [...d.otherMounts.filter((m) => m.key !== key), ...(parsed as OtherMount[])];
    else if (BIND_MOUNT_KEYS.includes(key)) d.bindMounts = [...d.bindMounts.filter((m) => m.key !== key), ...(parsed as BindMount[])];
    return;
  }

  const value = entry.items[0]!.value;
  if (key === 'mount_tmp_tmpfs' && typeof value === 'boolean') {
    if (value) d.mountTmpTmpfs = '';
    else delete d.mountTmpTmpfs;
    return;
  }
  const s = text(value).trim();
  if (s === '' && key !== 'groups') {
    if (!inPartition) throw new Reject('empty value (leave the key out instead)');
    if (key === 'uid' || key === 'gid' || key === 'home') throw new Reject('cannot be dropped in a partition; give another value');
    if (key === 'umask') delete d.umask;
    else delete d[TEXT_FIELDS[key]!];
    return;
  }
  switch (key) {
    case 'uid':
      d.uid = id(s, 'uid');
      return;
    case 'gid':
      d.gid = id(s, 'gid');
      return;
    case 'groups':
      d.groups = groupList(s);
      return;
    case 'umask':
      if (!/^0*[0-7]{1,3}$/.test(s)) throw new Reject(`"${s.slice(0, 64)}" is not an octal umask from 000 to 777`);
      d.umask = parseInt(s, 8);
      return;
    case 'rlimits':
      if (CONTROL.test(s) || !/^[\x20-\x7e]+$/.test(s) || !parseRlimits(s, new Map())) {
        throw new Reject(`"${s.slice(0, 64)}" is not a resource limit list such as "n1024 u200" (docs/translation-server.md)`);
      }
      d.rlimits = s;
      return;
    case 'uts_hostname':
      if (!HOSTNAME.test(s)) throw new Reject(`"${s.slice(0, 64)}" is not a host name (up to 64 characters)`);
      d.utsHostname = s;
      return;
    case 'mount_tmp_tmpfs':
      if (!/^[A-Za-z0-9_=,.:+-]{1,256}$/.test(s)) throw new Reject(`"${s.slice(0, 64)}" is not true, false or tmpfs options such as size=64M,mode=1777`);
      d.mountTmpTmpfs = s;
      return;
    case 'cgroup':
      if (!NAME.test(s)) throw new Reject(`"${s.slice(0, 64)}" is not a cgroup name (A-Z a-z 0-9 _ -)`);
      d.cgroup = s;
      return;
    case 'network_namespace_name':
      if (!NAME.test(s)) throw new Reject(`"${s.slice(0, 64)}" is not a network namespace name (A-Z a-z 0-9 _ -)`);
      d.networkNamespaceName = s;
      return;
    case 'mapped_uid':
      d.mappedUid = id(s, 'uid');
      return;
    default:
      // home, shell, execute, chdir, mount_home, chroot, pivot_root
      d[TEXT_FIELDS[key]!] = absolute(s);
  }
}

class ItemReject extends Error {
  readonly line: number;

  constructor(line: number, message: string) {
    super(message);
    this.line = line;
  }
}

/** `refused`: keys whose value was refused, which are not reported missing on top of that. */
function finish(d: Draft, where: string, line: number, problems: Problems, refused: ReadonlySet<string>): ProcessSettings | undefined {
  let ok = refused.size === 0;
  for (const [field, key] of [['uid', 'uid'], ['gid', 'gid'], ['home', 'home']] as const) {
    if (d[field] === undefined && !refused.has(key)) {
      problems.add(line, `${where}: ${key} is missing`);
      ok = false;
    }
  }
  const rule = (broken: boolean, message: string): void => {
    if (!broken) return;
    problems.add(line, `${where}: ${message}`);
    ok = false;
  };
  rule(d.mountDev && !d.mountRootTmpfs && d.pivotRoot === undefined, 'mount_dev needs mount_root_tmpfs or pivot_root (a /dev in a new root)');
  rule(d.mountRootTmpfs && d.pivotRoot !== undefined, 'mount_root_tmpfs and pivot_root exclude each other (one root)');
  rule(d.networkNamespace && d.networkNamespaceName !== undefined, 'network_namespace and network_namespace_name exclude each other');
  rule(d.mappedUid !== undefined && !d.userNamespace, 'mapped_uid needs user_namespace');
  rule(d.mountTmpTmpfsExec && d.mountTmpTmpfs === undefined, 'mount_tmp_tmpfs_exec needs mount_tmp_tmpfs');
  rule(d.tmpfsDirsReadable && !(d.mountRootTmpfs || d.pivotRoot !== undefined || d.mountProc || d.mountTmpTmpfs !== undefined || d.mountHome !== undefined || d.bindMounts.length > 0 || d.otherMounts.length > 0),
    'tmpfs_dirs_readable needs a mount (mount_root_tmpfs, bind_mount …)');
  if (d.mountHome !== undefined && d.bindMounts.some((m) => m.target === d.mountHome)) {
    problems.add(line, `${where}: mount_home and a bind mount both mount ${d.mountHome}`);
    ok = false;
  }
  const targets = new Set<string>();
  for (const m of d.bindMounts) {
    if (targets.has(m.target)) {
      problems.add(line, `${where}: two bind mounts on ${m.target}`);
      ok = false;
    }
    targets.add(m.target);
  }
  if (!ok) return undefined;
  // Parents before children (/srv before /srv/data), whatever the order in the file.
  const bindMounts = [...d.bindMounts].sort((x, y) => depth(x.target) - depth(y.target));
  return { ...d, uid: d.uid!, gid: d.gid!, home: d.home!, bindMounts };
}

function depth(path: string): number {
  return path.split('/').filter((c) => c !== '').length;
}

/** Returns the keys whose values were refused. */
function applyEntries(section: Section, scope: 'account' | 'partition', d: Draft, problems: Problems, account?: AccountDraft): Set<string> {
  const refused = new Set<string>();
  const where = `[${section.user}${section.partition === undefined ? '' : `:${section.partition}`}]`;
  for (const entry of section.entries.values()) {
    const spec = KEYS[entry.key]!;
    if (spec.scope === 'account' && scope === 'partition') {
      problems.add(entry.line, `${where} ${entry.key}: belongs in the account's own section [${section.user}]`);
      refused.add(entry.key);
      continue;
    }
    if (spec.scope === 'partition' && scope === 'account') {
      problems.add(entry.line, `${where} ${entry.key}: only a partition runs a program of its own; put it in [${section.user}:sftp] or another partition`);
      refused.add(entry.key);
      continue;
    }
    if (spec.kind !== 'list' && entry.bracketed) {
      problems.add(entry.line, `${where} ${entry.key}: takes one value; write ${entry.key} = …`);
      refused.add(entry.key);
      continue;
    }
    try {
      if (spec.scope === 'account') applyAccountKey(account!, entry);
      else applyProcessKey(d, entry, scope === 'partition');
    } catch (e) {
      if (e instanceof ItemReject) problems.add(e.line, `${where} ${entry.key}: ${e.message}`);
      else if (e instanceof Reject) problems.add(entry.line, `${where} ${entry.key}: ${e.message}`);
      else throw e;
      refused.add(entry.key);
    }
  }
  return refused;
}

interface AccountDraft {
  password?: PasswordHash;
  authorizedKeys: string[];
  noHomeAuthorizedKeys: boolean;
  sftpOnly: boolean;
  noPassword?: 'unrestricted' | 'sftp';
}

const MAX_AUTHORIZED_KEYS = 65535; // one AUTHORIZED_KEYS packet

function applyAccountKey(a: AccountDraft, entry: Entry): void {
  const first = entry.items[0]!.value;
  switch (entry.key) {
    case 'password': {
      const s = text(first).trim();
      if (s === '') throw new Reject('empty value (leave the key out for an account without a password)');
      try {
        a.password = parsePasswordHash(s);
      } catch (e) {
        if (e instanceof PasswordHashError) throw new Reject(e.message);
        throw e;
      }
      return;
    }
    case 'authorized_keys': {
      const keys: string[] = [];
      for (const item of entry.items) {
        const s = text(item.value).trim();
        if (s === '') throw new ItemReject(item.line, 'empty value');
        if (CONTROL.test(s)) throw new ItemReject(item.line, 'contains a control character');
        // lukko's own authorized_keys parser: a line it would not use is refused here.
        const { entries, problems } = parseAuthorizedKeys(s, 'users file');
        if (problems[0] !== undefined) throw new ItemReject(item.line, problems[0].reason);
        if (entries.length !== 1) throw new ItemReject(item.line, 'no key on this line');
        keys.push(s);
      }
      const size = keys.reduce((n, k) => n + Buffer.byteLength(k) + 1, 0);
      if (size > MAX_AUTHORIZED_KEYS) throw new Reject(`${size} bytes of keys, more than the ${MAX_AUTHORIZED_KEYS} one response can carry`);
      a.authorizedKeys = keys;
      return;
    }
    case 'no_home_authorized_keys':
      a.noHomeAuthorizedKeys = bool(first);
      return;
    case 'sftp_only':
      a.sftpOnly = bool(first);
      return;
    case 'no_password': {
      if (first === 'sftp') a.noPassword = 'sftp';
      else if (bool(first)) a.noPassword = 'unrestricted';
      else delete a.noPassword;
      return;
    }
  }
}

/** The user file's text → accounts. Throws UserDbError listing every problem; `file` names the file in it. */
export function parseUserDb(text: string, file: string): UserDb {
  const problems = new Problems();
  const sections = scan(text, problems);
  const accounts = new Map<string, Account>();
  const drafts = new Map<string, Draft>();

  // Accounts first, so that a partition may come before or after its account.
  for (const section of sections) {
    if (section.partition !== undefined) continue;
    const a: AccountDraft = { authorizedKeys: [], noHomeAuthorizedKeys: false, sftpOnly: false };
    const d = emptyDraft();
    const refused = applyEntries(section, 'account', d, problems, a);
    drafts.set(section.user, d);
    const settings = finish(d, `[${section.user}]`, section.line, problems, refused);
    if (settings === undefined) continue;
    accounts.set(section.user, { name: section.user, line: section.line, ...a, settings, partitions: [] });
  }

  for (const section of sections) {
    if (section.partition === undefined) continue;
    const where = `[${section.user}:${section.partition}]`;
    const base = drafts.get(section.user);
    if (base === undefined) {
      problems.add(section.line, `${where}: there is no account [${section.user}] for this partition`);
      continue;
    }
    // A partition starts as a copy of its account's settings (lukko itself inherits nothing).
    const d = copyDraft(base);
    const refused = applyEntries(section, 'partition', d, problems);
    if (section.partition === 'rsync' && d.execute === undefined && !refused.has('execute')) {
      problems.add(section.line, `${where}: an rsync partition needs execute = /path/to/rsync`);
      continue;
    }
    const settings = finish(d, where, section.line, problems, refused);
    const account = accounts.get(section.user);
    if (settings === undefined || account === undefined) continue;
    (account.partitions as Partition[]).push({ name: section.partition, line: section.line, settings });
  }

  if (problems.list.length > 0) throw new UserDbError(file, [...problems.list].sort((x, y) => x.line - y.line));
  return { accounts };
}
