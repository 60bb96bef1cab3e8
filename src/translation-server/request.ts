// LOGIN requests as the translation server receives them (spec/translation-protocol.md §2.1):
//
//   BEGIN, LOGIN, SERVICE, [LISTENER_TAG], USER, [PASSWORD], [PEEK], END
//
// lukko and the C++ original send the packets in this order; other clients (beng-proxy's
// Python library) may order the middle ones differently, so any order is accepted. The rest
// is strict: every packet at most once, nothing else, lengths and character sets as the
// senders check them. Pure functions over bytes; no sockets.

import { TranslationCommand as C, describeCommand } from '../translation/commands.ts';
import { decodePacket } from '../translation/codec.ts';
import type { TranslationPacket } from '../translation/codec.ts';
import { MAX_LISTENER_TAG, MAX_LOGIN_FIELD, isValidUserName } from '../translation/login-request.ts';

/** A request lukko builds is at most about 800 bytes; anything much larger is not one. */
export const MAX_REQUEST_BYTES = 4096;

export interface ParsedLoginRequest {
  /** BEGIN's optional version byte (lukko sends none). */
  readonly protocolVersion?: number;
  readonly service: string;
  readonly listenerTag?: string;
  readonly user: string;
  /** Raw bytes, as the client sent them. */
  readonly password?: Buffer;
  readonly peek: boolean;
}

export class RequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RequestError';
  }
}

export type RequestFrame =
  | { readonly kind: 'complete'; readonly packets: readonly TranslationPacket[]; readonly size: number }
  | { readonly kind: 'need-more' }
  | { readonly kind: 'malformed'; readonly error: RequestError };

/**
 * Frames the request at the start of `bytes`: BEGIN first, no second BEGIN, up to END, no
 * more than `maxBytes`. `size` is how many bytes it took; what follows belongs to the next
 * request. Decides as early as it can: a first packet that is not BEGIN, or a header that
 * announces more than the limit, is malformed without waiting for the rest.
 */
export function frameRequest(bytes: Buffer, maxBytes = MAX_REQUEST_BYTES): RequestFrame {
  const packets: TranslationPacket[] = [];
  // Whatever else the first header says, it must be BEGIN's (an HTTP request, say, is not).
  if (bytes.length >= 4 && bytes.readUInt16LE(2) !== C.BEGIN) {
    return malformed(`request starts with ${describeCommand(bytes.readUInt16LE(2))}, not BEGIN`);
  }
  let offset = 0;
  for (;;) {
    const d = decodePacket(bytes, offset);
    if (d.kind === 'need-more') {
      if (bytes.length + d.missing > maxBytes) return malformed(`request larger than ${maxBytes} bytes`);
      return { kind: 'need-more' };
    }
    if (d.next > maxBytes) return malformed(`request larger than ${maxBytes} bytes`);
    const { packet } = d;
    if (packets.length === 0 && packet.command !== C.BEGIN) return malformed(`request starts with ${describeCommand(packet.command)}, not BEGIN`);
    if (packets.length > 0 && packet.command === C.BEGIN) return malformed('second BEGIN before END');
    packets.push(packet);
    offset = d.next;
    if (packet.command === C.END) return { kind: 'complete', packets, size: offset };
  }
}

function malformed(message: string): RequestFrame {
  return { kind: 'malformed', error: new RequestError(message) };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function string(p: TranslationPacket, max: number): string {
  const name = describeCommand(p.command);
  if (p.payload.length === 0) throw new RequestError(`empty ${name}`);
  if (p.payload.length > max) throw new RequestError(`${name} longer than ${max} bytes`);
  if (p.payload.includes(0)) throw new RequestError(`${name} contains a NUL byte`);
  try {
    return utf8.decode(p.payload);
  } catch {
    throw new RequestError(`${name} is not UTF-8`);
  }
}

function flag(p: TranslationPacket): void {
  if (p.payload.length !== 0) throw new RequestError(`${describeCommand(p.command)} has a payload`);
}

/**
 * A framed request (BEGIN … END, as frameRequest delivers it) → its fields. Throws
 * RequestError for anything a LOGIN request does not look like.
 */
export function parseLoginRequest(packets: readonly TranslationPacket[]): ParsedLoginRequest {
  const first = packets[0];
  const last = packets[packets.length - 1];
  if (first?.command !== C.BEGIN || last?.command !== C.END || packets.length < 2) throw new RequestError('not BEGIN … END');
  if (first.payload.length > 1) throw new RequestError('BEGIN payload longer than one version byte');
  flag(last);

  const seen = new Set<number>();
  let service: string | undefined;
  let listenerTag: string | undefined;
  let user: string | undefined;
  let password: Buffer | undefined;
  let peek = false;
  for (const p of packets.slice(1, -1)) {
    if (seen.has(p.command)) throw new RequestError(`${describeCommand(p.command)} appears twice`);
    seen.add(p.command);
    switch (p.command) {
      case C.LOGIN:
        flag(p);
        break;
      case C.SERVICE:
        service = string(p, 255);
        break;
      case C.LISTENER_TAG:
        listenerTag = string(p, MAX_LISTENER_TAG);
        break;
      case C.USER: {
        const name = string(p, 255);
        if (!isValidUserName(name)) throw new RequestError('USER is not a valid user name');
        user = name;
        break;
      }
      case C.PASSWORD:
        if (p.payload.length === 0) throw new RequestError('empty PASSWORD');
        if (p.payload.length > MAX_LOGIN_FIELD) throw new RequestError(`PASSWORD longer than ${MAX_LOGIN_FIELD} bytes`);
        password = p.payload;
        break;
      case C.PEEK:
        flag(p);
        peek = true;
        break;
      default:
        throw new RequestError(`unexpected ${describeCommand(p.command)} in a LOGIN request`);
    }
  }
  if (!seen.has(C.LOGIN)) throw new RequestError('not a LOGIN request (no LOGIN packet)');
  if (service === undefined) throw new RequestError('no SERVICE');
  if (user === undefined) throw new RequestError('no USER');
  return {
    ...(first.payload.length === 1 ? { protocolVersion: first.payload[0]! } : {}),
    service,
    ...(listenerTag === undefined ? {} : { listenerTag }),
    user,
    ...(password === undefined ? {} : { password }),
    peek,
  };
}
