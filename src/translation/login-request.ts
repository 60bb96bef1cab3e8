// The LOGIN request, the only request lukko sends (spec/translation-protocol.md §2.1), in the
// original's packet order:
//
//   BEGIN, LOGIN, SERVICE, [LISTENER_TAG], USER, [PASSWORD], [PEEK], END
//
// BEGIN carries no protocol version, as in the original. Every input is checked before a
// byte is built, so a caller never sends half a request.

import { TranslationCommand as C } from './commands.ts';
import { validUserName } from '../auth/account.ts';
import { encodePacket, encodeStringPacket } from './codec.ts';

/** The original refuses a user name or password longer than this when building the request. */
export const MAX_LOGIN_FIELD = 256;

/** The listener `tag` limit the original's config parser enforces. */
export const MAX_LISTENER_TAG = 256;

export interface LoginRequest {
  /** `ssh` for every request the original sends today. */
  readonly service: string;
  /** The accepting listener's `tag`; absent or empty: no LISTENER_TAG packet. */
  readonly listenerTag?: string | undefined;
  /** The SSH user name from USERAUTH_REQUEST. */
  readonly user: string;
  /** Only for the `password` method; the original never sends an empty one. */
  readonly password?: string | Uint8Array | undefined;
  /** The listener proxies (`proxy_to` / `proxy_to_zeroconf`). */
  readonly peek?: boolean | undefined;
}

export type LoginRequestFault =
  | 'invalid-user' // the caller answers with DISCONNECT 15 (ILLEGAL_USER_NAME), as the original
  | 'password-too-long' // the original throws here, which ends in DISCONNECT 7
  | 'empty-password' // the original never gets here: an empty password fails without a request
  | 'password-nul' // see buildLoginRequest
  | 'invalid-service'
  | 'invalid-listener-tag';

export class LoginRequestError extends Error {
  readonly fault: LoginRequestFault;

  constructor(fault: LoginRequestFault, message: string) {
    super(message);
    this.name = 'LoginRequestError';
    this.fault = fault;
  }
}

/** The original's user-name check, the same one authentication applies (auth/account.ts). */
export { validUserName as isValidUserName } from '../auth/account.ts';

/**
 * The request bytes, to be written in one piece. Throws LoginRequestError when an input is
 * not acceptable; nothing is built in that case.
 *
 * A password containing a NUL byte is refused although the original would pass it on: a
 * server written in C would compare only the part before the NUL.
 */
export function buildLoginRequest(request: LoginRequest): Buffer {
  const { service, listenerTag, user, password, peek } = request;
  if (!validUserName(user)) {
    throw new LoginRequestError('invalid-user', 'invalid user name');
  }
  if (service.length === 0 || service.includes('\0')) {
    throw new LoginRequestError('invalid-service', 'invalid SERVICE for the LOGIN request');
  }
  const tag = listenerTag !== undefined && listenerTag.length > 0 ? Buffer.from(listenerTag, 'utf8') : undefined;
  if (tag !== undefined && (tag.length > MAX_LISTENER_TAG || tag.includes(0))) {
    throw new LoginRequestError('invalid-listener-tag', 'listener tag is too long or contains a NUL byte');
  }
  let secret: Buffer | undefined;
  if (password !== undefined) {
    secret = typeof password === 'string' ? Buffer.from(password, 'utf8') : Buffer.from(password);
    if (secret.length === 0) throw new LoginRequestError('empty-password', 'empty password');
    if (secret.length > MAX_LOGIN_FIELD) throw new LoginRequestError('password-too-long', 'password too long');
    if (secret.includes(0)) throw new LoginRequestError('password-nul', 'password contains a NUL byte');
  }

  const packets: Buffer[] = [
    encodePacket(C.BEGIN),
    encodePacket(C.LOGIN),
    encodeStringPacket(C.SERVICE, service),
  ];
  if (tag !== undefined) packets.push(encodePacket(C.LISTENER_TAG, tag));
  packets.push(encodeStringPacket(C.USER, user));
  if (secret !== undefined) packets.push(encodePacket(C.PASSWORD, secret));
  if (peek === true) packets.push(encodePacket(C.PEEK));
  packets.push(encodePacket(C.END));
  return Buffer.concat(packets);
}
