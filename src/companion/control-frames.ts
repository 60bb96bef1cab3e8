// The frames lukko-control-recv (the C helper that owns the control sockets) writes to the
// companion: pure parsing, no I/O. Layout in lukko-control-recv.c's header comment.
import { formatIp } from '../auth/address-match.ts';

/** Who sent a datagram, as the kernel says. */
export type ControlSource =
  /** AF_UNIX: SCM_CREDENTIALS (absent only if SO_PASSCRED could not be set: never trusted). */
  | { kind: 'unix'; uid?: number; gid?: number; pid?: number }
  /** UDP: the source address (canonical text; IPv4-mapped IPv6 shown as IPv4) and port. */
  | { kind: 'inet'; address: string; port: number };

export interface ReceivedDatagram {
  /** Which socket, in the order the helper was given them. */
  socket: number;
  source: ControlSource;
  /** Longer than the helper's 65535-byte buffer: `data` is cut. */
  truncated: boolean;
  data: Buffer;
}

export type HelperFrame = { kind: 'ready' } | ({ kind: 'datagram' } & ReceivedDatagram);

const HEADER = 39;
/** A frame larger than a datagram plus header can only mean a broken stream. */
const MAX_FRAME = HEADER - 4 + 65535;
const NONE = 0xffffffff;

export class HelperStreamError extends Error {}

function parseFrame(body: Buffer): HelperFrame {
  const kind = String.fromCharCode(body[0] ?? 0);
  if (kind === 'R' && body.length === 1) return { kind: 'ready' };
  if (kind !== 'D' || body.length < HEADER - 4) throw new HelperStreamError(`bad frame from the control helper (kind ${kind}, ${body.length} bytes)`);
  const socket = body.readUInt16BE(1);
  const family = body[3];
  const flags = body[4] ?? 0;
  const data = Buffer.from(body.subarray(HEADER - 4));
  let source: ControlSource;
  if (family === 0) {
    const uid = body.readUInt32BE(5);
    const gid = body.readUInt32BE(9);
    const pid = body.readUInt32BE(13);
    source = (flags & 1) !== 0 && uid !== NONE ? { kind: 'unix', uid, gid, pid } : { kind: 'unix' };
  } else if (family === 4 || family === 6) {
    const raw = body.subarray(19, family === 4 ? 23 : 35);
    const mapped = family === 6 && raw.subarray(0, 10).every((b) => b === 0) && raw[10] === 0xff && raw[11] === 0xff;
    const address = mapped ? formatIp({ family: 4, bytes: new Uint8Array(raw.subarray(12)) }) : formatIp({ family, bytes: new Uint8Array(raw) });
    source = { kind: 'inet', address, port: body.readUInt16BE(17) };
  } else {
    throw new HelperStreamError(`bad address family ${family} from the control helper`);
  }
  return { kind: 'datagram', socket, source, truncated: (flags & 2) !== 0, data };
}

/** Cuts the helper's byte stream into frames. Throws HelperStreamError on a corrupt stream. */
export class HelperFrameSplitter {
  private buffered: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): HelperFrame[] {
    this.buffered = this.buffered.length ? Buffer.concat([this.buffered, chunk]) : chunk;
    const out: HelperFrame[] = [];
    while (this.buffered.length >= 4) {
      const length = this.buffered.readUInt32BE(0);
      if (length < 1 || length > MAX_FRAME) throw new HelperStreamError(`bad frame length ${length} from the control helper`);
      if (this.buffered.length < 4 + length) break;
      out.push(parseFrame(this.buffered.subarray(4, 4 + length)));
      this.buffered = this.buffered.subarray(4 + length);
    }
    return out;
  }
}
