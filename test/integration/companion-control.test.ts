// Control datagrams end to end: `lukko companion` (the built dist/, with its C helper) binds
// control blocks on an AF_UNIX path, an abstract name and UDP; the spec's vectors are sent as
// real datagrams (python3 for AF_UNIX, which Node cannot send; node:dgram for UDP), and what a
// real report client standing in for a lukko instance receives shows the effect. Refused
// senders (UDP without allow_from, a non-root uid through setpriv) change nothing and are
// counted on /metrics.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { connectReporter } from '../../src/companion/report-client.ts';
import type { Reporter } from '../../src/companion/report-client.ts';
import type { ReportCommand } from '../../src/companion/report-protocol.ts';
import { MAIN, NODE, freePort } from '../helpers/fixture.ts';
import type { Launched } from '../helpers/companion.ts';
import { launchCompanion, sendUnix, sendUnixAsNobody } from '../helpers/companion.ts';

const dir = mkdtempSync(join(tmpdir(), 'lukko-control-'));
const REPORT = join(dir, 'companion.socket');
const CONTROL = join(dir, 'control.socket');
const ABSTRACT = `@lukko-control-test-${process.pid}`;
const procs: ChildProcess[] = [];
after(() => {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
});

const vectors = (JSON.parse(readFileSync(new URL('../../../shared/testdata/protocol-vectors.json', import.meta.url), 'utf8')) as { control: Record<string, { hex: string }> }).control;
const V = (name: string): string => vectors[name]!.hex;
/** VERBOSE with another level than V2's 3, so each accepted one is told apart. */
const verbose = (level: number): string => `6304610100010007${level.toString(16).padStart(2, '0')}000000`;
const terminate = (tag: string): string => {
  const p = Buffer.from(tag);
  const padded = Buffer.concat([p, Buffer.alloc((4 - (p.length % 4)) % 4)]);
  return `63046101${p.length.toString(16).padStart(4, '0')}0010${padded.toString('hex')}`;
};

function sendUdp(port: number, hex: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.send(Buffer.from(hex, 'hex'), port, '127.0.0.1', (err) => {
      s.close();
      if (err) reject(err);
      else resolve();
    });
  });
}

async function metrics(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}
function sample(body: string, key: string): number {
  const line = body.split('\n').find((l) => l.startsWith(`${key} `));
  assert.ok(line, `no sample ${key}`);
  return Number(line.slice(key.length + 1));
}

/** A stand-in lukko instance: the real report client, remembering the commands it got. */
class Instance {
  readonly reporter: Reporter;
  readonly commands: ReportCommand[] = [];
  private waiters: (() => void)[] = [];

  constructor() {
    this.reporter = connectReporter(REPORT);
    this.reporter.onCommand((c) => {
      this.commands.push(c);
      for (const w of this.waiters.splice(0)) w();
    });
  }

  async connected(): Promise<void> {
    const deadline = Date.now() + 3000;
    while (!this.reporter.connected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.ok(this.reporter.connected, 'reporter did not connect');
  }

  /** The next command (after `seen` of them), or a failure after 5 s. */
  async next(seen: number): Promise<ReportCommand> {
    const deadline = Date.now() + 5000;
    while (this.commands.length <= seen) {
      if (Date.now() > deadline) assert.fail(`no command after ${seen}: ${JSON.stringify(this.commands)}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 100);
      });
    }
    return this.commands[seen]!;
  }
}

async function startCompanion(config: string): Promise<Launched> {
  const c = await launchCompanion({ config, state: join(dir, 'state.json'), report: REPORT });
  procs.push(c.proc);
  return c;
}

test('control datagrams over AF_UNIX and UDP reach the instances; untrusted senders are refused and counted', async () => {
  const [metricsPort, udpClosed, udpOpen] = [await freePort(), await freePort(), await freePort()];
  const config = join(dir, 'lukko.conf');
  writeFileSync(
    config,
    `control {\n  bind "${CONTROL}"\n}\ncontrol {\n  bind "${ABSTRACT}"\n}\ncontrol {\n  bind "127.0.0.1:${udpClosed}"\n}\n` +
      `control {\n  bind "127.0.0.1:${udpOpen}"\n  allow_from "127.0.0.0/8"\n}\nprometheus_exporter {\n  bind "127.0.0.1:${metricsPort}"\n}\n`,
  );
  const c = await startCompanion(config);
  assert.ok(existsSync(CONTROL), 'the AF_UNIX control socket exists');
  const a = new Instance();
  await a.connected();
  let seen = 0;

  // V2 from root over the path: the instance is told the new level.
  await sendUnix(CONTROL, V('V2'));
  assert.deepEqual(await a.next(seen++), { c: 'verbose', level: 3 });
  // V5 over the abstract socket: TERMINATE_CHILDREN site-42.
  await sendUnix(ABSTRACT, V('V5'));
  assert.deepEqual(await a.next(seen++), { c: 'terminate-children', tag: 'site-42' });
  // V6: DISABLE_ZEROCONF (no listener publishes: nothing to withdraw), then TERMINATE abcd.
  await sendUnix(CONTROL, V('V6'));
  assert.deepEqual(await a.next(seen++), { c: 'terminate-children', tag: 'abcd' });
  // V1, V3, V4, V7 change nothing the instance hears; V8 and the malformed ones are counted.
  for (const name of ['V1', 'V3', 'V4', 'V7', 'V8', 'M1', 'M2', 'M3', 'M4', 'M5']) await sendUnix(CONTROL, V(name));
  await sendUnix(CONTROL, ''); // an empty datagram: wrong magic
  await sendUnix(CONTROL, terminate('marker-1'));
  assert.deepEqual(await a.next(seen++), { c: 'terminate-children', tag: 'marker-1' });
  let body = await metrics(metricsPort);
  assert.equal(sample(body, 'lukko_companion_control_rejected{reason="malformed"}'), 6);
  assert.equal(sample(body, 'lukko_companion_control_rejected{reason="invalid"}'), 1);
  assert.equal(sample(body, 'lukko_companion_control_rejected{reason="untrusted"}'), 0);

  // UDP without allow_from: VERBOSE (V2) and TERMINATE_CHILDREN (V5) are refused.
  await sendUdp(udpClosed, verbose(9));
  await sendUdp(udpClosed, V('V5'));
  // A non-root uid over AF_UNIX (the abstract socket has no file permissions to stop it).
  await sendUnixAsNobody(ABSTRACT, verbose(8));
  await sendUnixAsNobody(ABSTRACT, terminate('nobody-was-here'));
  const deadline = Date.now() + 5000;
  while (sample((body = await metrics(metricsPort)), 'lukko_companion_control_rejected{reason="untrusted"}') < 4 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(sample(body, 'lukko_companion_control_rejected{reason="untrusted"}'), 4);
  assert.match(c.out(), /"from":"uid 65534 pid \d+".*"msg":"control commands refused"/);
  assert.match(c.out(), /"from":"127\.0\.0\.1:\d+".*UDP senders need allow_from/);
  // None of them reached the instance: the next command it hears is the next accepted one.
  await sendUdp(udpOpen, verbose(5));
  assert.deepEqual(await a.next(seen++), { c: 'verbose', level: 5 });
  await sendUdp(udpOpen, V('V5'));
  assert.deepEqual(await a.next(seen++), { c: 'terminate-children', tag: 'site-42' });
  assert.equal(a.commands.length, seen);

  // An instance that connects later is told the level at once.
  const b = new Instance();
  await b.connected();
  assert.deepEqual(await b.next(0), { c: 'verbose', level: 5 });
  await sendUnix(CONTROL, verbose(1));
  assert.deepEqual(await a.next(seen++), { c: 'verbose', level: 1 });
  assert.deepEqual(await b.next(1), { c: 'verbose', level: 1 });

  body = await metrics(metricsPort);
  assert.equal(sample(body, 'lukko_companion_control_received'), 22);
  a.reporter.close();
  b.reporter.close();
  c.proc.kill('SIGTERM');
  assert.equal(await c.exited, 0, c.out());
  // The helper removed its socket file on the way out.
  assert.equal(existsSync(CONTROL), false);
});

test('a control socket that cannot be bound stops the start (exit 1, the helper says why)', async () => {
  const port = await freePort();
  const blocker = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => blocker.bind(port, '127.0.0.1', resolve));
  const config = join(dir, 'busy.conf');
  writeFileSync(config, `control {\n  bind "127.0.0.1:${port}"\n}\n`);
  const proc = spawn(NODE, [MAIN, 'companion', '--config', config, '--state', join(dir, 's2.json'), '--report-socket', join(dir, 'r2.socket')], { stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(proc);
  let err = '';
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
  assert.equal(await new Promise<number | null>((resolve) => proc.on('exit', resolve)), 1);
  assert.match(err, /cannot bind UDP 127\.0\.0\.1: Address already in use/);
  blocker.close();
});
