// Local fixes to ssh2 1.17.0, applied on every install (npm ci runs postinstall), so they
// survive a fresh node_modules. Each patch names the exact text it replaces and refuses to
// guess: if ssh2 changes underneath us the install fails loudly instead of running unpatched.
//
// 1. server-sig-algs (RFC 8308) lacks a comma between ecdsa-sha2-nistp521 and rsa-sha2-512
//    (upstream PR #1485), so clients never learn that rsa-sha2-512 is accepted. lukko also
//    never accepts SHA-1 (ssh-rsa) or DSA user signatures, so they are not advertised.
// 2. With an RSA host key loaded, ssh2 appends `ssh-rsa` (SHA-1) to the host key algorithms
//    even when the configured list leaves it out. Only what lukko configures is offered.
// 3. Protocol#disconnect(reason) always sends an empty description; lukko passes one
//    ("Timeout", "Too many authentication failures", ...) that clients print.
// 4. A pty-req whose terminal modes contain an opcode ssh2 does not know (OpenSSH always
//    sends IUTF8, 42, from RFC 8160) loses the whole request's data: size, TERM and modes.
//    RFC 4254 8 says unknown opcodes 1-159 carry one uint32 and opcodes >= 160 end parsing.
//    The parser also starts one byte into the modes, so the first opcode is never seen and
//    everything after is misread, and its opcode→name table maps names to numbers instead
//    of numbers to names: no client's terminal modes ever arrived.
// 5. A refused channel open always says "connect failed" with no text; lukko refuses
//    forwarding by policy, which RFC 4254 5.1 calls "administratively prohibited", and says
//    why. The reject() handed to 'tcpip' and friends takes an optional reason and text.
// 6. first_kex_packet_follows: ssh2 overwrites the client's KEX list with the chosen name
//    before comparing it with the client's guess, so a RIGHT guess is taken for a wrong one
//    and the client's first key-exchange packet is dropped. Dropbear always guesses: its
//    clients stalled until the login timeout.
// 7. With the native binding, OpenSSL does Poly1305, yet ssh2 still instantiates its WASM
//    fallback at require time: start-up time and memory on every connection for nothing.
// 8. Outgoing flow control of a session channel: when stdout and stderr both wait for the
//    client's window, a WINDOW_ADJUST resumes only stdout (stderr's write never completes, the
//    session never ends), and a resumed chunk is not cleared, so a later wait of stderr alone
//    re-sends the old stdout chunk and calls its callback twice. Seen as a hung
//    `cmd | tee >(sha256sum >&2)` session. Both pending writes are now taken and resumed.
// 9. Agent forwarding: a server can accept auth-agent-req@openssh.com but has no way to open
//    the auth-agent@openssh.com channel back to the client (the protocol layer can send it;
//    the server's channel opener only knows forwarded-tcpip, x11 and streamlocal).
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const root = dirname(require.resolve('ssh2/package.json'));

const patches = [
  {
    file: 'lib/protocol/Protocol.js',
    from: `    'ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521'
      + 'rsa-sha2-512,rsa-sha2-256,ssh-rsa,ssh-dss';`,
    to: `    'ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,'
      + 'rsa-sha2-512,rsa-sha2-256'; /* lukko: comma fixed, no SHA-1/DSA */`,
  },
  {
    file: 'lib/server.js',
    from: `          // Fall back to giving SHA1 the lowest priority
          sha1Pos = Infinity;`,
    to: `          // lukko: SHA-1 host key signatures only when explicitly configured
          sha1Pos = -1;`,
  },
  {
    file: 'lib/protocol/Protocol.js',
    from: `  disconnect(reason) {
    const pktLen = 1 + 4 + 4 + 4;`,
    to: `  disconnect(reason, desc) { /* lukko: optional description */
    const descBuf = Buffer.from(typeof desc === 'string' ? desc.slice(0, 256) : '', 'utf8');
    const pktLen = 1 + 4 + 4 + descBuf.length + 4;`,
  },
  {
    file: 'lib/protocol/Protocol.js',
    from: `    writeUInt32BE(packet, reason, ++p);
    packet.fill(0, p += 4, end);`,
    to: `    writeUInt32BE(packet, reason, ++p);
    writeUInt32BE(packet, descBuf.length, p += 4);
    packet.set(descBuf, p += 4);
    packet.fill(0, p + descBuf.length, end);`,
  },
  {
    file: 'lib/protocol/handlers.misc.js',
    from: `       .reduce((obj, [key, value]) => ({ ...obj, [key]: value }), {});`,
    to: `       .reduce((obj, [key, value]) => ({ ...obj, [value]: key }), {}); /* lukko */`,
  },
  {
    file: 'lib/protocol/handlers.misc.js',
    from: `            bufferParser.init(modesBinary, 1);`,
    to: `            bufferParser.init(modesBinary, 0); /* lukko: modes start at 0 */`,
  },
  {
    file: 'lib/protocol/handlers.misc.js',
    from: `              const name = TERMINAL_MODE_BY_VALUE[opcode];
              const value = bufferParser.readUInt32BE();
              if (opcode === undefined
                  || name === undefined
                  || value === undefined) {
                modes = undefined;
                break;
              }
              modes[name] = value;`,
    to: `              if (opcode >= 160) break; /* lukko: RFC 4254 8 */
              const name = (opcode === 42 ? 'IUTF8' : TERMINAL_MODE_BY_VALUE[opcode]);
              const value = bufferParser.readUInt32BE();
              if (opcode === undefined || value === undefined) {
                modes = undefined;
                break;
              }
              if (name !== undefined) modes[name] = value; /* lukko: skip unknown */`,
  },
  {
    file: 'lib/server.js',
    from: `          const reject = () => {
            if (replied)
              return;
            replied = true;

            if (reason === undefined) {`,
    to: `          const reject = (code, desc) => { /* lukko: optional reason and text */
            if (replied)
              return;
            replied = true;

            if (typeof code === 'number')
              reason = code;
            if (reason === undefined) {`,
  },
  {
    file: 'lib/server.js',
    from: `            if (localChan !== -1)
              this._chanMgr.remove(localChan);
            proto.channelOpenFail(info.sender, reason, '');`,
    to: `            if (localChan !== -1)
              this._chanMgr.remove(localChan);
            proto.channelOpenFail(info.sender, reason, typeof desc === 'string' ? desc : '');`,
  },
  {
    file: 'lib/protocol/kex.js',
    from: `  init.kex = clientList[i];
  debug && debug(\`Handshake: KEX algorithm: \${clientList[i]}\`);
  if (firstFollows && (!remote.kex.length || clientList[i] !== remote.kex[0])) {`,
    to: `  const guessedKex = remote.kex[0]; /* lukko: read the guess before it is overwritten */
  init.kex = clientList[i];
  debug && debug(\`Handshake: KEX algorithm: \${clientList[i]}\`);
  if (firstFollows && (guessedKex === undefined || clientList[i] !== guessedKex)) {`,
  },
  {
    file: 'lib/protocol/crypto.js',
    from: `      try {
        POLY1305_WASM_MODULE = await require('./crypto/poly1305.js')();`,
    to: `      try {
        if (ChaChaPolyCipher && ChaChaPolyDecipher) return resolve(); /* lukko: binding active */
        POLY1305_WASM_MODULE = await require('./crypto/poly1305.js')();`,
  },
  {
    file: 'lib/server.js',
    from: `          if (channel._waitWindow) {
            channel._waitWindow = false;

            if (channel._chunk) {
              channel._write(channel._chunk, null, channel._chunkcb);
            } else if (channel._chunkcb) {
              channel._chunkcb();
            } else if (channel._chunkErr) {
              channel.stderr._write(channel._chunkErr,
                                    null,
                                    channel._chunkcbErr);
            } else if (channel._chunkcbErr) {
              channel._chunkcbErr();
            }
          }`,
    to: `          if (channel._waitWindow) { /* lukko: resume stdout and stderr, once each */
            channel._waitWindow = false;
            const chunk = channel._chunk;
            const chunkcb = channel._chunkcb;
            const chunkErr = channel._chunkErr;
            const chunkcbErr = channel._chunkcbErr;
            channel._chunk = channel._chunkcb = undefined;
            channel._chunkErr = channel._chunkcbErr = undefined;
            if (chunk)
              channel._write(chunk, null, chunkcb);
            else if (chunkcb)
              chunkcb();
            if (chunkErr)
              channel.stderr._write(chunkErr, null, chunkcbErr);
            else if (chunkcbErr)
              chunkcbErr();
          }`,
  },
  {
    file: 'lib/server.js',
    from: `    case 'forwarded-streamlocal@openssh.com':
      self._protocol.openssh_forwardedStreamLocal(
        localChan, initWindow, maxPacket, opts
      );
      break;
    default:`,
    to: `    case 'forwarded-streamlocal@openssh.com':
      self._protocol.openssh_forwardedStreamLocal(
        localChan, initWindow, maxPacket, opts
      );
      break;
    case 'auth-agent@openssh.com': /* lukko: agent forwarding */
      self._protocol.openssh_authAgent(localChan, initWindow, maxPacket);
      break;
    default:`,
  },
  {
    file: 'lib/server.js',
    from: `  openssh_forwardOutStreamLocal(socketPath, cb) {`,
    to: `  openssh_authAgent(cb) { /* lukko: agent forwarding */
    openChannel(this, 'auth-agent@openssh.com', {}, cb);
    return this;
  }

  openssh_forwardOutStreamLocal(socketPath, cb) {`,
  },
];

let changed = 0;
for (const p of patches) {
  const path = join(root, p.file);
  const text = readFileSync(path, 'utf8');
  if (text.includes(p.to)) continue;
  const at = text.indexOf(p.from);
  if (at < 0 || text.indexOf(p.from, at + 1) >= 0) {
    console.error(`patch-ssh2: ${p.file} does not contain the expected text exactly once; ssh2 changed?`);
    process.exit(1);
  }
  writeFileSync(path, text.slice(0, at) + p.to + text.slice(at + p.from.length));
  changed++;
}
if (changed) console.log(`patch-ssh2: applied ${changed} patch(es) to ssh2`);
