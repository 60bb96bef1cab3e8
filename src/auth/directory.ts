// Where accounts come from: the system (NSS) or a translation server. The authenticator asks
// a directory and gets a Login, which carries everything the rest of the connection needs to
// know about the account: who it is, where its keys are, whether it may log in without a
// password, and the restrictions the directory imposes.
import type { AuthenticationType } from 'ssh2';
import type { Account } from './account.ts';
import { lookupNssAccount } from './account.ts';
import type { Policy } from './policy.ts';
import { unrestrictedPolicy } from './policy.ts';

/** The programs a translation server set up for an account's SFTP, rsync and git use. */
export interface ServiceAccounts {
  sftp?: Account;
  rsync?: Account;
  'git-receive-pack'?: Account;
  'git-upload-pack'?: Account;
}

export interface Login {
  /** The account shell, exec and (without an sftp partition) SFTP run as. */
  account: Account;
  /** authorized_keys text from the directory itself, checked first. */
  inlineKeys?: { text: string; source: string };
  /** Whether ~/.ssh/authorized_keys counts. */
  homeKeys: boolean;
  /** NO_PASSWORD: `none` and keyboard-interactive succeed. */
  passwordless: boolean;
  /** The directory's restrictions; merged with the key's, they only add up. */
  policy: Policy;
  /** SFTP may run (with `services.sftp` or `account`). */
  sftpAllowed: boolean;
  /** TOKEN sftp-only or NO_PASSWORD sftp: exec and shell are refused (exec_reject_stderr applies). */
  sftpOnly: boolean;
  services: ServiceAccounts;
  /** Settings the spawner cannot enforce; a login that has any is refused when it would succeed. */
  unenforceable: string[];
}

export type Lookup = { found: true; login: Login } | { found: false; reason: string };

export interface AccountDirectory {
  /** The methods USERAUTH_FAILURE lists. */
  readonly methods: AuthenticationType[];
  /** The account without a password; may throw TranslationError (the login must end). */
  lookup(user: string): Promise<Lookup>;
  /** Only directories that offer `password`. */
  checkPassword?(user: string, password: string): Promise<Lookup>;
}

/** The system's accounts (getent passwd): no password, home keys, no restrictions. */
export function nssDirectory(lookup: (name: string) => Promise<Account | undefined> = lookupNssAccount): AccountDirectory {
  const cache = new Map<string, Promise<Lookup>>();
  return {
    methods: ['publickey'],
    lookup(user) {
      let p = cache.get(user);
      if (!p) {
        p = lookup(user).then((account): Lookup =>
          account
            ? { found: true, login: { account, homeKeys: true, passwordless: false, policy: unrestrictedPolicy(), sftpAllowed: true, sftpOnly: false, services: {}, unenforceable: [] } }
            : { found: false, reason: 'no such user' },
        );
        cache.set(user, p);
      }
      return p;
    },
  };
}
