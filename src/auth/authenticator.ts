// Decides each USERAUTH_REQUEST the SSH library hands us. ssh2 already serialises them (one
// pending at a time) but counts nothing and times nothing; this is where MaxAuthTries, the
// 100 ms floor for real failures, and "no answer tells whether an account exists" live.
import { createHash } from 'node:crypto';
import type { AuthContext, AuthenticationType } from 'ssh2';
import type { Logger } from '../log/logger.ts';
import { USER_KEY_TYPES } from '../ssh/algorithms.ts';
import { parseKey } from '../ssh/ssh2-lean.ts';
import type { Account } from './account.ts';
import { validUserName } from './account.ts';
import type { AuthorizedKey } from './authorized-keys.ts';
import { parseAuthorizedKeys } from './authorized-keys.ts';
import { readGlobalKeysFile, readHomeKeysFile } from './key-files.ts';
import type { KeysFile } from './key-files.ts';
import type { Policy } from './policy.ts';
import { keyLineUsable, policyFromKeyOptions } from './policy.ts';

export const MAX_AUTH_FAILURES = 6;
export const FAILURE_FLOOR_MS = 100;

// RFC 4253 11.1 reason codes used here
export const DISCONNECT_PROTOCOL_ERROR = 2;
export const DISCONNECT_ILLEGAL_USER_NAME = 15;

export interface AuthOutcome {
  account: Account;
  policy: Policy;
  method: 'publickey';
  key: { type: string; fingerprint: string; origin: string };
}

export interface AuthDeps {
  log: Logger;
  configDir: string;
  clientIp: string;
  methods: AuthenticationType[];
  lookupAccount(name: string): Promise<Account | undefined>;
  disconnect(reason: number, text: string): void;
  onFirstRequest(): void;
  onSuccess(outcome: AuthOutcome): void;
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
  private readonly accounts = new Map<string, Promise<Account | undefined>>();
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
      // A lookup that throws is our fault, not the client's: fail this attempt, keep going.
      this.deps.log.error({ err }, 'authentication error');
      this.fail(ctx, started, true, 'internal error');
    });
  }

  private account(name: string): Promise<Account | undefined> {
    let p = this.accounts.get(name);
    if (!p) {
      p = this.deps.lookupAccount(name);
      this.accounts.set(name, p);
    }
    return p;
  }

  private async decide(ctx: AuthContext, started: number): Promise<void> {
    const user = ctx.username;
    if (!validUserName(user)) {
      this.deps.log.info({ user: user.slice(0, 64) }, 'illegal user name');
      this.deps.disconnect(DISCONNECT_ILLEGAL_USER_NAME, 'Illegal user name');
      return;
    }
    switch (ctx.method) {
      case 'none':
        // Every OpenSSH client starts with it to learn the methods: answer at once, and
        // like OpenSSH do not count the first one.
        return this.fail(ctx, started, false, 'none', this.requests > 1, true);
      case 'publickey':
        return this.publickey(ctx as AuthContext & PublicKeyCtx, user, started);
      default:
        return this.fail(ctx, started, false, `method ${ctx.method} not offered`);
    }
  }

  private async publickey(ctx: AuthContext & PublicKeyCtx, user: string, started: number): Promise<void> {
    const signed = ctx.signature !== undefined;
    const algo = ctx.key.algo;
    // SHA-1 RSA signatures are refused: the request must name rsa-sha2-256/512.
    const sha1 = algo === 'ssh-rsa' && ctx.hashAlgo === undefined;
    if (!USER_KEY_TYPES.has(algo) || sha1) {
      return this.fail(ctx, started, signed, `key type ${sha1 ? 'ssh-rsa (SHA-1)' : algo} not accepted`);
    }
    const account = await this.account(user);
    const match = account ? this.findKey(account, ctx.key.data) : undefined;
    if (!signed) {
      if (match) {
        this.deps.log.debug({ user, key: fingerprint(ctx.key.data), origin: match.origin }, 'key acceptable');
        ctx.accept(); // SSH_MSG_USERAUTH_PK_OK: the client will sign
        return;
      }
      return this.fail(ctx, started, false, 'key not authorized', true, true);
    }
    if (!account || !match) return this.fail(ctx, started, true, 'key not authorized');
    let valid = false;
    try {
      const key = parseKey(ctx.key.data);
      valid = !(key instanceof Error) && !Array.isArray(key) && key.verify(ctx.blob!, ctx.signature!, ctx.hashAlgo) === true;
    } catch {
      valid = false;
    }
    if (!valid) return this.fail(ctx, started, true, 'bad signature');
    if (this.done) return;
    this.done = true;
    const outcome: AuthOutcome = {
      account,
      policy: policyFromKeyOptions(match.entry.options, match.origin),
      method: 'publickey',
      key: { type: match.entry.keyType, fingerprint: fingerprint(ctx.key.data), origin: match.origin },
    };
    this.deps.onSuccess(outcome);
    ctx.accept();
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

  // The global file first, then ~/.ssh/authorized_keys; the first usable line wins and its
  // options become the connection's Policy.
  private findKey(account: Account, blob: Buffer): KeyMatch | undefined {
    this.globalKeys ??= this.keysFrom(readGlobalKeysFile(this.deps.configDir));
    const home = this.keysFrom(readHomeKeysFile(account.home, account.uid));
    const now = (this.deps.now ?? Date.now)();
    for (const entry of [...this.globalKeys, ...home]) {
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
    ctx.reject(this.deps.methods);
  }
}
