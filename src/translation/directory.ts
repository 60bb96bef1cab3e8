// Accounts from a translation server, with the original's per-connection cache
// (spec/translation-protocol.md §2.3): a lookup without a password reuses the last response
// when it was for the same user; a password check always asks again and its response,
// success or failure, replaces the cache.
import type { AccountDirectory, Lookup } from '../auth/directory.ts';
import type { TranslateOptions } from './client.ts';
import { translate } from './client.ts';
import { TranslationError } from './errors.ts';
import { LoginRequestError, buildLoginRequest } from './login-request.ts';
import type { IsolationSupport } from './login.ts';
import { loginFromResponse } from './login.ts';
import type { TranslationResponse } from './response.ts';

export interface TranslationDirectoryOptions extends TranslateOptions {
  address: string;
  listenerTag?: string;
  peek?: boolean;
  /** What this connection can enforce beyond lukko-exec (unit resource limits). */
  isolationSupport?: IsolationSupport;
  /** Called once per request actually sent (metrics, tests). */
  onRequest?(user: string, withPassword: boolean): void;
}

function lookupFrom(user: string, response: TranslationResponse, support?: IsolationSupport): Lookup {
  if (response.status !== undefined) {
    return { found: false, reason: `status ${response.status}${response.message ? `: ${response.message}` : ''}` };
  }
  const login = loginFromResponse(user, response, support);
  if (typeof login === 'string') throw new TranslationError('invalid-account', login);
  return { found: true, login };
}

export function translationDirectory(options: TranslationDirectoryOptions): AccountDirectory {
  let cache: { user: string; response: Promise<TranslationResponse> } | undefined;

  const ask = (user: string, password?: string): Promise<TranslationResponse> => {
    let request: Buffer;
    try {
      request = buildLoginRequest({ service: 'ssh', listenerTag: options.listenerTag, user, password, peek: options.peek });
    } catch (e) {
      // A password the original would throw on (too long) ends the login as a server failure.
      if (e instanceof LoginRequestError) return Promise.reject(new TranslationError('malformed', `cannot send request: ${e.message}`));
      throw e;
    }
    options.onRequest?.(user, password !== undefined);
    const response = translate(options.address, request, options);
    cache = { user, response };
    return response;
  };

  return {
    methods: ['publickey', 'password'],
    async lookup(user) {
      const response = cache?.user === user ? cache.response : ask(user);
      return lookupFrom(user, await response, options.isolationSupport);
    },
    async checkPassword(user, password) {
      return lookupFrom(user, await ask(user, password), options.isolationSupport);
    },
  };
}
