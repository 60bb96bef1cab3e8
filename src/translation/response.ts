// The LOGIN response model (spec/translation-protocol.md §3): which packets the original
// accepts in a response, with every length, format, ordering and uniqueness rule, and the
// check it applies to a success afterwards (§3.2).
//
// The original compiles its parser with EXECUTE, EXECUTE_SERVICE, SPAWN and LOGIN only. A
// packet outside that set is an "unknown translation packet" error there, and so it is here
// (rule 'unknown'), including unassigned numbers and USER in a response. Nothing is dropped
// silently except the handful of packets the original itself skips without looking
// (listed in SKIPPED) and the ones it parses without effect (recorded in `ignored`).
//
// Deliberately stricter than the original, so that a JS string always equals the bytes:
// every string payload must be valid UTF-8 and free of NUL, also in the few packets the
// original does not check (SITE, NO_PASSWORD, CGROUP, RLIMITS).

import { TranslationCommand as C, describeCommand, translationCommandName } from './commands.ts';
import type { TranslationCommandName } from './commands.ts';
import type { TranslationPacket } from './codec.ts';
import { TranslationError } from './errors.ts';
import type { TranslationRule } from './errors.ts';
import { emptyExecuteOptions } from './execute-options.ts';
import type { ExecuteOptions, Mount } from './execute-options.ts';
import { parseRlimits } from './rlimits.ts';

/** The partitions the original looks up; other SERVICE names are parsed and never used. */
export const SERVICE_NAMES = ['sftp', 'rsync', 'git-receive-pack', 'git-upload-pack'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

/**
 * NO_PASSWORD: empty means password-less login, `sftp` password-less SFTP-only login; the
 * original ignores any other value (and grants nothing through it).
 */
export type NoPassword = 'unrestricted' | 'sftp' | 'ignored';

export interface TranslationResponse {
  /** BEGIN's optional version byte; informational only. */
  protocolVersion?: number;
  /** A non-zero STATUS: the login is rejected, whatever the value. 0 counts as no STATUS, as in the original. */
  status?: number;
  message?: string;
  /** Last TOKEN wins; `sftp-only` makes the account SFTP-only. */
  token?: string;
  noPassword?: NoPassword;
  authorizedKeys?: string;
  noHomeAuthorizedKeys: boolean;
  site?: string;
  arch?: 'amd64' | 'arm64';
  /** Child options before the first SERVICE; absent when the response had none. */
  topLevel?: ExecuteOptions;
  /** The partitions lukko uses; for a repeated name the last one wins, as in the original. */
  services: Map<ServiceName, ExecuteOptions>;
  /** Names of the other partitions, which were checked but are never used. */
  otherServices: string[];
  /** Packets accepted without effect (TIMEOUT, POOL, …), for a debug log. */
  ignored: TranslationCommandName[];
}

/** Request packets: in a response the original calls them "misplaced translate request packet". */
const REQUEST_ONLY: ReadonlySet<number> = new Set([
  C.PARAM, C.REMOTE_HOST, C.WIDGET_TYPE, C.USER_AGENT, C.ARGS, C.QUERY_STRING, C.LOCAL_ADDRESS,
  C.LOCAL_ADDRESS_STRING, C.AUTHORIZATION, C.UA_CLASS, C.SUFFIX, C.LOGIN, C.CRON, C.PASSWORD,
  C.ALT_HOST, C.CHAIN_HEADER, C.AUTH_TOKEN, C.PLAN, C.PEEK,
]);

/** Skipped by the original without even looking at the payload. */
const SKIPPED: ReadonlySet<number> = new Set([
  C.DEFLATED, C.DIRECT_ADDRESSING, C.VARY, C.INVALIDATE, C.WIDGET_INFO, C.DUMP_HEADERS,
  C.AUTO_GZIPPED, C.AUTO_DEFLATE, C.CACHE_TAG, C.AUTO_BROTLI_PATH,
]);

/** Mount packets: the only ones (besides BEGIN) that MAX_AGE and OPTIONAL look back to. */
const OPTIONAL_TARGETS: ReadonlySet<number> = new Set([
  C.BIND_MOUNT, C.BIND_MOUNT_RW, C.BIND_MOUNT_EXEC, C.BIND_MOUNT_RW_EXEC, C.BIND_MOUNT_FILE, C.WRITE_FILE,
]);

/** The original allows this many PROBE_SUFFIX packets. */
const MAX_PROBE_SUFFIXES = 16;

const utf8 = new TextDecoder('utf-8', { fatal: true });

const NAME = /^[A-Za-z0-9_-]+$/;
const CGROUP_NAME = /^[a-z_]+$/;

function fault(rule: TranslationRule, command: number, detail?: string): TranslationError {
  const name = describeCommand(command);
  const text = rule === 'malformed' || rule === 'duplicate' || rule === 'misplaced' ? `${rule} ${name} packet` : `${name}: ${rule}`;
  return new TranslationError(rule, detail === undefined ? text : `${text}: ${detail}`, name);
}

function isAbsolute(s: string): boolean {
  return s.startsWith('/');
}

function isValidCgroupSetName(name: string): boolean {
  const dot = name.indexOf('.');
  if (dot < 0) return false;
  const controller = name.slice(0, dot);
  const attribute = name.slice(dot + 1);
  // `cgroup.*` are core attributes, not a controller's; the original refuses them.
  return CGROUP_NAME.test(controller) && controller !== 'cgroup' && attribute.split('.').every((s) => CGROUP_NAME.test(s));
}

/** Splits at the first NUL; `after` is undefined when there is none. */
function splitNul(payload: Buffer): { before: Buffer; after: Buffer | undefined } {
  const i = payload.indexOf(0);
  return i < 0 ? { before: payload, after: undefined } : { before: payload.subarray(0, i), after: payload.subarray(i + 1) };
}

class Parser {
  readonly response: TranslationResponse = {
    noHomeAuthorizedKeys: false,
    services: new Map(),
    otherServices: [],
    ignored: [],
  };

  #current: ExecuteOptions | undefined;
  // The original remembers only BEGIN and the mount packets as "previous"; every other
  // packet leaves it alone. MAX_AGE and OPTIONAL depend on exactly that.
  #previous: number = C.BEGIN;
  // Mounts added to the current options since they became current (OPTIONAL marks the last).
  #mountsSinceSwitch = 0;
  #expiresRelative = 0;
  #expiresRelativeWithQuery = 0;
  #testPath = false;
  #probePathSuffixes = false;
  #probeSuffixes = 0;
  #listenerTag = false;
  #readFile = false;
  #likeHost = false;
  #statsTag = false;
  #noPassword = false;
  #authorizedKeys = false;

  // --- payload helpers: each throws the packet's 'malformed' error ---

  #string(p: TranslationPacket): string {
    if (p.payload.includes(0)) throw fault('malformed', p.command, 'NUL byte');
    try {
      return utf8.decode(p.payload);
    } catch {
      throw fault('malformed', p.command, 'not UTF-8');
    }
  }

  #bytesString(command: number, bytes: Buffer): string {
    return this.#string({ command, payload: bytes });
  }

  #nonEmpty(p: TranslationPacket): string {
    const s = this.#string(p);
    if (s.length === 0) throw fault('malformed', p.command, 'empty');
    return s;
  }

  #absolute(p: TranslationPacket): string {
    const s = this.#string(p);
    if (!isAbsolute(s)) throw fault('malformed', p.command, 'not an absolute path');
    return s;
  }

  #name(p: TranslationPacket): string {
    const s = this.#string(p);
    if (!NAME.test(s)) throw fault('malformed', p.command, 'not a name of [A-Za-z0-9_-]');
    return s;
  }

  #flag(p: TranslationPacket): void {
    if (p.payload.length !== 0) throw fault('malformed', p.command, 'a flag has no payload');
  }

  #u32(p: TranslationPacket): number {
    if (p.payload.length !== 4) throw fault('malformed', p.command, 'not 4 bytes');
    return p.payload.readUInt32LE(0);
  }

  // --- options ---

  /** The options child packets go into; the first one creates the top level. */
  #options(): ExecuteOptions {
    if (this.#current === undefined) {
      this.#current = emptyExecuteOptions();
      this.response.topLevel = this.#current;
      this.#mountsSinceSwitch = 0;
    }
    return this.#current;
  }

  #isolation(command: number): ExecuteOptions['isolation'] {
    const isolation = this.#options().isolation;
    isolation.packets.push(translationCommandName(command)!);
    return isolation;
  }

  #addMount(command: number, mount: Mount): void {
    this.#isolation(command).mounts.push(mount);
    this.#mountsSinceSwitch++;
  }

  #setFlag(p: TranslationPacket, key: 'noNewPrivs'): void;
  #setFlag(p: TranslationPacket, key: 'stderrPond' | 'sigkill' | 'forbidUserNs' | 'forbidMulticast' | 'forbidBind' | 'allowPtrace' | 'capSysResource' | 'cgroupNamespace' | 'mountProc', isolation: true): void;
  #setFlag(p: TranslationPacket, key: string, isolation?: true): void {
    this.#flag(p);
    const target = (isolation === true ? this.#isolation(p.command) : this.#options()) as unknown as Record<string, boolean>;
    if (target[key] === true) throw fault('duplicate', p.command);
    target[key] = true;
  }

  #ignore(command: number): void {
    this.response.ignored.push(translationCommandName(command)!);
  }

  handle(p: TranslationPacket): void {
    const { command, payload } = p;
    if (REQUEST_ONLY.has(command)) throw fault('request-packet', command, 'misplaced translate request packet');
    if (SKIPPED.has(command)) return;
    if (OPTIONAL_TARGETS.has(command) || command === C.BIND_MOUNT_FILE_EXEC || command === C.SYMLINK) {
      this.#previous = command;
    }

    switch (command) {
      // --- response-wide ---
      case C.STATUS: {
        if (payload.length !== 2) throw fault('malformed', command, 'not 2 bytes');
        const status = payload.readUInt16LE(0);
        if (status === 0) delete this.response.status;
        else this.response.status = status;
        return;
      }
      case C.MESSAGE: {
        const s = this.#nonEmpty(p);
        if (payload.length > 1024) throw fault('malformed', command, 'longer than 1024 bytes');
        this.response.message = s;
        return;
      }
      case C.TOKEN:
        this.response.token = this.#string(p);
        return;
      case C.NO_PASSWORD: {
        if (this.#noPassword) throw fault('duplicate', command);
        this.#noPassword = true;
        const s = this.#string(p);
        this.response.noPassword = s === '' ? 'unrestricted' : s === 'sftp' ? 'sftp' : 'ignored';
        return;
      }
      case C.AUTHORIZED_KEYS: {
        const s = this.#nonEmpty(p);
        if (this.#authorizedKeys) throw fault('duplicate', command);
        this.#authorizedKeys = true;
        this.response.authorizedKeys = s;
        return;
      }
      case C.NO_HOME_AUTHORIZED_KEYS:
        this.#flag(p);
        // The original's message says "misplaced"; the rule broken is the repetition.
        if (this.response.noHomeAuthorizedKeys) throw fault('duplicate', command);
        this.response.noHomeAuthorizedKeys = true;
        return;
      case C.SITE:
        this.response.site = this.#string(p);
        return;
      case C.ARCH: {
        const s = this.#string(p);
        if (s !== 'amd64' && s !== 'arm64') throw fault('malformed', command, 'not amd64 or arm64');
        this.response.arch = s;
        return;
      }
      case C.SERVICE: {
        const name = this.#nonEmpty(p);
        const options = emptyExecuteOptions();
        this.#current = options;
        this.#mountsSinceSwitch = 0;
        if ((SERVICE_NAMES as readonly string[]).includes(name)) this.response.services.set(name as ServiceName, options);
        else this.response.otherServices.push(name);
        return;
      }

      // --- parsed without effect in lukko ---
      case C.TIMEOUT:
        this.#u32(p);
        this.#ignore(command);
        return;
      case C.LISTENER_TAG:
        this.#nonEmpty(p);
        if (this.#listenerTag) throw fault('duplicate', command);
        this.#listenerTag = true;
        this.#ignore(command);
        return;
      case C.POOL:
      case C.CANONICAL_HOST:
        this.#nonEmpty(p);
        this.#ignore(command);
        return;
      case C.LIKE_HOST:
      case C.STATS_TAG: {
        this.#nonEmpty(p);
        const seen = command === C.LIKE_HOST ? this.#likeHost : this.#statsTag;
        if (seen) throw fault('duplicate', command);
        if (command === C.LIKE_HOST) this.#likeHost = true;
        else this.#statsTag = true;
        this.#ignore(command);
        return;
      }
      case C.ANALYTICS_ID:
        this.#string(p);
        this.#ignore(command);
        return;
      case C.GENERATOR:
        this.#name(p);
        this.#ignore(command);
        return;
      case C.DEFER:
        this.#flag(p);
        this.#ignore(command);
        return;
      case C.ERROR_DOCUMENT:
      case C.PREVIOUS:
      case C.TRANSPARENT:
        // The original sets a flag or keeps the payload without checking it.
        this.#ignore(command);
        return;
      case C.MAX_AGE:
        this.#u32(p);
        if (this.#previous !== C.BEGIN) throw fault('misplaced', command, 'only valid before any mount packet');
        this.#ignore(command);
        return;
      case C.EXPIRES_RELATIVE:
      case C.EXPIRES_RELATIVE_WITH_QUERY: {
        const before = command === C.EXPIRES_RELATIVE ? this.#expiresRelative : this.#expiresRelativeWithQuery;
        // A zero value does not count as set, exactly as in the original.
        if (before > 0) throw fault('duplicate', command);
        const value = this.#u32(p);
        if (command === C.EXPIRES_RELATIVE) this.#expiresRelative = value;
        else this.#expiresRelativeWithQuery = value;
        this.#ignore(command);
        return;
      }
      case C.VALIDATE_MTIME:
        // u64 mtime, then an absolute path without NUL.
        if (payload.length < 10 || payload[8] !== 0x2f || payload.subarray(9).includes(0)) {
          throw fault('malformed', command);
        }
        this.#ignore(command);
        return;
      case C.TEST_PATH:
        this.#absolute(p);
        if (this.#testPath) throw fault('duplicate', command);
        this.#testPath = true;
        this.#ignore(command);
        return;
      case C.READ_FILE:
        if (this.#readFile) throw fault('duplicate', command);
        this.#absolute(p);
        this.#readFile = true;
        this.#ignore(command);
        return;
      case C.PROBE_PATH_SUFFIXES:
        if (this.#probePathSuffixes || !this.#testPath) throw fault('misplaced', command, 'needs TEST_PATH before it, once');
        this.#probePathSuffixes = true;
        this.#ignore(command);
        return;
      case C.PROBE_SUFFIX:
        if (!this.#probePathSuffixes) throw fault('misplaced', command, 'needs PROBE_PATH_SUFFIXES before it');
        if (this.#probeSuffixes >= MAX_PROBE_SUFFIXES) throw fault('too-many', command, `more than ${MAX_PROBE_SUFFIXES}`);
        if (this.#string(p).includes('/')) throw fault('malformed', command, 'contains a slash');
        this.#probeSuffixes++;
        this.#ignore(command);
        return;

      case C.DOMAIN:
      case C.DELEGATE:
        throw fault('deprecated', command, 'deprecated packet');

      // --- child process: basics ---
      case C.UID_GID: {
        const options = this.#options();
        const u = options.uidGid;
        // The original's "unset" is all zero, so only a non-zero UID_GID blocks a second one.
        if (u !== undefined && (u.uid !== 0 || u.gid !== 0 || u.groups.length > 0)) throw fault('duplicate', command);
        if (payload.length < 8 || payload.length > 8 + 4 * 32 || payload.length % 4 !== 0) {
          throw fault('malformed', command, 'needs uid, gid and 0 to 32 groups as u32');
        }
        const values: number[] = [];
        for (let i = 0; i < payload.length; i += 4) values.push(payload.readUInt32LE(i));
        const groups = values.slice(2);
        const end = groups.indexOf(0);
        options.uidGid = { uid: values[0]!, gid: values[1]!, groups: end < 0 ? groups : groups.slice(0, end) };
        return;
      }
      case C.HOME: {
        const home = this.#absolute(p);
        const options = this.#options();
        if (options.home !== undefined) throw fault('duplicate', command);
        options.home = home;
        return;
      }
      case C.SHELL: {
        const shell = this.#absolute(p);
        const options = this.#options();
        if (options.shell !== undefined) throw fault('duplicate', command);
        options.shell = shell;
        return;
      }
      case C.EXECUTE: {
        const execute = this.#absolute(p);
        const options = this.#options();
        if (options.execute !== undefined) throw fault('duplicate', command);
        options.execute = execute;
        return;
      }
      case C.APPEND: {
        const arg = this.#nonEmpty(p);
        if (this.#current?.execute === undefined) throw fault('misplaced', command, 'needs EXECUTE before it');
        this.#current.args.push(arg);
        return;
      }
      case C.PROCESS_NAME: {
        const name = this.#nonEmpty(p);
        // Unlike other child packets, this one never creates the top-level options.
        if (this.#current === undefined) throw fault('misplaced', command, 'needs child options before it');
        if (this.#current.processName !== undefined) throw fault('duplicate', command);
        this.#current.processName = name;
        return;
      }
      case C.CHDIR: {
        const dir = this.#absolute(p);
        const options = this.#options();
        if (options.chdir !== undefined) throw fault('duplicate', command);
        options.chdir = dir;
        return;
      }
      case C.SETENV:
      case C.PAIR: {
        const options = this.#options();
        const s = this.#string(p);
        if (s.length === 0 || s.startsWith('=') || !s.includes('=')) throw fault('malformed', command, 'not NAME=VALUE');
        options.setenv.push(s);
        return;
      }
      case C.UMASK: {
        const options = this.#options();
        if (options.umask !== undefined) throw fault('duplicate', command);
        if (payload.length !== 2) throw fault('malformed', command, 'not 2 bytes');
        const umask = payload.readUInt16LE(0);
        if ((umask & ~0o777) !== 0) throw fault('malformed', command, 'above 0777');
        options.umask = umask;
        return;
      }
      case C.RLIMITS: {
        const options = this.#options();
        if (payload.includes(0)) throw fault('malformed', command, 'NUL byte');
        options.rlimits ??= new Map();
        if (!parseRlimits(payload.toString('latin1'), options.rlimits)) throw fault('malformed', command);
        return;
      }
      case C.NO_NEW_PRIVS:
        this.#setFlag(p, 'noNewPrivs');
        return;
      case C.CHILD_TAG:
        this.#options().childTags.push(this.#nonEmpty(p));
        return;

      // --- child process: isolation ---
      case C.USER_NAMESPACE:
        this.#flag(p);
        this.#isolation(command).userNamespace = true; // may repeat
        return;
      case C.IPC_NAMESPACE:
        this.#flag(p);
        this.#isolation(command).ipcNamespace = true; // may repeat
        return;
      case C.PID_NAMESPACE:
      case C.PID_NAMESPACE_NAME: {
        const named = command === C.PID_NAMESPACE_NAME;
        let name = '';
        if (named) name = this.#name(p);
        else this.#flag(p);
        const isolation = this.#isolation(command);
        // One PID namespace either way; the original reports the second as a duplicate.
        if (isolation.pidNamespace !== undefined) throw fault('duplicate', command);
        isolation.pidNamespace = named ? { kind: 'named', name } : { kind: 'new' };
        return;
      }
      case C.NETWORK_NAMESPACE:
      case C.NETWORK_NAMESPACE_NAME: {
        const named = command === C.NETWORK_NAMESPACE_NAME;
        let name = '';
        if (named) name = this.#name(p);
        else this.#flag(p);
        const isolation = this.#isolation(command);
        const before = isolation.networkNamespace;
        if (before !== undefined) {
          if ((before.kind === 'named') === named) throw fault('duplicate', command);
          throw fault('conflict', command, 'NETWORK_NAMESPACE and NETWORK_NAMESPACE_NAME exclude each other');
        }
        isolation.networkNamespace = named ? { kind: 'named', name } : { kind: 'new' };
        return;
      }
      case C.CGROUP_NAMESPACE:
        this.#setFlag(p, 'cgroupNamespace', true);
        return;
      case C.UTS_NAMESPACE: {
        const hostname = this.#nonEmpty(p);
        const isolation = this.#isolation(command);
        // The original's message says "misplaced"; the rule broken is the repetition.
        if (isolation.utsHostname !== undefined) throw fault('duplicate', command);
        isolation.utsHostname = hostname;
        return;
      }
      case C.PIVOT_ROOT: {
        const root = this.#absolute(p);
        const isolation = this.#isolation(command);
        if (isolation.pivotRoot !== undefined || isolation.mountRootTmpfs) throw fault('duplicate', command, 'one root only');
        isolation.pivotRoot = root;
        return;
      }
      case C.MOUNT_ROOT_TMPFS: {
        this.#flag(p);
        const isolation = this.#isolation(command);
        if (isolation.pivotRoot !== undefined || isolation.mountRootTmpfs) throw fault('duplicate', command, 'one root only');
        isolation.mountRootTmpfs = true;
        return;
      }
      case C.MOUNT_PROC:
        this.#setFlag(p, 'mountProc', true);
        return;
      case C.MOUNT_DEV: {
        this.#flag(p);
        const isolation = this.#isolation(command);
        if (isolation.pivotRoot === undefined && !isolation.mountRootTmpfs) {
          throw fault('misplaced', command, 'needs MOUNT_ROOT_TMPFS or PIVOT_ROOT before it');
        }
        if (isolation.mountDev) throw fault('duplicate', command);
        isolation.mountDev = true;
        return;
      }
      case C.MOUNT_TMP_TMPFS: {
        const options = this.#string(p);
        const isolation = this.#isolation(command);
        if (isolation.mountTmpTmpfs !== undefined) throw fault('duplicate', command);
        isolation.mountTmpTmpfs = options;
        return;
      }
      case C.MOUNT_TMP_TMPFS_EXEC: {
        this.#flag(p);
        const isolation = this.#isolation(command);
        if (isolation.mountTmpTmpfs === undefined) throw fault('misplaced', command, 'needs MOUNT_TMP_TMPFS before it');
        if (isolation.mountTmpTmpfsExec) throw fault('duplicate', command);
        isolation.mountTmpTmpfsExec = true;
        return;
      }
      case C.TMPFS_DIRS_READABLE: {
        this.#flag(p);
        const i = this.#isolation(command);
        const mountNamespace = i.pivotRoot !== undefined || i.mountRootTmpfs || i.mountProc || i.mountDev
          || i.mountTmpTmpfs !== undefined || i.mountListenStream !== undefined || i.mounts.length > 0;
        if (!mountNamespace) throw fault('misplaced', command, 'needs a mount namespace option before it');
        i.tmpfsDirsReadable = true; // may repeat
        return;
      }
      case C.MOUNT_LISTEN_STREAM: {
        const isolation = this.#isolation(command);
        if (isolation.mountListenStream !== undefined) throw fault('duplicate', command);
        const path = splitNul(payload).before;
        if (!isAbsolute(this.#bytesString(command, path))) throw fault('malformed', command, 'not an absolute path');
        isolation.mountListenStream = payload;
        return;
      }
      case C.MOUNT_HOME: {
        const target = this.#absolute(p);
        const options = this.#options();
        if (options.home === undefined) throw fault('misplaced', command, 'needs HOME before it');
        const { isolation } = options;
        // The original compares with directory bind mounts only (MOUNT_HOME is one of them).
        if (isolation.mounts.some((m) => (m.kind === 'home' || (m.kind === 'bind' && !m.file)) && m.target === target)) {
          throw fault('duplicate', command, `a bind mount on ${target} exists`);
        }
        this.#addMount(command, { kind: 'home', packet: 'MOUNT_HOME', source: options.home, target, optional: false });
        return;
      }
      case C.MOUNT_TMPFS:
      case C.MOUNT_EMPTY: {
        const target = this.#absolute(p);
        if (target === '/tmp') throw fault('malformed', command, '/tmp takes MOUNT_TMP_TMPFS');
        const writable = command === C.MOUNT_TMPFS;
        this.#addMount(command, { kind: 'tmpfs', packet: writable ? 'MOUNT_TMPFS' : 'MOUNT_EMPTY', target, writable, optional: false });
        return;
      }
      case C.MOUNT_NAMED_TMPFS: {
        const { before, after } = splitNul(payload);
        const name = this.#bytesString(command, before);
        const target = after === undefined ? '' : this.#bytesString(command, after);
        if (!NAME.test(name) || !isAbsolute(target)) throw fault('malformed', command, 'needs name\\0/target');
        this.#addMount(command, { kind: 'named-tmpfs', packet: 'MOUNT_NAMED_TMPFS', name, target, optional: false });
        return;
      }
      case C.BIND_MOUNT:
      case C.BIND_MOUNT_RW:
      case C.BIND_MOUNT_EXEC:
      case C.BIND_MOUNT_RW_EXEC:
      case C.BIND_MOUNT_FILE:
      case C.BIND_MOUNT_FILE_EXEC: {
        const { before, after } = splitNul(payload);
        const target = after === undefined ? '' : this.#bytesString(command, after);
        if (!isAbsolute(target)) throw fault('malformed', command, 'needs source\\0/target');
        let source = this.#bytesString(command, before);
        let sourceIn: 'host' | 'container' = 'host';
        if (source.startsWith('container:')) {
          sourceIn = 'container';
          source = source.slice('container:'.length);
        } else if (source.startsWith('host:')) {
          source = source.slice('host:'.length);
        }
        if (!isAbsolute(source)) throw fault('malformed', command, 'source is not an absolute path');
        const packet = translationCommandName(command) as Extract<Mount, { kind: 'bind' }>['packet'];
        this.#addMount(command, {
          kind: 'bind',
          packet,
          source,
          sourceIn,
          target,
          writable: command === C.BIND_MOUNT_RW || command === C.BIND_MOUNT_RW_EXEC,
          exec: command === C.BIND_MOUNT_EXEC || command === C.BIND_MOUNT_RW_EXEC || command === C.BIND_MOUNT_FILE_EXEC,
          file: command === C.BIND_MOUNT_FILE || command === C.BIND_MOUNT_FILE_EXEC,
          optional: false,
        });
        return;
      }
      case C.WRITE_FILE: {
        const { before, after } = splitNul(payload);
        const path = this.#bytesString(command, before);
        if (!isAbsolute(path)) throw fault('malformed', command, 'needs /path\\0contents');
        // Without a separator the original writes an empty file.
        const contents = after === undefined ? '' : this.#bytesString(command, after);
        this.#addMount(command, { kind: 'write-file', packet: 'WRITE_FILE', path, contents, optional: false });
        return;
      }
      case C.SYMLINK: {
        const { before, after } = splitNul(payload);
        const target = this.#bytesString(command, before);
        const linkPath = after === undefined ? '' : this.#bytesString(command, after);
        if (target.length === 0 || !isAbsolute(linkPath)) throw fault('malformed', command, 'needs target\\0/linkpath');
        this.#addMount(command, { kind: 'symlink', packet: 'SYMLINK', target, linkPath, optional: false });
        return;
      }
      case C.OPTIONAL: {
        this.#flag(p);
        const mounts = this.#current?.isolation.mounts;
        // It marks the last mount of the current options, provided the last mount packet
        // seen was one that can be optional (not BIND_MOUNT_FILE_EXEC or SYMLINK).
        if (!OPTIONAL_TARGETS.has(this.#previous) || mounts === undefined || this.#mountsSinceSwitch === 0) {
          throw fault('misplaced', command, 'needs a bind mount or WRITE_FILE before it');
        }
        this.#isolation(command);
        mounts[mounts.length - 1]!.optional = true;
        return;
      }
      case C.CHROOT: {
        const dir = this.#absolute(p);
        const isolation = this.#isolation(command);
        // The original's message says "misplaced"; the rule broken is the repetition.
        if (isolation.chroot !== undefined) throw fault('duplicate', command);
        isolation.chroot = dir;
        return;
      }
      case C.CGROUP: {
        const name = this.#name(p);
        const isolation = this.#isolation(command);
        if (isolation.cgroup !== undefined) throw fault('duplicate', command);
        isolation.cgroup = name;
        return;
      }
      case C.CGROUP_SET:
      case C.CGROUP_XATTR: {
        const isolation = this.#isolation(command);
        const s = this.#string(p);
        const eq = s.indexOf('=');
        const name = eq < 0 ? s : s.slice(0, eq);
        const value = eq < 0 ? '' : s.slice(eq + 1);
        if (!isValidCgroupSetName(name) || value.length === 0 || value.includes('/')) {
          throw fault('malformed', command, 'needs controller.attribute=value');
        }
        (command === C.CGROUP_SET ? isolation.cgroupSet : isolation.cgroupXattr).push({ name, value });
        return;
      }
      case C.REAL_UID_GID: {
        const options = this.#options();
        const u = options.uidGid;
        if (u === undefined || (u.uid === 0 && u.gid === 0 && u.groups.length === 0)) {
          throw fault('misplaced', command, 'needs UID_GID before it');
        }
        const isolation = this.#isolation(command);
        if (isolation.realUidGid !== undefined) throw fault('duplicate', command);
        if (payload.length !== 4 && payload.length !== 8) throw fault('malformed', command, 'needs one or two u32');
        const uid = payload.readUInt32LE(0);
        const gid = payload.length === 8 ? payload.readUInt32LE(4) : undefined;
        // All zero is the original's "unset", which it refuses here.
        if (uid === 0 && (gid ?? 0) === 0) throw fault('malformed', command, 'zero');
        isolation.realUidGid = gid === undefined ? { uid } : { uid, gid };
        return;
      }
      case C.MAPPED_UID_GID:
      case C.MAPPED_REAL_UID_GID: {
        const options = this.#options();
        const real = command === C.MAPPED_REAL_UID_GID;
        const uid = real ? options.isolation.realUidGid?.uid : options.uidGid?.uid;
        if (uid === undefined || uid === 0 || !options.isolation.userNamespace) {
          throw fault('misplaced', command, `needs ${real ? 'REAL_UID_GID' : 'UID_GID'} and USER_NAMESPACE before it`);
        }
        if (payload.length !== 4 || payload.readUInt32LE(0) === 0) throw fault('malformed', command, 'needs a non-zero u32');
        const isolation = this.#isolation(command);
        if ((real ? isolation.mappedRealUid : isolation.mappedUid) !== undefined) throw fault('duplicate', command);
        if (real) isolation.mappedRealUid = payload.readUInt32LE(0);
        else isolation.mappedUid = payload.readUInt32LE(0);
        return;
      }
      case C.MAX_INOTIFY: {
        if (!this.#options().isolation.userNamespace) throw fault('misplaced', command, 'needs USER_NAMESPACE before it');
        if (payload.length !== 8) throw fault('malformed', command, 'needs two u32');
        // The original lets a later MAX_INOTIFY overwrite an earlier one.
        this.#isolation(command).maxInotify = { instances: payload.readUInt32LE(0), watches: payload.readUInt32LE(4) };
        return;
      }
      case C.STDERR_PATH:
      case C.STDERR_PATH_JAILED: {
        const path = this.#absolute(p);
        const isolation = this.#isolation(command);
        if (isolation.stderrNull) throw fault('misplaced', command, 'STDERR_NULL came first');
        if (isolation.stderrPath !== undefined) throw fault('duplicate', command);
        isolation.stderrPath = { path, jailed: command === C.STDERR_PATH_JAILED };
        return;
      }
      case C.STDERR_NULL: {
        this.#flag(p);
        const isolation = this.#isolation(command);
        if (isolation.stderrNull || isolation.stderrPath !== undefined) throw fault('duplicate', command);
        isolation.stderrNull = true;
        return;
      }
      case C.STDERR_POND:
        this.#setFlag(p, 'stderrPond', true);
        return;
      case C.SIGKILL:
        this.#setFlag(p, 'sigkill', true);
        return;
      case C.FORBID_USER_NS:
        this.#setFlag(p, 'forbidUserNs', true);
        return;
      case C.FORBID_MULTICAST:
        this.#setFlag(p, 'forbidMulticast', true);
        return;
      case C.FORBID_BIND:
        this.#setFlag(p, 'forbidBind', true);
        return;
      case C.ALLOW_PTRACE:
        this.#setFlag(p, 'allowPtrace', true);
        return;
      case C.CAP_SYS_RESOURCE:
        this.#setFlag(p, 'capSysResource', true);
        return;

      default:
        // Everything else, including USER, all HTTP/widget/address packets, every EXPAND_*
        // and unassigned numbers: the original's parser in lukko's build rejects them.
        throw fault('unknown', command, 'unknown translation packet');
    }
  }

  finish(): void {
    if (this.#probePathSuffixes && this.#probeSuffixes === 0) {
      throw fault('incomplete', C.PROBE_PATH_SUFFIXES, 'PROBE_PATH_SUFFIXES without PROBE_SUFFIX');
    }
    const { response } = this;
    // §3.2: a success with top-level options must name a real account. Zero is the
    // original's "unset", so uid 0 or gid 0 counts as missing.
    if (response.status === undefined && response.topLevel !== undefined) {
      const { uidGid, home } = response.topLevel;
      if (uidGid === undefined || uidGid.uid === 0 || uidGid.gid === 0) {
        throw new TranslationError('invalid-account', 'top-level UID_GID missing or zero', 'UID_GID');
      }
      if (home === undefined) throw new TranslationError('invalid-account', 'top-level HOME missing', 'HOME');
    }
  }
}

/**
 * The response to a LOGIN request, from its packets BEGIN to END (as ResponseDecoder
 * delivers them), or the first rule it breaks.
 */
export function parseLoginResponse(packets: readonly TranslationPacket[]): TranslationResponse | TranslationError {
  const parser = new Parser();
  try {
    const first = packets[0];
    if (first === undefined || first.command !== C.BEGIN) {
      return new TranslationError('no-begin', 'no BEGIN from translation server', first && describeCommand(first.command));
    }
    if (first.payload.length > 0) parser.response.protocolVersion = first.payload[0]!;
    for (let i = 1; i < packets.length; i++) {
      const p = packets[i]!;
      if (p.command === C.BEGIN) return new TranslationError('double-begin', 'double BEGIN from translation server', 'BEGIN');
      if (p.command === C.END) {
        if (i !== packets.length - 1) return new TranslationError('excessive-data', 'excessive data from translation server');
        parser.finish();
        return parser.response;
      }
      parser.handle(p);
    }
    return new TranslationError('hung-up', 'translation server hung up before END');
  } catch (e) {
    if (e instanceof TranslationError) return e;
    throw e;
  }
}

/** Any non-zero STATUS rejects the login, whatever its value (§3.2). */
export function isRejected(response: TranslationResponse): boolean {
  return response.status !== undefined;
}

/** TOKEN `sftp-only` or NO_PASSWORD `sftp`. */
export function isSftpOnly(response: TranslationResponse): boolean {
  return response.token === 'sftp-only' || response.noPassword === 'sftp';
}

/** shell, exec, pty, env and forwarding need top-level options and an account that is not SFTP-only. */
export function isExecAllowed(response: TranslationResponse): boolean {
  return response.topLevel !== undefined && !isSftpOnly(response);
}

/** SFTP runs with the top-level options or, without them, only in an `sftp` partition. */
export function isSftpAllowed(response: TranslationResponse): boolean {
  return response.topLevel !== undefined || response.services.has('sftp');
}

/** NO_PASSWORD grants login without a password (empty or `sftp`; other values do not). */
export function isPasswordless(response: TranslationResponse): boolean {
  return response.noPassword === 'unrestricted' || response.noPassword === 'sftp';
}
