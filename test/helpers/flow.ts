// A programmable client for flow-control tests: an ssh2 client whose windows the test can
// break, and a relay in front of lukko whose lukko→client direction the test can stop.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import v8 from 'node:v8';
import vm from 'node:vm';
import ssh2 from 'ssh2';
import type { ClientChannel } from 'ssh2';

export const MB = 1024 * 1024;

/** `p`, or a failure naming `what` after `ms`: a stuck stream fails the test instead of hanging it. */
export function within<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${ms / 1000} s`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

const servers: net.Server[] = [];
const accepted = new Set<net.Socket>();

/** A TCP server on 127.0.0.1 whose connections closeAll() ends. Returns its port. */
export async function listen(onConnection: (s: net.Socket) => void): Promise<number> {
  const srv = net.createServer((s) => {
    // kept so that a failed test cannot leave a connection holding this process open
    accepted.add(s);
    s.once('close', () => accepted.delete(s));
    onConnection(s);
  });
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return (srv.address() as net.AddressInfo).port;
}

/** A TCP relay to `target` whose target→client direction the test can stop and restart. */
export async function relay(target: number): Promise<{ port: number; hold(): void; release(): void }> {
  const ups: net.Socket[] = [];
  let held = false;
  const port = await listen((down) => {
    const up = net.connect({ host: '127.0.0.1', port: target });
    ups.push(up);
    down.pipe(up);
    up.on('data', (d: Buffer) => {
      if (!down.write(d)) up.pause();
    });
    down.on('drain', () => {
      if (!held) up.resume();
    });
    const close = (): void => {
      up.destroy();
      down.destroy();
    };
    up.on('error', close);
    down.on('error', close);
    up.on('end', close);
  });
  return {
    port,
    // stop reading what lukko sends: its socket's send buffer fills, then its own writes queue
    hold: () => {
      held = true;
      for (const u of ups) u.pause();
    },
    release: () => {
      held = false;
      for (const u of ups) u.resume();
    },
  };
}

/** An ssh2 client logged in as `user` with the private key at `keyPath`, through `port`. */
export async function ssh2Client(port: number, keyPath: string, user = 'alice'): Promise<ssh2.Client> {
  const client = new ssh2.Client();
  await new Promise<void>((resolve, reject) => {
    client.once('ready', () => resolve());
    client.once('error', reject);
    client.connect({
      host: '127.0.0.1',
      port,
      username: user,
      privateKey: readFileSync(keyPath),
      // AES-CTR runs in node:crypto; ssh2's native binding (GCM, ChaCha) can crash this test
      // process when it is torn down with a cipher object still alive
      algorithms: { cipher: ['aes128-ctr'], hmac: ['hmac-sha2-256-etm@openssh.com'] },
    });
  });
  client.on('error', () => {});
  return client;
}

/** Grants lukko `bytes` more window on `ch`: SSH flow control no longer holds it back. */
export function grantWindow(client: ssh2.Client, ch: ClientChannel, bytes: number): void {
  const proto = (client as unknown as { _protocol: { channelWindowAdjust(id: number, n: number): void } })._protocol;
  proto.channelWindowAdjust((ch as unknown as { outgoing: { id: number } }).outgoing.id, bytes);
}

/**
 * Sends up to `max` bytes on `ch` ignoring the window lukko granted, until the connection
 * closes (`gone`), then waits up to 5 s for that. The pieces are no multiple of the packet
 * size, so lukko's view of the window never lands on exactly 0, where ssh2 drops the data
 * instead of queueing it. `open`: the connection was still open at the end.
 */
export async function floodBeyondWindow(ch: ClientChannel, gone: Promise<void>, max: number): Promise<{ written: number; open: boolean }> {
  (ch as unknown as { outgoing: { window: number } }).outgoing.window = 2 ** 40;
  const piece = randomBytes(MB - 1);
  let open = true;
  void gone.then(() => (open = false));
  let written = 0;
  for (; written < max && open; written += piece.length) {
    if (!ch.write(piece)) await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.race([gone, new Promise((r) => setTimeout(r, 5000))]);
  return { written, open };
}

// ssh2's native cipher objects abort the process ("Assertion failed: (env) != nullptr") when
// they are still alive at teardown; the ssh2 clients are collected before the end.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** Closes every server and connection made here and collects the ssh2 clients; for after(). */
export async function closeAll(): Promise<void> {
  for (const s of servers) s.close();
  for (const s of accepted) s.destroy();
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setTimeout(r, 50));
    gc();
  }
}
