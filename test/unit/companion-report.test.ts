// The report stream between instances and the companion: the pure parser, the line splitter,
// and the client against a real AF_UNIX socket (fail open, bounded, commands back).
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { connectReporter } from '../../src/companion/report-client.ts';
import type { ReportCommand } from '../../src/companion/report-protocol.ts';
import { LineSplitter, MAX_REPORT_LINE, encodeLine, parseReportCommand, parseReportEvent } from '../../src/companion/report-protocol.ts';

const dir = mkdtempSync(join(tmpdir(), 'lukko-report-'));
let n = 0;
const sockPath = (): string => join(dir, `s${n++}`);

test('parseReportEvent accepts the documented events', () => {
  const ok: [string, unknown][] = [
    ['{"t":"hello","pid":42}', { t: 'hello', pid: 42 }],
    ['{"t":"accepted","ip":"192.0.2.7","listener":"web"}', { t: 'accepted', ip: '192.0.2.7', listener: 'web' }],
    ['{"t":"accepted"}', { t: 'accepted' }],
    ['{"t":"resume","ip":"::1","children":2}', { t: 'resume', ip: '::1', children: 2 }],
    ['{"t":"rejected"}', { t: 'rejected' }],
    ['{"t":"tarpit"}', { t: 'tarpit' }],
    ['{"t":"auth","method":"publickey","ok":false}', { t: 'auth', method: 'publickey', ok: false }],
    ['{"t":"auth","method":"password","ok":true,"extra":1}', { t: 'auth', method: 'password', ok: true }],
    ['{"t":"error","kind":"translation"}', { t: 'error', kind: 'translation' }],
    ['{"t":"bytes","in":1,"out":2,"packetsIn":3,"packetsOut":4}', { t: 'bytes', in: 1, out: 2, packetsIn: 3, packetsOut: 4 }],
    ['{"t":"spawn","ok":true,"seconds":0.01}', { t: 'spawn', ok: true, seconds: 0.01 }],
    ['{"t":"kill"}', { t: 'kill' }],
    ['{"t":"exit"}', { t: 'exit' }],
    ['{"t":"loop","idle":1,"busy":0.5,"iterations":7}', { t: 'loop', idle: 1, busy: 0.5, iterations: 7 }],
    ['{"t":"closed","reason":"terminated"}', { t: 'closed', reason: 'terminated' }],
    ['{"t":"closed","reason":"eof"}', { t: 'closed' }],
    ['{"t":"closed"}', { t: 'closed' }],
  ];
  for (const [line, want] of ok) assert.deepEqual(parseReportEvent(line), { ok: true, value: want }, line);
});

test('parseReportEvent refuses malformed lines and ignores unknown types', () => {
  for (const line of ['', 'x', '[]', 'null', '1', '{"t":"auth","method":"kerberos","ok":false}', '{"t":"auth","method":"unknown","ok":true}',
    '{"t":"auth","method":"password"}', '{"t":"bytes","in":-1,"out":0}', '{"t":"bytes","in":1.5,"out":0}', '{"t":"bytes","in":1e300,"out":0}',
    '{"t":"spawn","ok":"yes"}', '{"t":"spawn","ok":true,"seconds":-1}', '{"t":"accepted","ip":5}', `{"t":"accepted","ip":"${'a'.repeat(300)}"}`,
    '{"t":"closed","reason":5}', '{"t":"loop","idle":"1","busy":0}', `{"t":"tarpit","x":"${'a'.repeat(MAX_REPORT_LINE)}"}`]) {
    const r = parseReportEvent(line);
    assert.equal(r.ok, false, line);
    assert.ok(!r.ok && !r.ignored, line);
  }
  for (const line of ['{"t":"future-thing"}', '{}', '{"t":"error","kind":"disk"}']) {
    const r = parseReportEvent(line);
    assert.ok(!r.ok && r.ignored === true, line);
  }
});

test('parseReportCommand and encodeLine', () => {
  assert.deepEqual(parseReportCommand('{"c":"verbose","level":3}'), { ok: true, value: { c: 'verbose', level: 3 } });
  assert.deepEqual(parseReportCommand('{"c":"terminate-children","tag":"site-42"}'), { ok: true, value: { c: 'terminate-children', tag: 'site-42' } });
  for (const bad of ['{"c":"verbose","level":256}', '{"c":"verbose"}', '{"c":"terminate-children","tag":""}', 'nope']) assert.equal(parseReportCommand(bad).ok, false, bad);
  const r = parseReportCommand('{"c":"later"}');
  assert.ok(!r.ok && r.ignored);
  assert.equal(encodeLine({ t: 'closed' }), '{"t":"closed"}\n');
  assert.equal(encodeLine({ c: 'terminate-children', tag: 'x'.repeat(MAX_REPORT_LINE) }), undefined);
});

test('LineSplitter joins pieces, drops overlong lines whole, keeps memory bounded', () => {
  const s = new LineSplitter(10);
  assert.deepEqual(s.push(Buffer.from('ab')), { lines: [], overlong: 0 });
  assert.deepEqual(s.push(Buffer.from('c\nde\n\nf')), { lines: ['abc', 'de', ''], overlong: 0 });
  assert.deepEqual(s.push(Buffer.from('0123456789')), { lines: [], overlong: 1 });
  assert.deepEqual(s.push(Buffer.from('more more more')), { lines: [], overlong: 0 });
  assert.deepEqual(s.push(Buffer.from('tail\nok\n')), { lines: ['ok'], overlong: 0 });
  assert.deepEqual(s.push(Buffer.from('0123456789\n')), { lines: ['0123456789'], overlong: 0 });
  assert.deepEqual(s.push(Buffer.from('é\n')), { lines: ['é'], overlong: 0 });
});

/** A stand-in companion: collects lines, can send commands. */
function fakeCompanion(path: string): Promise<{ server: net.Server; lines: string[]; sockets: net.Socket[]; waitLines(k: number): Promise<void> }> {
  const lines: string[] = [];
  const sockets: net.Socket[] = [];
  const waiters: (() => void)[] = [];
  const server = net.createServer((s) => {
    sockets.push(s);
    const split = new LineSplitter();
    s.on('data', (d: Buffer) => {
      lines.push(...split.push(d).lines);
      for (const w of waiters.splice(0)) w();
    });
    s.on('error', () => {});
  });
  const waitLines = async (k: number): Promise<void> => {
    const deadline = Date.now() + 5000;
    while (lines.length < k) {
      if (Date.now() > deadline) throw new Error(`waited for ${k} lines, have ${JSON.stringify(lines)}`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 50);
      });
    }
  };
  return new Promise((resolve) => server.listen(path, () => resolve({ server, lines, sockets, waitLines })));
}

test('the client delivers events given before and after connecting, and receives commands', async () => {
  const path = sockPath();
  const c = await fakeCompanion(path);
  const r = connectReporter(path);
  r.event({ t: 'hello', pid: 1 }); // before the connection is made: kept
  const got: ReportCommand[] = [];
  r.onCommand((cmd) => got.push(cmd));
  r.onCommand(() => {
    throw new Error('a failing handler must not stop others or the client');
  });
  await c.waitLines(1);
  assert.ok(r.connected);
  r.event({ t: 'accepted', ip: '192.0.2.1' });
  r.event({ t: 'bytes', in: 1n as unknown as number, out: 2 }); // not serialisable: dropped, no throw
  await r.flush();
  await c.waitLines(2);
  assert.deepEqual(c.lines, ['{"t":"hello","pid":1}', '{"t":"accepted","ip":"192.0.2.1"}']);
  assert.equal(r.dropped, 1);
  c.sockets[0]!.write('{"c":"verbose","level":2}\n{"c":"unknown"}\ngarbage\n{"c":"terminate-children","tag":"t1"}\n');
  const deadline = Date.now() + 5000;
  while (got.length < 2 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 10));
  assert.deepEqual(got, [{ c: 'verbose', level: 2 }, { c: 'terminate-children', tag: 't1' }]);
  r.close();
  r.event({ t: 'closed' });
  c.server.close();
});

test('without a companion, event() returns at once and drops', async () => {
  const r = connectReporter(join(dir, 'nobody-listens'), undefined, { reconnect: false });
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < 1000; i++) r.event({ t: 'auth', method: 'publickey', ok: false });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  assert.ok(ms < 50, `1000 events took ${ms} ms`);
  await new Promise((res) => setTimeout(res, 20));
  assert.equal(r.connected, false);
  r.event({ t: 'closed' });
  assert.ok(r.dropped >= 1000);
  await r.flush(); // resolves at once, never hangs
  r.close();
});

test('a companion that went away: events are dropped, nothing waits', async () => {
  const path = sockPath();
  const c = await fakeCompanion(path);
  c.server.close(); // the path is gone: ENOENT at once
  const r = connectReporter(path, undefined, { reconnect: false });
  r.event({ t: 'accepted' });
  await new Promise((res) => setTimeout(res, 80));
  assert.equal(r.connected, false);
  assert.equal(r.dropped, 1);
  r.close();
});

test('after the companion restarts the client reconnects and resumes', async () => {
  const path = sockPath();
  let c = await fakeCompanion(path);
  const r = connectReporter(path);
  r.event({ t: 'accepted', ip: '192.0.2.9', listener: 'a' });
  r.event({ t: 'spawn', ok: true });
  await c.waitLines(2);
  for (const s of c.sockets) s.destroy();
  await new Promise<void>((res) => c.server.close(() => res()));
  await new Promise((res) => setTimeout(res, 30));
  assert.equal(r.connected, false);
  r.event({ t: 'tarpit' }); // companion away: dropped
  c = await fakeCompanion(path);
  await c.waitLines(1); // reconnect after ~1 s
  assert.deepEqual(c.lines, ['{"t":"resume","ip":"192.0.2.9","listener":"a","children":1}']);
  r.event({ t: 'closed' });
  await c.waitLines(2);
  r.close();
  c.server.close();
});
