// Pure: a translation response → the Login the authenticator and the sessions work with
// (spec/translation-protocol.md §3.2, §4.3-4.4). Every restriction the response implies
// becomes part of the Login's Policy, so it adds up with the key's options.
import type { Account, AccountSpawnOptions } from '../auth/account.ts';
import type { Login, ServiceAccounts } from '../auth/directory.ts';
import type { Policy } from '../auth/policy.ts';
import { unrestrictedPolicy } from '../auth/policy.ts';
import type { ExecuteOptions } from './execute-options.ts';
import type { TranslationResponse } from './response.ts';
import { unitProperty } from '../spawn/unit-limits.ts';
import { SERVICE_NAMES, isExecAllowed, isPasswordless, isSftpAllowed, isSftpOnly } from './response.ts';

export const TRANSLATION_ORIGIN = 'translation server';
const DEFAULT_SHELL = '/bin/sh';

/**
 * The isolation packets this release enforces (lukko-exec, docs/translation.md). Any other
 * isolation packet in a response makes the login fail closed.
 */
export const ENFORCED_ISOLATION: ReadonlySet<string> = new Set([
  'USER_NAMESPACE', 'MAPPED_UID_GID', 'PID_NAMESPACE', 'NETWORK_NAMESPACE', 'NETWORK_NAMESPACE_NAME',
  'IPC_NAMESPACE', 'CGROUP_NAMESPACE', 'UTS_NAMESPACE',
  'PIVOT_ROOT', 'MOUNT_ROOT_TMPFS', 'MOUNT_PROC', 'MOUNT_DEV', 'MOUNT_HOME', 'MOUNT_TMP_TMPFS', 'MOUNT_TMP_TMPFS_EXEC',
  'MOUNT_TMPFS', 'MOUNT_EMPTY', 'BIND_MOUNT', 'BIND_MOUNT_RW', 'BIND_MOUNT_EXEC', 'BIND_MOUNT_RW_EXEC',
  'BIND_MOUNT_FILE', 'BIND_MOUNT_FILE_EXEC', 'WRITE_FILE', 'SYMLINK', 'OPTIONAL', 'TMPFS_DIRS_READABLE', 'CHROOT',
]);

/**
 * Enforced only where the connection has a systemd unit of its own to put the limits on
 * (src/spawn/unit-limits.ts); without one they refuse the login like any other.
 */
export const UNIT_ISOLATION: ReadonlySet<string> = new Set(['CGROUP', 'CGROUP_SET']);

export interface IsolationSupport {
  /** The connection runs in a systemd unit of its own (lukko@.service). */
  unitLimits: boolean;
}

/** An account from one set of execute options; undefined without a usable uid, gid and HOME. */
export function accountFromOptions(name: string, options: ExecuteOptions): Account | undefined {
  const { uidGid, home } = options;
  if (uidGid === undefined || uidGid.uid === 0 || uidGid.gid === 0 || home === undefined) return undefined;
  const spawn: AccountSpawnOptions = {
    setenv: [...options.setenv],
    noNewPrivs: options.noNewPrivs,
    childTags: [...options.childTags],
  };
  if (options.isolation.packets.length > 0) spawn.isolation = options.isolation;
  if (options.umask !== undefined) spawn.umask = options.umask;
  if (options.rlimits !== undefined) spawn.rlimits = options.rlimits;
  if (options.chdir !== undefined) spawn.chdir = options.chdir;
  if (options.processName !== undefined) spawn.processName = options.processName;
  if (options.execute !== undefined) spawn.execute = options.execute;
  return {
    name,
    uid: uidGid.uid,
    gid: uidGid.gid,
    groups: [...uidGid.groups],
    home,
    shell: options.shell ?? DEFAULT_SHELL,
    source: 'translation',
    spawn,
  };
}

/** Isolation packets in the options the login may use that the spawner cannot enforce. */
export function unenforceablePackets(response: TranslationResponse, support: IsolationSupport = { unitLimits: false }): string[] {
  const found: string[] = [];
  const all = [response.topLevel, ...response.services.values()];
  const add = (what: string): void => {
    if (!found.includes(what)) found.push(what);
  };
  for (const options of all) {
    if (options === undefined) continue;
    for (const packet of options.isolation.packets) {
      if (ENFORCED_ISOLATION.has(packet)) continue;
      if (UNIT_ISOLATION.has(packet) && support.unitLimits) continue;
      add(packet);
    }
    // Only attributes with a systemd property of their own can land on the unit.
    if (support.unitLimits) {
      for (const { name, value } of options.isolation.cgroupSet) {
        if (unitProperty(name, value) === undefined) add(`CGROUP_SET ${name}`);
      }
    }
  }
  return found;
}

function translationPolicy(response: TranslationResponse): Policy {
  const p = unrestrictedPolicy();
  const deny = (why: string): void => {
    p.exec = false;
    p.pty = false;
    p.portForwarding = false;
    p.agentForwarding = false;
    p.x11Forwarding = false;
    p.origins.push(`${TRANSLATION_ORIGIN}: ${why}`);
  };
  if (response.topLevel === undefined) deny('no top-level execute options');
  else if (response.token === 'sftp-only') deny('TOKEN sftp-only');
  else if (response.noPassword === 'sftp') deny('NO_PASSWORD sftp');
  else if (!isExecAllowed(response)) deny('exec not allowed');
  // A per-session network namespace (NETWORK_NAMESPACE) holds only lo and exists only while a
  // session runs: nothing outside the session to reach, so no TCP forwarding (as the
  // original, which forbids it for any network namespace). A named one
  // (NETWORK_NAMESPACE_NAME) is a network of its own; forwards work inside it
  // (src/forward/netns.ts), never in the host's.
  if (response.topLevel?.isolation.networkNamespace?.kind === 'new' && p.portForwarding) {
    p.portForwarding = false;
    p.origins.push(`${TRANSLATION_ORIGIN}: NETWORK_NAMESPACE`);
  }
  return p;
}

/**
 * The Login for a successful (STATUS-less) response. Returns a reason string when the
 * response names no account at all that could run anything.
 */
export function loginFromResponse(user: string, response: TranslationResponse, support?: IsolationSupport): Login | string {
  const services: ServiceAccounts = {};
  for (const name of SERVICE_NAMES) {
    const options = response.services.get(name);
    const account = options && accountFromOptions(user, options);
    if (account) services[name] = account;
  }
  // Without top-level options the sftp partition's account is the only one there is.
  const account = response.topLevel ? accountFromOptions(user, response.topLevel) : services.sftp;
  if (account === undefined) return 'response has neither top-level options nor a usable sftp partition';
  const login: Login = {
    account,
    // HOME keys need top-level options (the original has no HOME without them).
    homeKeys: !response.noHomeAuthorizedKeys && response.topLevel !== undefined,
    passwordless: isPasswordless(response),
    policy: translationPolicy(response),
    sftpAllowed: isSftpAllowed(response),
    sftpOnly: isSftpOnly(response),
    services,
    unenforceable: unenforceablePackets(response, support),
  };
  if (response.authorizedKeys !== undefined) login.inlineKeys = { text: response.authorizedKeys, source: TRANSLATION_ORIGIN };
  return login;
}
