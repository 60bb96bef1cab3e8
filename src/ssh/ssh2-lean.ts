// The parts of ssh2 a per-connection server needs, without its index: that also loads the
// SSH client, the agent code (and with it http/https) and the HTTP agents, ~10 ms and a few
// MiB on every login for nothing.
import { createRequire } from 'node:module';
import type ssh2 from 'ssh2';

const require = createRequire(import.meta.url);

export const Server = require('ssh2/lib/server.js') as typeof ssh2.Server;
export const parseKey = (require('ssh2/lib/protocol/keyParser.js') as { parseKey: typeof ssh2.utils.parseKey }).parseKey;
