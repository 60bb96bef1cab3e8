// SSH payload bytes and packets of this process's one connection, for the original's
// lukko_bytes_*/lukko_packets_* (payload sizes, not wire bytes). ssh2 counts nothing, so the two
// places every packet passes are wrapped: PacketWriter.alloc (each outgoing packet's payload is
// allocated there exactly once, also while a rekey queues it) and the protocol's onPayload
// (each decrypted incoming payload after the first key exchange; the handful of unencrypted
// KEX packets before it are not counted).
import { createRequire } from 'node:module';
import type { Traffic } from './companion-link.ts';

const require = createRequire(import.meta.url);

const counts: Traffic = { bytesIn: 0, bytesOut: 0, packetsIn: 0, packetsOut: 0 };
let installed = false;

interface PacketWriterClass {
  prototype: { alloc(payloadSize: number, force?: boolean): Buffer };
}

function countOutgoing(): void {
  if (installed) return;
  installed = true;
  const { PacketWriter } = require('ssh2/lib/protocol/zlib.js') as { PacketWriter: PacketWriterClass };
  const alloc = PacketWriter.prototype.alloc;
  PacketWriter.prototype.alloc = function (this: unknown, payloadSize: number, force?: boolean): Buffer {
    counts.bytesOut += payloadSize;
    counts.packetsOut++;
    return alloc.call(this, payloadSize, force);
  };
}

/** Starts counting for the ssh2 server-side client `client` (call at its 'connection'). */
export function countTraffic(client: unknown): () => Traffic {
  countOutgoing();
  const proto = (client as { _protocol?: { _onPayload?: (payload: Buffer) => unknown } })._protocol;
  const onPayload = proto?._onPayload;
  if (proto && onPayload) {
    proto._onPayload = (payload: Buffer) => {
      counts.bytesIn += payload.length;
      counts.packetsIn++;
      return onPayload(payload);
    };
  }
  return () => ({ ...counts });
}
