// The translation protocol's wire format (spec/translation-protocol.md §1.2-1.3): pure
// functions over bytes, no sockets.
//
//   u16 payload length (the 4-byte header is not counted), u16 command, payload
//
// Both integers are in the host's byte order. The original and its server always share one
// machine and every supported target is little-endian, so this codec is little-endian
// throughout. A request or response is BEGIN, parameter packets, END.
//
// Framing is checked here (BEGIN first, no second BEGIN, stop at END, nothing after END,
// END before the input ends, a size limit); what the packets mean is checked in response.ts.

import { TranslationCommand, describeCommand } from './commands.ts';
import { TranslationError } from './errors.ts';

export const HEADER_SIZE = 4;
export const MAX_PAYLOAD = 0xffff;

/**
 * The original reads responses into an 8 KiB buffer but keeps feeding it, so it has no
 * total limit. A server that never stops sending would make lukko buffer without end; 1 MiB
 * is far above anything a LOGIN response needs (AUTHORIZED_KEYS is the only large packet).
 */
export const DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024;

export interface TranslationPacket {
  readonly command: number;
  readonly payload: Buffer;
}

function checkCommand(command: number): void {
  if (!Number.isInteger(command) || command < 0 || command > 0xffff) {
    throw new RangeError(`translation command ${command} is not a u16`);
  }
}

/** One packet: header plus payload. Throws RangeError when the payload exceeds 65535 bytes. */
export function encodePacket(command: number, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  checkCommand(command);
  if (payload.length > MAX_PAYLOAD) {
    throw new RangeError(`${describeCommand(command)} payload of ${payload.length} bytes exceeds ${MAX_PAYLOAD}`);
  }
  const out = Buffer.allocUnsafe(HEADER_SIZE + payload.length);
  out.writeUInt16LE(payload.length, 0);
  out.writeUInt16LE(command, 2);
  out.set(payload, HEADER_SIZE);
  return out;
}

/** A string packet, UTF-8 without terminator. A NUL would cut the string short on a C server. */
export function encodeStringPacket(command: number, value: string): Buffer {
  if (value.includes('\0')) {
    throw new RangeError(`${describeCommand(command)} string contains a NUL byte`);
  }
  return encodePacket(command, Buffer.from(value, 'utf8'));
}

/** Concatenated packets, e.g. a whole request or a scripted response. */
export function encodePackets(packets: readonly TranslationPacket[]): Buffer {
  return Buffer.concat(packets.map((p) => encodePacket(p.command, p.payload)));
}

/** A payload of little-endian u16 values (STATUS, UMASK). */
export function encodeU16(...values: number[]): Buffer {
  const out = Buffer.allocUnsafe(2 * values.length);
  values.forEach((v, i) => out.writeUInt16LE(v, 2 * i));
  return out;
}

/** A payload of little-endian u32 values (UID_GID, TIMEOUT, MAX_INOTIFY, …). */
export function encodeU32(...values: number[]): Buffer {
  const out = Buffer.allocUnsafe(4 * values.length);
  values.forEach((v, i) => out.writeUInt32LE(v, 4 * i));
  return out;
}

export type PacketDecode =
  | { readonly kind: 'packet'; readonly packet: TranslationPacket; readonly next: number }
  | { readonly kind: 'need-more'; readonly missing: number };

/**
 * The packet that starts at `offset`. Any u16 length is valid on the wire, so a single
 * packet cannot be malformed; it can only be incomplete. The payload is a copy, so it stays
 * valid when the caller reuses its buffer.
 */
export function decodePacket(bytes: Uint8Array, offset = 0): PacketDecode {
  const available = bytes.length - offset;
  if (available < HEADER_SIZE) return { kind: 'need-more', missing: HEADER_SIZE - available };
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = view.readUInt16LE(offset);
  const command = view.readUInt16LE(offset + 2);
  const end = offset + HEADER_SIZE + length;
  if (bytes.length < end) return { kind: 'need-more', missing: end - bytes.length };
  const payload = Buffer.from(view.subarray(offset + HEADER_SIZE, end));
  return { kind: 'packet', packet: { command, payload }, next: end };
}

export type ResponseDecode =
  | { readonly kind: 'complete'; readonly packets: readonly TranslationPacket[] }
  | { readonly kind: 'need-more' }
  | { readonly kind: 'malformed'; readonly error: TranslationError };

export interface DecodeOptions {
  /** Total bytes a response may take, headers included. */
  readonly maxBytes?: number;
}

/**
 * Incremental framing of one response, BEGIN to END. Feed it the bytes as they arrive, in
 * pieces of any size; it answers "need more", "complete" (with every packet, BEGIN and END
 * included) or "malformed" with the reason. Once it has answered complete or malformed it
 * stays there, except that more bytes after END turn complete into excessive data.
 */
export class ResponseDecoder {
  readonly #maxBytes: number;
  #buffer: Buffer = Buffer.alloc(0);
  #consumed = 0; // bytes of the complete packets so far
  readonly #packets: TranslationPacket[] = [];
  #state: ResponseDecode = { kind: 'need-more' };

  constructor(options: DecodeOptions = {}) {
    this.#maxBytes = options.maxBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  }

  get state(): ResponseDecode {
    return this.#state;
  }

  push(chunk: Uint8Array): ResponseDecode {
    if (this.#state.kind === 'malformed' || chunk.length === 0) return this.#state;
    if (this.#state.kind === 'complete') {
      return this.#fail(new TranslationError('excessive-data', 'excessive data from translation server'));
    }
    this.#buffer = this.#buffer.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.#buffer, chunk]);
    let offset = 0;
    for (;;) {
      const d = decodePacket(this.#buffer, offset);
      if (d.kind === 'need-more') {
        // Refuse as soon as a header announces more than the limit allows: there is no
        // point in waiting for bytes that would be refused anyway.
        const pending = this.#buffer.length - offset + d.missing;
        if (this.#consumed + pending > this.#maxBytes) return this.#tooLarge();
        this.#buffer = this.#buffer.subarray(offset);
        return this.#state;
      }
      const { packet } = d;
      this.#consumed += d.next - offset;
      offset = d.next;
      if (this.#consumed > this.#maxBytes) return this.#tooLarge();
      const name = describeCommand(packet.command);
      if (this.#packets.length === 0 && packet.command !== TranslationCommand.BEGIN) {
        return this.#fail(new TranslationError('no-begin', `no BEGIN from translation server (got ${name})`, name));
      }
      if (this.#packets.length > 0 && packet.command === TranslationCommand.BEGIN) {
        return this.#fail(new TranslationError('double-begin', 'double BEGIN from translation server', name));
      }
      this.#packets.push(packet);
      if (packet.command === TranslationCommand.END) {
        // The original checks its receive buffer right after END; anything there is an error.
        if (offset < this.#buffer.length) {
          return this.#fail(new TranslationError('excessive-data', 'excessive data from translation server'));
        }
        this.#buffer = Buffer.alloc(0);
        this.#state = { kind: 'complete', packets: this.#packets };
        return this.#state;
      }
    }
  }

  /** The input ended (EOF). Anything short of a complete response is now an error. */
  end(): ResponseDecode {
    if (this.#state.kind === 'need-more') {
      return this.#fail(new TranslationError('hung-up', 'translation server hung up before END'));
    }
    return this.#state;
  }

  #tooLarge(): ResponseDecode {
    return this.#fail(new TranslationError('too-large', `translation response exceeds ${this.#maxBytes} bytes`));
  }

  #fail(error: TranslationError): ResponseDecode {
    this.#buffer = Buffer.alloc(0);
    this.#state = { kind: 'malformed', error };
    return this.#state;
  }
}

/**
 * Frames one response from all bytes received so far. With `eof`, the bytes are all there
 * will be, so a missing END is an error instead of "need more".
 */
export function decodePackets(bytes: Uint8Array, options: DecodeOptions & { readonly eof?: boolean } = {}): ResponseDecode {
  const decoder = new ResponseDecoder(options);
  const state = decoder.push(bytes);
  return options.eof === true ? decoder.end() : state;
}
