// What a connection past max_connections_per_ip receives instead of a handshake (spec §5.2):
// our identification line, then one unencrypted binary packet (RFC 4253 §6, block size 8)
// carrying SSH_MSG_DISCONNECT TOO_MANY_CONNECTIONS. Clients print the text ("Too many
// connections") instead of a bare "connection reset".
import { randomBytes } from 'node:crypto';

const SSH_MSG_DISCONNECT = 1;
export const DISCONNECT_TOO_MANY_CONNECTIONS = 12;

function sshString(text: string): Buffer {
  const body = Buffer.from(text, 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}

/** Identification line plus DISCONNECT packet; `ident` is what follows "SSH-2.0-". */
export function tooManyConnections(ident: string, text = 'Too many connections'): Buffer {
  const code = Buffer.alloc(5);
  code.writeUInt8(SSH_MSG_DISCONNECT, 0);
  code.writeUInt32BE(DISCONNECT_TOO_MANY_CONNECTIONS, 1);
  const payload = Buffer.concat([code, sshString(text), sshString('en')]);
  // packet_length (4) + padding_length (1) + payload + padding is a multiple of 8, padding ≥ 4
  let padding = 8 - ((5 + payload.length) % 8);
  if (padding < 4) padding += 8;
  const head = Buffer.alloc(5);
  head.writeUInt32BE(1 + payload.length + padding, 0);
  head.writeUInt8(padding, 4);
  return Buffer.concat([Buffer.from(`SSH-2.0-${ident}\r\n`), head, payload, randomBytes(padding)]);
}
