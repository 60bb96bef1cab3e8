// Decides each USERAUTH_REQUEST the SSH library hands us. ssh2 already serialises them (one
// pending at a time) but counts nothing and times nothing; this is where MaxAuthTries, the
// 100 ms floor for real failures, and "no answer tells whether an account exists" live.
import { createHash } from 'node:crypto';
import type { AuthContext } from 'ssh2';
import type { Logger } from '../log/logger.ts';
import { USER_KEY_TYPES } from '../ssh/algorithms.ts';
import { parseKey } from '../ssh/ssh2-lean.ts';
import { TARPIT_COST as TARPIT } from '../companion/tarpit-costs.ts';
import { TranslationError } from '../translation/errors.ts';
import type { Account } from './account.ts';
import { validUserName } from './account.ts';
import type { AccountDirectory, Login, Lookup } from './directory.ts';
import type { AuthorizedKey } from './authorized-keys.ts';
import { parseAuthorizedKeys } from './authorized-keys.ts';
import { readGlobalKeysFile, readHomeKeysFile } from './key-files.ts';
import type { KeysFile } from './key-files.ts';
import type { Policy } from './policy.ts';
import { keyLineUsable, mergePolicies, policyFromKeyOptions } from './policy.ts';

export const MAX_AUTH_FAILURES = 6;
export const FAILURE_FLOOR_MS = 100;

// RFC 4253 11.1 reason codes used here
export const DISCONNECT_PROTOCOL_ERROR = 2;
export const DISCONNECT_ILLEGAL_USER_NAME = 15;

export const DISCONNECT_SERVICE_NOT_AVAILABLE = 7;
export const CONFIGURATION_SERVER_FAILED = 'Configuration server failed';

export type AuthMethod = 'publickey' | 'password' | 'none' | 'keyboard-interactive';

/** How an attempt counts in the original's metrics (lukko_userauth_*{method}). */
export type AttemptMethod = 'none' | 'password' | 'publickey' | 'unsupported' | 'unknown';

/** What one USERAUTH_REQUEST was, for metrics and the tarpit (spec §4.3, §5.3). */
export interface Attempt {
  method: AttemptMethod;
  ok: boolean;
  /** An unsigned key query answered with PK_OK: received, neither accepted nor failed. */
  query?: boolean;
  /** Tarpit cost (spec §5.3). */
  cost: number;
}

export interface AuthOutcome {
  login: Login;
  account: Account;
  policy: Policy;
  method: AuthMethod;
  key?: { type: string; fingerprint: string; origin: string };
}

export interface AuthDeps {
  log: Logger;
  configDir: string;
  clientIp: string;
  directory: AccountDirectory;
  disconnect(reason: number, text: string): void;
  onFirstRequest(): void;
  onSuccess(outcome: AuthOutcome): void;
  /** Each request's outcome (metrics, tarpit); extra costs come as `{cost}` only. */
  onAttempt?(a: Attempt | { cost: number; translationError?: true }): void;
  now?: () => number;
}

export function fingerprint(blob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

interface PublicKeyCtx {
  key: { algo: string; data: Buffer };
  signature?: Buffer;
  blob?: Buffer;
  hashAlgo?: string;
}

interface KeyMatch {
  entry: AuthorizedKey;
  origin: string;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class Authenticator {
  private failures = 0;
  private requests = 0;
  private done = false;
  private globalKeys: AuthorizedKey[] | undefined;
  private readonly deps: AuthDeps;

  constructor(deps: AuthDeps) {
    this.deps = deps;
  }

  get failureCount(): number {
    return this.failures;
  }

  handle(ctx: AuthContext): void {
    if (this.requests++ === 0) this.deps.onFirstRequest();
    const started = Date.now();
    this.decide(ctx, started).catch((err: unknown) => {
      if (err instanceof TranslationError) {
        // The original's answer to every translation failure; the log says what was wrong.
        this.done = true;
        this.deps.onAttempt?.({ cost: TARPIT.translationFailure, translationError: true });
        this.deps.log.warn({ user: ctx.username, rule: err.rule, packet: err.packet, err: err.message }, 'translation server failed');
        this.deps.disconnect(DISCONNECT_SERVICE_NOT_AVAILABLE, CONFIGURATION_SERVER_FAILED);
        return;
      }
      // A lookup that throws is our fault, not the client's: fail this attempt, keep going.
      this.deps.log.error({ err }, 'authentication error');
      void this.fail(ctx, started, true, 'internal error');
    });
  }

  private async login(user: string): Promise<Login | undefined> {
    const found = await this.deps.directory.lookup(user);
    return found.found ? found.login : undefined;
  }

  // A login that would succeed but asks for what cannot be enforced is refused here, after
  // the client proved who it is, so that a scanner learns nothing about the account.
  private succeed(ctx: AuthContext, outcome: AuthOutcome): void {
    if (this.done) return;
    this.done = true;
    if (outcome.login.unenforceable.length > 0) {
      this.deps.log.warn(
        { user: outcome.account.name, method: outcome.method, packets: outcome.login.unenforceable },
        `login refused: the translation server asks for ${outcome.login.unenforceable.join(', ')}, which this release cannot enforce`,
      );
      this.deps.disconnect(DISCONNECT_SERVICE_NOT_AVAILABLE, CONFIGURATION_SERVER_FAILED);
      return;
    }
    this.deps.onSuccess(outcome);
    ctx.accept();
  }

  private attempt(method: AttemptMethod, ok: boolean, cost: number, query = false): void {
    this.deps.onAttempt?.(query ? { method, ok, cost, query } : { method, ok, cost });
  }

  private async decide(ctx: AuthContext, started: number): Promise<void> {
    const user = ctx.username;
    if (!validUserName(user)) {
      this.attempt('unknown', false, TARPIT.invalidUserName);
      this.deps.log.info({ user: user.slice(0, 64) }, 'illegal user name');
      this.deps.disconnect(DISCONNECT_ILLEGAL_USER_NAME, 'Illegal user name');
      return;
    }
    switch (ctx.method) {
      case 'publickey':
        return this.publickey(ctx as AuthContext & PublicKeyCtx, user, started);
      case 'password':
        return this.password(ctx, user, started);
      case 'none':
      case 'keyboard-interactive': {
        // A translation server's NO_PASSWORD lets these in; otherwise `none` is every
        // OpenSSH client's first question, answered at once and (like OpenSSH) the first
        // one not counted.
        const cost = ctx.method === 'none' ? TARPIT.none : TARPIT.unsupportedMethod;
        const login = this.deps.directory.checkPassword ? await this.login(user) : undefined;
        if (login?.passwordless) {
          // The original counts a NO_PASSWORD login as a password success.
          this.attempt('password', true, cost);
          return this.succeed(ctx, { login, account: login.account, policy: login.policy, method: ctx.method });
        }
        if (ctx.method === 'none') {
          this.attempt('none', false, cost);
          return this.fail(ctx, started, false, 'none', this.requests > 1, true);
        }
        this.attempt('unsupported', false, cost);
        return this.fail(ctx, started, false, 'method keyboard-interactive not offered');
      }
      default:
        this.attempt('unsupported', false, TARPIT.unsupportedMethod);
        return this.fail(ctx, started, false, `method ${ctx.method} not offered`);
    }
  }

  private async password(ctx: AuthContext, user: string, started: number): Promise<void> {
    const directory = this.deps.directory;
    const password = (ctx as AuthContext & { password?: unknown }).password;
    if (!directory.checkPassword) {
      this.attempt('unsupported', false, TARPIT.unsupportedMethod);
      return this.fail(ctx, started, false, 'method password not offered');
    }
    // A change request or an empty password never reaches the server, as in the original.
    // Change requests are received but (as there) counted as neither success nor failure.
    if (typeof password !== 'string') {
      this.attempt('none', false, 0);
      return this.fail(ctx, started, false, 'password change not supported');
    }
    if (password.length === 0) {
      this.attempt('password', false, TARPIT.emptyPassword);
      return this.fail(ctx, started, false, 'empty password');
    }
    this.deps.onAttempt?.({ cost: TARPIT.password }); // charged before the server is asked
    const result: Lookup = await directory.checkPassword(user, password);
    if (!result.found) {
      this.attempt('password', false, TARPIT.rejectedByTranslation);
      return this.fail(ctx, started, true, `password refused (${result.reason})`);
    }
    this.attempt('password', true, 0);
    const { login } = result;
    this.succeed(ctx, { login, account: login.account, policy: login.policy, method: 'password' });
  }

  private async publickey(ctx: AuthContext & PublicKeyCtx, user: string, started: number): Promise<void> {
    const signed = ctx.signature !== undefined;
    const algo = ctx.key.algo;
    // SHA-1 RSA signatures are refused: the request must name rsa-sha2-256/512.
    const sha1 = algo === 'ssh-rsa' && ctx.hashAlgo === undefined;
    if (!USER_KEY_TYPES.has(algo) || sha1) {
      this.attempt('publickey', false, TARPIT.publickey);
      return this.fail(ctx, started, signed, `key type ${sha1 ? 'ssh-rsa (SHA-1)' : algo} not accepted`);
    }
    const login = await this.login(user);
    const match = login ? this.findKey(login, ctx.key.data) : undefined;
    if (!login) {
      // A translation server that refuses the user costs what the original charges for it.
      const cost = TARPIT.publickey + (this.deps.directory.checkPassword ? TARPIT.rejectedByTranslation : 0);
      this.attempt('unknown', false, cost);
    } else if (!match || !signed) {
      this.attempt('publickey', false, TARPIT.publickey, !!match);
    }
    if (!signed) {
      if (match) {
        this.deps.log.debug({ user, key: fingerprint(ctx.key.data), origin: match.origin }, 'key acceptable');
        ctx.accept(); // SSH_MSG_USERAUTH_PK_OK: the client will sign
        return;
      }
      return this.fail(ctx, started, false, 'key not authorized', true, true);
    }
    if (!login || !match) return this.fail(ctx, started, true, 'key not authorized');
    let valid = false;
    try {
      const key = parseKey(ctx.key.data);
      valid = !(key instanceof Error) && !Array.isArray(key) && key.verify(ctx.blob!, ctx.signature!, ctx.hashAlgo) === true;
    } catch {
      valid = false;
    }
    if (!valid) {
      this.attempt('publickey', false, TARPIT.publickey);
      return this.fail(ctx, started, true, 'bad signature');
    }
    const policy = mergePolicies(login.policy, policyFromKeyOptions(match.entry.options, match.origin));
    if ('conflict' in policy) {
      this.attempt('publickey', false, TARPIT.publickey);
      return this.fail(ctx, started, true, policy.conflict);
    }
    this.attempt('publickey', true, TARPIT.publickey);
    this.succeed(ctx, {
      login,
      account: login.account,
      policy,
      method: 'publickey',
      key: { type: match.entry.keyType, fingerprint: fingerprint(ctx.key.data), origin: match.origin },
    });
  }

  private keysFrom(file: KeysFile): AuthorizedKey[] {
    if (!file.ok) {
      if (!file.missing) this.deps.log.warn({ file: file.path, reason: file.reason }, 'authorized keys file ignored');
      return [];
    }
    const { entries, problems } = parseAuthorizedKeys(file.text, file.path);
    for (const p of problems) this.deps.log.warn({ file: p.source, line: p.line, reason: p.reason }, 'authorized_keys line unusable');
    return entries;
  }

  // The translation server's keys, the global file, then ~/.ssh/authorized_keys (unless
  // the server says not to); the first usable line wins and its options become the
  // connection's Policy.
  private findKey(login: Login, blob: Buffer): KeyMatch | undefined {
    const { account } = login;
    this.globalKeys ??= this.keysFrom(readGlobalKeysFile(this.deps.configDir));
    const inline = login.inlineKeys ? this.keysFrom({ ok: true, path: login.inlineKeys.source, text: login.inlineKeys.text }) : [];
    const home = login.homeKeys ? this.keysFrom(readHomeKeysFile(account.home, account.uid)) : [];
    const now = (this.deps.now ?? Date.now)();
    for (const entry of [...inline, ...this.globalKeys, ...home]) {
      if (!entry.blob.equals(blob)) continue;
      const origin = `${entry.source}:${entry.line}`;
      const usable = keyLineUsable(entry, { clientIp: this.deps.clientIp, now });
      if (!usable.ok) {
        this.deps.log.info({ user: account.name, origin, reason: usable.reason }, 'key refused by its options');
        continue;
      }
      return { entry, origin };
    }
    return undefined;
  }

  // `real`: a real failed attempt (a wrong signature, an unauthorized signed key), answered
  // no sooner than FAILURE_FLOOR_MS after the request so that a client cannot time its way
  // to which accounts exist or which step failed. The `none` probe and unsigned key queries
  // are answered at once (the original delays them too, ~100 ms on every login).
  private async fail(ctx: AuthContext, started: number, real: boolean, reason: string, counts = true, quiet = false): Promise<void> {
    if (real) {
      const wait = started + FAILURE_FLOOR_MS - Date.now();
      if (wait > 0) await sleep(wait);
    }
    if (this.done) return;
    const fields = { user: ctx.username, method: ctx.method, reason, failures: this.failures + (counts ? 1 : 0) };
    if (quiet) this.deps.log.debug(fields, 'authentication failed');
    else this.deps.log.info(fields, 'authentication failed');
    if (counts && ++this.failures >= MAX_AUTH_FAILURES) {
      this.done = true;
      this.deps.disconnect(DISCONNECT_PROTOCOL_ERROR, 'Too many authentication failures');
      return;
    }
    ctx.reject(this.deps.directory.methods);
  }
}
