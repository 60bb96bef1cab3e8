// Forwarding under pressure: a stalled reader on either side holds the writer back instead of
// making the lukko instance buffer (its memory is read from /proc), and the per-connection
// limits (pending global requests, channels, listeners) refuse cleanly while the connection
// goes on.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import type ssh2 from 'ssh2';
import type { ClientChannel } from 'ssh2';
import type { Server, World } from '../helpers/fixture.ts';
import { authorize, cleanup, freePort, keyLine, makeWorld, startServer } from '../helpers/fixture.ts';
import { MB, closeAll, grantWindow, floodBeyondWindow, listen, relay, ssh2Client, within } from '../helpers/flow.ts';
import { instancePid, memoryOf, readRepeated, sshBackground, watchMemory, writeUntilStalled } from '../helpers/forward.ts';

let world: World;
let server: Server;
const background: ChildProcess[] = [];

/** What a writer may push when nothing holds it back: far beyond any sane buffer. */
const FLOOD = 384 * MB;
/** How much the instance's memory may grow while a reader stalls. Without backpressure it grows by about FLOOD. */
const BOUND = 96 * MB;
/** No drain for this long: the other end is holding the writer back. */
const STALL_MS = 2500;

/** A local forward to 127.0.0.1:destPort through its own ssh -L; returns the local port. */
async function localForward(destPort: number): Promise<number> {
  const lport = await freePort();
  const { proc, stderr } = await sshBackground(server, world.keys.ed25519!, 'alice', ['-o', 'ExitOnForwardFailure=yes', '-L', `127.0.0.1:${lport}:127.0.0.1:${destPort}`]);
  background.push(proc);
  for (let i = 0; i < 400; i++) {
    if (proc.exitCode !== null) throw new Error(`ssh -L exited: ${stderr()}`);
    // ssh opens the local port once the session is up; probe without connecting through it
    const up = await new Promise<boolean>((resolve) => {
      const probe = net.createServer();
      probe.once('error', () => resolve(true));
      probe.listen(lport, '127.0.0.1', () => probe.close(() => resolve(false)));
    });
    if (up) return lport;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('ssh -L never listened');
}

function forwardOut(client: ssh2.Client, port: number): Promise<ClientChannel> {
  return new Promise((resolve, reject) => client.forwardOut('127.0.0.1', 0, '127.0.0.1', port, (err, ch) => (err ? reject(err) : resolve(ch))));
}

before(async () => {
  world = makeWorld();
  authorize(world, 'alice', [keyLine(world, 'ed25519')]);
  server = await startServer(world);
});

after(async () => {
  for (const p of background) p.kill();
  await server?.stop();
  if (world) cleanup(world);
  await closeAll();
});

describe('backpressure', () => {
  test('ssh -L to a destination that stops reading: the client is held back, the instance stays small, then all data arrives', async () => {
    const chunk = randomBytes(MB);
    let destination: net.Socket | undefined;
    const destPort = await listen((s) => {
      s.pause(); // accepts and does not read
      destination = s;
    });
    const lport = await localForward(destPort);
    const writer = net.connect({ host: '127.0.0.1', port: lport });
    await new Promise<void>((r) => writer.once('connect', () => r()));
    const pid = await instancePid(server, (e) => e.msg === 'forwarding' && e.forward === `direct-tcpip 127.0.0.1:${destPort}`);
    const before = memoryOf(pid);

    const written = await writeUntilStalled(writer, chunk, FLOOD, STALL_MS);
    const during = memoryOf(pid);
    console.log(`stalled destination: wrote ${written / MB} MB; instance RSS ${before.rss / MB} MB before, high-water ${during.hwm / MB} MB`);
    assert.ok(written < FLOOD, `the writer was never held back (${written / MB} MB went in)`);
    assert.ok(during.hwm - before.rss < BOUND, `instance grew from ${before.rss / MB} MB to ${during.hwm / MB} MB`);

    const got = readRepeated(destination!, chunk);
    writer.end();
    const { bytes, intact } = await got;
    assert.equal(bytes, written);
    assert.ok(intact, 'the data arrived unchanged');
  });

  test('ssh -L whose client stops reading: the source is held back, the instance stays small, then all data arrives', async () => {
    const chunk = randomBytes(MB);
    let sent: Promise<number> | undefined;
    const sourcePort = await listen((s) => {
      sent = writeUntilStalled(s, chunk, FLOOD, STALL_MS).then((n) => {
        s.end();
        return n;
      });
    });
    const lport = await localForward(sourcePort);
    const reader = net.connect({ host: '127.0.0.1', port: lport });
    reader.pause(); // connects and does not read
    const pid = await instancePid(server, (e) => e.msg === 'forwarding' && e.forward === `direct-tcpip 127.0.0.1:${sourcePort}`);
    const before = memoryOf(pid);
    for (let i = 0; i < 400 && !sent; i++) await new Promise((r) => setTimeout(r, 25));
    const written = await sent!;
    const during = memoryOf(pid);
    console.log(`stalled client: source wrote ${written / MB} MB; instance RSS ${before.rss / MB} MB before, high-water ${during.hwm / MB} MB`);
    assert.ok(written < FLOOD, `the source was never held back (${written / MB} MB went out)`);
    assert.ok(during.hwm - before.rss < BOUND, `instance grew from ${before.rss / MB} MB to ${during.hwm / MB} MB`);

    const { bytes, intact } = await readRepeated(reader, chunk);
    assert.equal(bytes, written);
    assert.ok(intact, 'the data arrived unchanged');
  });
});

describe('closing', () => {
  test('a destination that sends and closes at once: what still waits for the client\'s window is delivered before the channel closes', async () => {
    const chunk = randomBytes(MB);
    // An ssh2 client that does not read grants its first 2 MiB window and one more MiB (its
    // 1 MiB top-up comes before its 2 MiB read buffer is full), so it takes 3 MiB. lukko
    // reads the rest and the end of the stream into its channel's queue, which would pause
    // the source at 2 MiB: at most 3.5 - 2 MiB are queued before the top-up arrives, so
    // lukko always reads the whole source, and 0.5 MiB wait in lukko when it closes. (With
    // 4.5 MiB a late top-up let the queue reach 2 MiB; the source then rightly stayed paused
    // until the channel drained, which a client that never reads never lets happen.)
    const size = 3.5 * MB;
    let sourceClosed: Promise<void> | undefined;
    const sourcePort = await listen((s) => {
      sourceClosed = new Promise((r) => s.once('close', () => r()));
      for (let n = 0; n < size; n += MB) s.write(chunk.subarray(0, Math.min(MB, size - n)));
      s.end();
    });
    const client = await ssh2Client(server.port, world.keys.ed25519!);
    try {
      const ch = await forwardOut(client, sourcePort);
      ch.pause(); // no reading: ssh2 grants no more window
      for (let i = 0; i < 400 && !sourceClosed; i++) await new Promise((r) => setTimeout(r, 25));
      // lukko has read everything and its socket to the source is closed
      await within(30_000, sourceClosed ?? Promise.resolve(), 'lukko never finished reading the source');
      await new Promise((r) => setTimeout(r, 300));
      const { bytes, intact } = await within(30_000, readRepeated(ch as unknown as net.Socket, chunk), 'the channel never ended');
      assert.equal(bytes, size);
      assert.ok(intact);
    } finally {
      client.end();
    }
  });
});

describe('a hostile client', () => {
  test('a huge window and no reading from the connection: the instance stops reading the source instead of queueing for the client', async () => {
    const chunk = randomBytes(MB);
    let sent: Promise<number> | undefined;
    let source: net.Socket | undefined;
    const sourcePort = await listen((s) => {
      source = s;
      s.pause(); // starts writing once the client's trap is set
    });
    const r = await relay(server.port);
    const client = await ssh2Client(r.port, world.keys.ed25519!);
    try {
      const ch = await forwardOut(client, sourcePort);
      // grant lukko 1 GiB of window: SSH flow control no longer holds it back
      grantWindow(client, ch, 1024 * MB);
      const pid = await instancePid(server, (e) => e.msg === 'forwarding' && e.forward === `direct-tcpip 127.0.0.1:${sourcePort}`);
      await new Promise((res) => setTimeout(res, 200));
      r.hold();
      const before = memoryOf(pid);
      sent = writeUntilStalled(source!, chunk, FLOOD, STALL_MS);
      const written = await sent;
      const during = memoryOf(pid);
      console.log(`client not reading the connection: source wrote ${written / MB} MB; instance RSS ${before.rss / MB} MB before, high-water ${during.hwm / MB} MB`);
      assert.ok(written < FLOOD, `the source was never held back (${written / MB} MB went out)`);
      assert.ok(during.hwm - before.rss < BOUND, `instance grew from ${before.rss / MB} MB to ${during.hwm / MB} MB`);

      source!.end();
      const got = readRepeated(ch as unknown as net.Socket, chunk);
      r.release();
      const { bytes, intact } = await got;
      assert.equal(bytes, written);
      assert.ok(intact, 'the data arrived unchanged');
    } finally {
      r.release();
      client.end();
    }
  });

  test('data beyond the window: the client is disconnected (as OpenSSH does) instead of lukko queueing what it sends', async () => {
    const destPort = await listen((s) => s.pause());
    const client = await ssh2Client(server.port, world.keys.ed25519!);
    const gone = new Promise<void>((r) => client.once('close', () => r()));
    try {
      const ch = await forwardOut(client, destPort);
      const pid = await instancePid(server, (e) => e.msg === 'forwarding' && e.forward === `direct-tcpip 127.0.0.1:${destPort}`);
      const before = memoryOf(pid);
      const watch = watchMemory(pid); // the instance exits soon after the disconnect
      const { written, open } = await floodBeyondWindow(ch, gone, FLOOD);
      const hwm = watch.stop();
      console.log(`window overrun: client sent ${Math.round(written / MB)} MB; instance RSS ${before.rss / MB} MB before, high-water ${hwm / MB} MB`);
      assert.equal(open, false, 'the client was disconnected');
      assert.ok(hwm - before.rss < BOUND, `instance grew from ${before.rss / MB} MB to ${hwm / MB} MB`);
      assert.ok(server.events().some((e) => e.pid === pid && e.msg === 'disconnecting' && /beyond the window/.test(String(e.reason))));
    } finally {
      client.end();
    }
  });
});

describe('limits', () => {
  function forwardIn(client: ssh2.Client, port = 0): Promise<number> {
    return new Promise((resolve, reject) => client.forwardIn('127.0.0.1', port, (err, p) => (err ? reject(err) : resolve(p))));
  }
  function unforwardIn(client: ssh2.Client, port: number): Promise<void> {
    return new Promise((resolve, reject) => client.unforwardIn('127.0.0.1', port, (err) => (err ? reject(err) : resolve())));
  }
  const refusals = (pid: number, msg: string): Record<string, unknown>[] => server.events().filter((e) => e.pid === pid && e.msg === msg);

  test('more than 16 global requests at once: the rest fail, in order, and the connection goes on', async () => {
    const since = server.events().length;
    const client = await ssh2Client(server.port, world.keys.ed25519!);
    try {
      // corked: all 20 requests leave in one write and arrive in one read, so all of them are
      // pending in the instance at the same time
      const sock = (client as unknown as { _sock: net.Socket })._sock;
      sock.cork();
      const results = Array.from({ length: 20 }, () => forwardIn(client).then((p) => p, () => 'refused' as const));
      process.nextTick(() => sock.uncork());
      const got = await Promise.all(results);
      assert.deepEqual(got.map((r) => (r === 'refused' ? 'refused' : 'ok')), [...Array(16).fill('ok'), ...Array(4).fill('refused')]);
      const pid = await instancePid(server, (e) => e.msg === 'remote forward listening' && e.port === got[0], since);
      assert.equal(refusals(pid, 'global request refused: too many pending').length, 4);
      for (const p of got) if (typeof p === 'number') await unforwardIn(client, p);
      assert.ok((await forwardIn(client)) > 0, 'a later request works');
    } finally {
      client.end();
    }
  });

  test('at most 32 listening forwards: the 33rd fails, a cancel makes room, the connection goes on', async () => {
    const since = server.events().length;
    const client = await ssh2Client(server.port, world.keys.ed25519!);
    try {
      const ports: number[] = [];
      for (let i = 0; i < 32; i++) ports.push(await forwardIn(client));
      await assert.rejects(forwardIn(client));
      const pid = await instancePid(server, (e) => e.msg === 'remote forward listening' && e.port === ports[0], since);
      assert.ok(refusals(pid, 'forwarding refused').some((e) => e.reason === 'too many listening forwards'));
      await unforwardIn(client, ports[0]!);
      assert.ok((await forwardIn(client)) > 0);
    } finally {
      client.end();
    }
  });

  test('at most 256 forwarded channels: the next is refused as a resource shortage, a closed one makes room', async () => {
    const echoPort = await listen((s) => s.pipe(s));
    const since = server.events().length;
    const client = await ssh2Client(server.port, world.keys.ed25519!);
    try {
      const channels: ClientChannel[] = [];
      for (let i = 0; i < 256; i++) channels.push(await forwardOut(client, echoPort));
      const err = await forwardOut(client, echoPort).then(
        () => undefined,
        (e: Error & { reason?: number }) => e,
      );
      assert.equal(err?.reason, 4, 'SSH_OPEN_RESOURCE_SHORTAGE');
      const pid = await instancePid(server, (e) => e.msg === 'forwarding' && e.forward === `direct-tcpip 127.0.0.1:${echoPort}`, since);
      assert.ok(refusals(pid, 'forwarding refused').some((e) => e.reason === 'too many forwarded channels'));
      // the others still work
      const last = channels[255]!;
      const echoed = new Promise<Buffer>((r) => last.once('data', (d: Buffer) => r(d)));
      last.write('still here');
      assert.equal((await echoed).toString(), 'still here');
      channels[0]!.close();
      let again: ClientChannel | undefined;
      for (let i = 0; i < 100 && !again; i++) {
        again = await forwardOut(client, echoPort).catch(() => undefined);
        if (!again) await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(again, 'a closed channel makes room for a new one');
    } finally {
      client.end();
    }
  });

  test('a client that refuses a forwarded connection: the connection to the listener is closed and logged, the session goes on', async () => {
    const since = server.events().length;
    const client = await ssh2Client(server.port, world.keys.ed25519!);
    try {
      client.on('tcp connection', (_info, _accept, reject) => reject());
      const port = await forwardIn(client);
      const closed = await new Promise<boolean>((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port });
        s.on('close', () => resolve(true));
        s.on('error', () => {});
      });
      assert.ok(closed);
      const pid = await instancePid(server, (e) => e.msg === 'remote forward listening' && e.port === port, since);
      for (let i = 0; i < 100 && refusals(pid, 'forwarded connection dropped').length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      assert.match(String(refusals(pid, 'forwarded connection dropped')[0]?.reason), /the client refused the channel/);
      assert.ok((await forwardIn(client)) > 0, 'the connection goes on');
    } finally {
      client.end();
    }
  });
});
