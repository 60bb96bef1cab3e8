// The control datagram format (spec/config-control-metrics.md §3.2): pure functions over bytes,
// no sockets. Everything is big-endian:
//
//   u32 magic 0x63046101
//   then, until the end of the datagram, packets of
//     u16 payload length (exact, without padding)
//     u16 command number
//     payload, then 0-3 padding bytes so the next header starts on a multiple of 4
//
// What the commands mean and which of them lukko acts on is in control-commands.ts.

export const CONTROL_MAGIC = 0x63046101;

/** The original reads each datagram with one recvmsg into 4096 bytes (§3.1). */
export const CONTROL_MAX_DATAGRAM = 4096;

/** The largest payload that fits in one datagram: 4096 minus magic and one packet header. */
export const CONTROL_MAX_PAYLOAD = CONTROL_MAX_DATAGRAM - 4 - 4;

/** Command numbers of the beng-proxy control protocol (§3.3), all that the original knows. */
export const ControlCommandNumber = {
  NOP: 0,
  TCACHE_INVALIDATE: 1,
  ENABLE_NODE: 2,
  FADE_NODE: 3,
  NODE_STATUS: 4,
  DUMP_POOLS: 5,
  STATS: 6,
  VERBOSE: 7,
  FADE_CHILDREN: 8,
  DISABLE_ZEROCONF: 9,
  ENABLE_ZEROCONF: 10,
  FLUSH_NFS_CACHE: 11,
  FLUSH_FILTER_CACHE: 12,
  STOPWATCH_PIPE: 13,
  DISCARD_SESSION: 14,
  FLUSH_HTTP_CACHE: 15,
  TERMINATE_CHILDREN: 16,
  DISABLE_QUEUE: 17,
  ENABLE_QUEUE: 18,
  RELOAD_STATE: 19,
  DISCONNECT_DATABASE: 20,
  DISABLE_URING: 21,
  RESET_LIMITER: 22,
  REJECT_CLIENT: 23,
  TARPIT_CLIENT: 24,
  CANCEL_JOB: 25,
  EXPIRE_TCACHE_TAG: 26,
} as const;

export type ControlCommandName = keyof typeof ControlCommandNumber;

const NAMES: ReadonlyMap<number, ControlCommandName> = new Map(
  (Object.keys(ControlCommandNumber) as ControlCommandName[]).map((name) => [ControlCommandNumber[name], name]),
);

/** The protocol name of a command number, or undefined for a number the original does not know. */
export function controlCommandName(command: number): ControlCommandName | undefined {
  return NAMES.get(command);
}

/** One decoded packet. `command` may be any u16, known or not; `payload` is a copy, unpadded. */
export interface ControlCommand {
  command: number;
  payload: Buffer;
}

export interface ControlCommandInput {
  command: number;
  payload?: Buffer;
}

/**
 * A failed decode still reports `prefix`: the packets that were complete before the malformed
 * part. The original dispatches each packet as soon as it has read it, so in its M4 vector
 * DISABLE_ZEROCONF runs and only then "partial payload" is logged (§3.2, §3.5). A caller that
 * wants to behave like the original acts on `prefix` and then logs `error`; a caller that wants
 * all-or-nothing ignores `prefix`. For the first three errors (wrong magic, too long, odd length)
 * `prefix` is always empty.
 */
export type ControlDecodeResult =
  | { ok: true; commands: ControlCommand[] }
  | { ok: false; error: string; prefix: ControlCommand[] };

function padding(length: number): number {
  return (4 - (length % 4)) % 4;
}

/**
 * Builds one datagram. Throws a RangeError for a command number or payload that does not fit the
 * format, or when the datagram would exceed what the original reads (4096 bytes). Padding is
 * zeros. An empty list gives a datagram with only the magic, which is valid.
 */
export function encodeControlDatagram(commands: readonly ControlCommandInput[]): Buffer {
  let size = 4;
  for (const { command, payload } of commands) {
    if (!Number.isInteger(command) || command < 0 || command > 0xffff) {
      throw new RangeError(`control command number out of range: ${command}`);
    }
    const length = payload?.length ?? 0;
    if (length > 0xffff) throw new RangeError(`control payload too long (length=${length}, max=65535)`);
    size += 4 + length + padding(length);
  }
  if (size > CONTROL_MAX_DATAGRAM) {
    throw new RangeError(`control datagram too long (length=${size}, max=${CONTROL_MAX_DATAGRAM})`);
  }
  const out = Buffer.alloc(size); // zero-filled, so the padding is zeros
  out.writeUInt32BE(CONTROL_MAGIC, 0);
  let pos = 4;
  for (const { command, payload } of commands) {
    const length = payload?.length ?? 0;
    out.writeUInt16BE(length, pos);
    out.writeUInt16BE(command, pos + 2);
    pos += 4;
    if (payload !== undefined) payload.copy(out, pos);
    pos += length + padding(length);
  }
  return out;
}

/**
 * Parses one received datagram. Error texts are the original's (§3.2) so logs read the same,
 * plus "datagram too long" for input over 4096 bytes: the original cannot receive more than
 * that (it truncates, which usually shows up as "partial payload" but can also cut a datagram
 * cleanly at a packet boundary and silently drop the rest), so lukko refuses the whole datagram
 * rather than act on a part of it. A receiver should read with a buffer of at least 4097 bytes
 * so that such datagrams are seen as too long instead of truncated.
 *
 * Padding content is not checked, as in the original.
 */
export function decodeControlDatagram(buf: Buffer): ControlDecodeResult {
  if (buf.length < 4 || buf.readUInt32BE(0) !== CONTROL_MAGIC) {
    return { ok: false, error: 'wrong magic', prefix: [] };
  }
  if (buf.length > CONTROL_MAX_DATAGRAM) {
    return {
      ok: false,
      error: `datagram too long (length=${buf.length}, max=${CONTROL_MAX_DATAGRAM})`,
      prefix: [],
    };
  }
  const body = buf.length - 4;
  if (body % 4 !== 0) {
    return { ok: false, error: `odd control packet (length=${body})`, prefix: [] };
  }
  const commands: ControlCommand[] = [];
  let pos = 4;
  // Because the body is a multiple of 4 and every packet is padded to 4, a header is never cut.
  while (pos < buf.length) {
    const length = buf.readUInt16BE(pos);
    const command = buf.readUInt16BE(pos + 2);
    pos += 4;
    const remaining = buf.length - pos;
    if (remaining < length) {
      return {
        ok: false,
        error: `partial payload (length=${remaining}, expected=${length})`,
        prefix: commands,
      };
    }
    // A copy, so that the command does not alias (and keep alive) a reused receive buffer.
    commands.push({ command, payload: Buffer.from(buf.subarray(pos, pos + length)) });
    pos += length + padding(length); // stays ≤ buf.length: remaining is a multiple of 4
  }
  return { ok: true, commands };
}
