// Sessions under pressure: a program that does not read its input (with or without a
// terminal), a client that does not read the connection while granting a huge window, and a
// client that sends beyond its window. Each must hold the other side back or end the
// connection; the lukko instance's memory (from /proc) stays bounded and it does not spin.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type ssh2 from 'ssh2';
import type { ClientChannel, PseudoTtyOptions } from 'ssh2';
import type { Socket } from 'node:net';
import type { Server, World } from '../helpers/fixture.ts';
import { authorize, cleanup, keyLine, makeWorld, startServer } from '../helpers/fixture.ts';
import { MB, closeAll, grantWindow, floodBeyondWindow, relay, ssh2Client, within } from '../helpers/flow.ts';
import { instancePid, memoryOf, readRepeated, sleep, watchMemory, writeUntilStalled } from '../helpers/forward.ts';

let world: World;
let server: Server;

/** What a client may push when nothing holds it back: far beyond any sane buffer. */
const FLOOD = 384 * MB;
/** How much the instance may grow. Without backpressure it grows by about what was sent. */
const BOUND = 96 * MB;
/** No drain for this long: the other end is holding the writer back. */
const STALL_MS = 2500;

before(async () => {
  world = makeWorld();
  authorize(world, 'alice', [keyLine(world, 'ed25519')]);
  server = await startServer(world);
});

after(async () => {
  await server?.stop();
  if (world) cleanup(world);
  await closeAll();
});

function exec(client: ssh2.Client, command: string, pty?: PseudoTtyOptions): Promise<ClientChannel> {
  return new Promise((resolve, reject) => client.exec(command, pty ? { pty } : {}, (err, ch) => (err ? reject(err) : resolve(ch))));
}

/** CPU seconds the process has used (user + system, from /proc). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in USER_HZ ticks
}

/** Waits until `ch` has printed `marker` (the program is set up and running). */
function printed(ch: ClientChannel, marker: string): Promise<void> {
  let out = '';
  return within(15_000, new Promise<void>((resolve) => {
    const on = (d: Buffer): void => {
      out += d.toString('latin1');
      if (out.includes(marker)) {
        ch.off('data', on);
        ch.resume(); // later output is read and dropped
        resolve();
      }
    };
    ch.on('data', on);
  }), `${marker} never printed`);
}

/** The instance that started the session running `command`, after event index `since`. */
const sessionPid = (command: string, since: number): Promise<number> =>
  instancePid(server, (e) => e.msg === 'session start' && e.command === command, since);

describe('input the program does not read', () => {
  for (const terminal of [true, false]) {
    test(`${terminal ? 'a terminal' : 'a pipe'}: the client is held back, the instance stays small${terminal ? ' and idle' : ''}`, async () => {
      const since = server.events().length;
      // raw and without echo: what is typed just fills the terminal's input buffer
      const command = terminal ? 'stty raw -echo; echo READY; exec sleep 120' : 'echo READY; exec sleep 120';
      const client = await ssh2Client(server.port, world.keys.ed25519!);
      try {
        const ch = await exec(client, command, terminal ? { term: 'xterm', rows: 24, cols: 80, height: 0, width: 0 } : undefined);
        await printed(ch, 'READY');
        const pid = await sessionPid(command, since);
        const before = memoryOf(pid);
        const written = await writeUntilStalled(ch, randomBytes(MB), FLOOD, STALL_MS);
        const during = memoryOf(pid);
        // held back: what does the instance do while it waits for the program?
        const cpu0 = cpuSeconds(pid);
        await sleep(2000);
        const idle = cpuSeconds(pid) - cpu0;
        console.log(`${terminal ? 'pty' : 'pipe'}: client wrote ${written / MB} MB; instance RSS ${before.rss / MB} MB before, high-water ${during.hwm / MB} MB; ${idle} s CPU in 2 s of waiting`);
        assert.ok(written < FLOOD, `the client was never held back (${written / MB} MB went in)`);
        assert.ok(during.hwm - before.rss < BOUND, `instance grew from ${before.rss / MB} MB to ${during.hwm / MB} MB`);
        // a busy retry loop would use about 2 s here
        assert.ok(idle < 0.5, `the waiting instance used ${idle} s of CPU in 2 s`);
      } finally {
        client.end();
      }
    });
  }
});

describe('output the client does not read', () => {
  test('a huge window and no reading from the connection: the program is held back instead of lukko queueing its output', async () => {
    const size = 256 * MB;
    const since = server.events().length;
    const command = `read go; head -c ${size} /dev/zero`;
    const r = await relay(server.port);
    const client = await ssh2Client(r.port, world.keys.ed25519!);
    try {
      const ch = await exec(client, command);
      // grant lukko 1 GiB of window: SSH flow control no longer holds it back
      grantWindow(client, ch, 1024 * MB);
      const pid = await sessionPid(command, since);
      await sleep(200);
      r.hold();
      const before = memoryOf(pid);
      const watch = watchMemory(pid);
      ch.write('go\n');
      // without a hold the whole output is in the instance within a few seconds
      for (let i = 0; i < 60 && !server.events().slice(since).some((e) => e.pid === pid && e.msg === 'session end'); i++) await sleep(100);
      const hwm = watch.stop();
      console.log(`client not reading the connection: instance RSS ${before.rss / MB} MB before, high-water ${hwm / MB} MB`);
      assert.ok(hwm - before.rss < BOUND, `instance grew from ${before.rss / MB} MB to ${hwm / MB} MB`);

      const got = readRepeated(ch as unknown as Socket, Buffer.alloc(MB));
      r.release();
      const { bytes, intact } = await within(60_000, got, 'the output never ended');
      assert.equal(bytes, size);
      assert.ok(intact, 'the output arrived unchanged');
    } finally {
      r.release();
      client.end();
    }
  });
});

describe('a hostile client', () => {
  test('data beyond the window into a session: the client is disconnected instead of lukko queueing it', async () => {
    const since = server.events().length;
    const command = 'echo READY; exec sleep 120';
    const client = await ssh2Client(server.port, world.keys.ed25519!);
    const gone = new Promise<void>((r) => client.once('close', () => r()));
    try {
      const ch = await exec(client, command);
      await printed(ch, 'READY');
      const pid = await sessionPid(command, since);
      const before = memoryOf(pid);
      const watch = watchMemory(pid); // the instance exits soon after the disconnect
      const { written, open } = await floodBeyondWindow(ch, gone, FLOOD);
      const hwm = watch.stop();
      console.log(`session window overrun: client sent ${Math.round(written / MB)} MB; instance RSS ${before.rss / MB} MB before, high-water ${hwm / MB} MB`);
      assert.equal(open, false, 'the client was disconnected');
      assert.ok(hwm - before.rss < BOUND, `instance grew from ${before.rss / MB} MB to ${hwm / MB} MB`);
      assert.ok(server.events().some((e) => e.pid === pid && e.msg === 'disconnecting' && /beyond the window/.test(String(e.reason))));
    } finally {
      client.end();
    }
  });
});

describe('limits', () => {
  test('at most 64 sessions per connection: the 65th open fails with resource shortage, a closed one makes room', async () => {
    const since = server.events().length;
    const client = await ssh2Client(server.port, world.keys.ed25519!);
    try {
      const open: ClientChannel[] = [];
      for (let i = 0; i < 64; i++) open.push((await exec(client, 'exec sleep 60')).resume()); // read: ssh2 emits 'close' after 'end'
      await assert.rejects(exec(client, 'true'), /Too many sessions/);
      const pid = await instancePid(server, (e) => e.msg === 'session refused: too many sessions', since);
      assert.ok(pid > 0);
      // one ends: its process goes and its place is free again
      const closed = new Promise<void>((r) => open[0]!.once('close', () => r()));
      open[0]!.close();
      await within(15_000, closed, 'the session never closed');
      let done: ClientChannel | undefined;
      for (let i = 0; i < 100 && !done; i++) done = await exec(client, 'echo again').catch(async () => (await sleep(100), undefined));
      assert.ok(done, 'a session opens once one has closed');
      let out = '';
      done.on('data', (d: Buffer) => (out += d.toString()));
      await within(15_000, new Promise((r) => done!.once('close', r)), 'the new session never ended');
      assert.equal(out, 'again\n');
    } finally {
      client.end();
    }
  });
});
