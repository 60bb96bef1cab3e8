// The user file as the server keeps it: parsed, every account's success response built once,
// and each response checked with lukko's own response parser, so that an account lukko would
// refuse ("Configuration server failed" at every login) is a load error naming the account
// instead. The file is read again when it changes (checked before every request) or on
// SIGHUP; a version that does not load leaves the last good one in service.

import { open, stat } from 'node:fs/promises';
import type { Logger } from '../log/logger.ts';
import { ResponseDecoder } from '../translation/codec.ts';
import { TranslationError } from '../translation/errors.ts';
import { parseLoginResponse } from '../translation/response.ts';
import { DEFAULT_PARAMS, dummyHash, formatParams } from './password-hash.ts';
import type { PasswordHash, ScryptParams } from './password-hash.ts';
import { buildAccountResponse } from './response-builder.ts';
import { UserDbError, parseUserDb } from './user-db.ts';
import type { Account, UserDbProblem } from './user-db.ts';

export interface CompiledAccount {
  readonly account: Account;
  /** The success response, BEGIN to END. */
  readonly response: Buffer;
}

export interface LoadedUsers {
  readonly accounts: ReadonlyMap<string, CompiledAccount>;
  /** Verified instead of a real hash when there is none, so every password request costs one scrypt. */
  readonly dummy: PasswordHash;
  readonly passwords: number;
}

/** The parameters most accounts use (the default on a tie or without any): a dummy check then takes as long as most real ones. */
export function commonParams(accounts: Iterable<Account>): ScryptParams {
  const counts = new Map<string, { params: ScryptParams; n: number }>();
  for (const a of accounts) {
    if (a.password === undefined) continue;
    const key = formatParams(a.password.params);
    const c = counts.get(key) ?? { params: a.password.params, n: 0 };
    c.n++;
    counts.set(key, c);
  }
  let best: { params: ScryptParams; n: number } = { params: DEFAULT_PARAMS, n: 0 };
  for (const c of counts.values()) {
    if (c.n > best.n || (c.n === best.n && formatParams(c.params) === formatParams(DEFAULT_PARAMS))) best = c;
  }
  return best.params;
}

/** Text → accounts with their responses. Throws UserDbError. */
export function compileUserDb(text: string, file: string): LoadedUsers {
  const db = parseUserDb(text, file);
  const accounts = new Map<string, CompiledAccount>();
  const problems: UserDbProblem[] = [];
  for (const account of db.accounts.values()) {
    let response: Buffer;
    try {
      response = buildAccountResponse(account);
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      problems.push({ line: account.line, message: `[${account.name}]: ${e.message}` });
      continue;
    }
    const framed = new ResponseDecoder().push(response);
    const parsed = framed.kind === 'complete' ? parseLoginResponse(framed.packets) : framed.kind === 'malformed' ? framed.error : undefined;
    if (parsed === undefined || parsed instanceof TranslationError) {
      problems.push({ line: account.line, message: `[${account.name}]: lukko would refuse this account's response: ${parsed?.message ?? 'incomplete'}` });
      continue;
    }
    accounts.set(account.name, { account, response });
  }
  if (problems.length > 0) throw new UserDbError(file, problems);
  const passwords = [...db.accounts.values()].filter((a) => a.password !== undefined).length;
  return { accounts, dummy: dummyHash(commonParams(db.accounts.values())), passwords };
}

interface Snapshot {
  readonly text: string;
  readonly signature: string;
  readonly mode: number;
}

async function readSnapshot(path: string): Promise<Snapshot> {
  // One descriptor for both, so the text and the identity belong to the same file even when
  // an editor renames a new version into place meanwhile.
  const handle = await open(path, 'r');
  try {
    const st = await handle.stat({ bigint: true });
    if (!st.isFile()) throw new Error(`${path} is not a regular file`);
    const text = await handle.readFile('utf8');
    return { text, signature: signatureOf(st), mode: Number(st.mode & 0o7777n) };
  } finally {
    await handle.close();
  }
}

function signatureOf(st: { dev: bigint; ino: bigint; size: bigint; mtimeNs: bigint; ctimeNs: bigint }): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export class UsersFile {
  readonly path: string;
  readonly #log: Logger;
  readonly #onLoad: (users: LoadedUsers) => void;
  #current: LoadedUsers;
  /** The version in service. */
  #loaded: string;
  /** The last version tried, good or not: a broken file is reported once, not at every request. */
  #tried: string;
  #refreshing: Promise<void> | undefined;

  private constructor(path: string, log: Logger, onLoad: (users: LoadedUsers) => void, snapshot: Snapshot, users: LoadedUsers) {
    this.path = path;
    this.#log = log;
    this.#onLoad = onLoad;
    this.#current = users;
    this.#loaded = snapshot.signature;
    this.#tried = snapshot.signature;
  }

  /**
   * The first load: any failure is the caller's (a start-up error). `onLoad` hears of every
   * later version that goes into service.
   */
  static async open(path: string, log: Logger, onLoad: (users: LoadedUsers) => void = () => {}): Promise<UsersFile> {
    const snapshot = await readSnapshot(path);
    const users = compileUserDb(snapshot.text, path);
    const file = new UsersFile(path, log, onLoad, snapshot, users);
    file.#warnMode(snapshot.mode, users);
    return file;
  }

  get current(): LoadedUsers {
    return this.#current;
  }

  /**
   * Reads the file again if it changed since the last attempt (or always, with `force`).
   * Never throws: a file that cannot be read or does not load is logged and the last good
   * version stays in service. Concurrent calls share one check.
   */
  refresh(force = false): Promise<void> {
    if (this.#refreshing !== undefined) {
      if (!force) return this.#refreshing;
      return this.#refreshing.then(() => this.refresh(true));
    }
    this.#refreshing = this.#refresh(force).finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  async #refresh(force: boolean): Promise<void> {
    let snapshot: Snapshot;
    try {
      if (!force) {
        const st = await stat(this.path, { bigint: true });
        if (signatureOf(st) === this.#tried) return;
      }
      snapshot = await readSnapshot(this.path);
    } catch (e) {
      const signature = `error:${(e as NodeJS.ErrnoException).code ?? describe(e)}`;
      if (force || signature !== this.#tried) {
        this.#log.error({ users: this.path, error: describe(e) }, 'cannot read the user file; still serving the last good version');
      }
      this.#tried = signature;
      return;
    }
    if (!force && snapshot.signature === this.#tried) return;
    this.#tried = snapshot.signature;
    let users: LoadedUsers;
    try {
      users = compileUserDb(snapshot.text, this.path);
    } catch (e) {
      if (!(e instanceof UserDbError)) throw e;
      this.#log.error({ users: this.path, problems: e.message.split('\n') }, 'user file has errors; still serving the last good version');
      return;
    }
    this.#current = users;
    this.#loaded = snapshot.signature;
    this.#log.info({ users: this.path, accounts: users.accounts.size, reason: force ? 'SIGHUP' : 'changed' }, 'user file loaded');
    this.#warnMode(snapshot.mode, users);
    this.#onLoad(users);
  }

  /** Whether the version in service is the file's current one (for status lines and tests). */
  get upToDate(): boolean {
    return this.#loaded === this.#tried;
  }

  #warnMode(mode: number, users: LoadedUsers): void {
    if ((mode & 0o022) !== 0) {
      this.#log.warn({ users: this.path, mode: mode.toString(8) }, 'the user file is writable by group or others: they can add accounts');
    } else if (users.passwords > 0 && (mode & 0o044) !== 0) {
      this.#log.warn({ users: this.path, mode: mode.toString(8) }, 'the user file holds password hashes and is readable by group or others; chmod 600 it');
    }
  }
}
