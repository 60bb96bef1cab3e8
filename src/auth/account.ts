// Who a user is. Without a translation server, accounts come from the system through NSS
// (files, LDAP, sssd, systemd-userdb ... whatever nsswitch.conf says), via getent(1): Node has
// no getpwnam(3), and an addon for one call per login is not worth its load time.
import { execFile } from 'node:child_process';
import type { Isolation } from '../translation/execute-options.ts';
import type { Rlimits } from '../translation/rlimits.ts';

/**
 * How a translation server wants this account's processes run, beyond who runs them
 * (spec/translation-protocol.md §3.3). Absent for system accounts.
 */
export interface AccountSpawnOptions {
  /** SETENV/PAIR, `NAME=VALUE`, in order. */
  setenv: string[];
  umask?: number;
  rlimits?: Rlimits;
  noNewPrivs: boolean;
  /** CHDIR: the working directory instead of HOME. */
  chdir?: string;
  /** PROCESS_NAME: argv[0] of the program. */
  processName?: string;
  /** EXECUTE: the program to run (partitions; at top level only the exec path). */
  execute?: string;
  /** CHILD_TAG values, for the companion's TERMINATE_CHILDREN. */
  childTags: string[];
  /** Namespaces, mounts, chroot, cgroup settings (only packets lukko enforces get this far). */
  isolation?: Isolation;
}

export interface Account {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
  // 'nss': initgroups(3) in the spawn helper; a list: exactly these (a translation server).
  groups: number[] | 'nss';
  source: 'nss' | 'translation';
  spawn?: AccountSpawnOptions;
}

// 1-255 characters from [A-Za-z0-9._@-], as the original; checked before any lookup so that
// nothing odd ever reaches getent or a translation server.
const USER_NAME = /^[A-Za-z0-9._@-]{1,255}$/;

export function validUserName(name: string): boolean {
  return USER_NAME.test(name);
}

/** Pure: one passwd(5) line as getent prints it. */
export function parsePasswdLine(line: string): Omit<Account, 'groups' | 'source'> | undefined {
  const f = line.replace(/\n$/, '').split(':');
  if (f.length !== 7) return undefined;
  const [name, , uid, gid, , home, shell] = f as [string, string, string, string, string, string, string];
  if (!/^\d+$/.test(uid) || !/^\d+$/.test(gid)) return undefined;
  return { name, uid: Number(uid), gid: Number(gid), home, shell };
}

export function lookupNssAccount(name: string): Promise<Account | undefined> {
  return new Promise((resolve) => {
    // `--`: a user name may start with '-'. getent also accepts numeric uids ("0" is root),
    // so the answer must carry the very name that was asked for.
    execFile('getent', ['passwd', '--', name], { timeout: 5000, env: { PATH: '/usr/bin:/bin' } }, (err, stdout) => {
      if (err) return resolve(undefined);
      const entry = parsePasswdLine(stdout.split('\n')[0] ?? '');
      if (!entry || entry.name !== name) return resolve(undefined);
      resolve({ ...entry, shell: entry.shell || '/bin/sh', groups: 'nss', source: 'nss' });
    });
  });
}
