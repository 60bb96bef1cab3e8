// `lukko companion` as a process (the built dist/): instances report over the socket with the
// real report client, Prometheus scrapes over HTTP (TCP and AF_UNIX), counters survive a
// restart, and with the companion stopped a reporting instance never waits.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { connectReporter } from '../../src/companion/report-client.ts';
import type { Reporter } from '../../src/companion/report-client.ts';
import { MAIN, NODE, freePort } from '../helpers/fixture.ts';
import type { Launched } from '../helpers/companion.ts';
import { launchCompanion } from '../helpers/companion.ts';

const dir = mkdtempSync(join(tmpdir(), 'lukko-companion-'));
const STATE = join(dir, 'state.json');
const REPORT = join(dir, 'companion.socket');
const METRICS_SOCKET = join(dir, 'metrics.socket');
const procs: ChildProcess[] = [];
after(() => {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
});

async function startCompanion(config: string): Promise<Launched> {
  const c = await launchCompanion({ config, state: STATE, report: REPORT, logLevel: 'debug' });
  procs.push(c.proc);
  return c;
}

function get(target: { port: number } | { socketPath: string }, path: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ ...('port' in target ? { host: '127.0.0.1', port: target.port } : { socketPath: target.socketPath }), path, method }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function sample(body: string, key: string): number {
  const line = body.split('\n').find((l) => l.startsWith(`${key} `));
  assert.ok(line, `no sample ${key}`);
  return Number(line.slice(key.length + 1));
}

async function waitForSample(target: { port: number }, key: string, want: number): Promise<string> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const { body } = await get(target, '/metrics');
    if (sample(body, key) === want || Date.now() > deadline) return body;
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function connected(r: Reporter): Promise<void> {
  const deadline = Date.now() + 2000;
  while (!r.connected && Date.now() < deadline) await new Promise((res) => setTimeout(res, 5));
  assert.ok(r.connected, 'reporter did not connect');
}

test('reports become metrics; counters survive a restart; a stopped companion costs nothing', async () => {
  const port = await freePort();
  const config = join(dir, 'lukko.conf');
  writeFileSync(config, `prometheus_exporter {\n  bind "127.0.0.1:${port}"\n}\nprometheus_exporter {\n  bind "${METRICS_SOCKET}"\n  mode "600"\n}\n`);
  let c = await startCompanion(config);
  const target = { port };

  // Before any report: every sample exists at 0.
  const first = await get(target, '/metrics');
  assert.equal(first.status, 200);
  assert.equal(first.type, 'text/plain; version=0.0.4; charset=utf-8');
  assert.equal(sample(first.body, 'lukko_connections_accepted'), 0);
  assert.match(first.body, /^# TYPE lukko_userauth_failed counter$/m);
  assert.equal((await get(target, '/')).status, 404);
  assert.equal((await get(target, '/metrics', 'POST')).status, 405);
  const head = await get(target, '/metrics', 'HEAD');
  assert.equal(head.status, 200);
  assert.equal(head.body, '');
  const overUnix = await get({ socketPath: METRICS_SOCKET }, '/metrics');
  assert.equal(overUnix.status, 200);

  // Two instances.
  const a = connectReporter(REPORT);
  const b = connectReporter(REPORT);
  await connected(a);
  await connected(b);
  a.event({ t: 'hello', pid: 1 });
  a.event({ t: 'accepted', ip: '192.0.2.1', listener: 'web' });
  a.event({ t: 'auth', method: 'publickey', ok: false });
  a.event({ t: 'auth', method: 'publickey', ok: true });
  a.event({ t: 'spawn', ok: true, seconds: 0.002 });
  a.event({ t: 'bytes', in: 1000, out: 2000, packetsIn: 10, packetsOut: 20 });
  b.event({ t: 'accepted', ip: '192.0.2.2' });
  b.event({ t: 'auth', method: 'unknown', ok: false });
  b.event({ t: 'error', kind: 'translation' });
  b.event({ t: 'future-event' } as never);
  let body = await waitForSample(target, 'lukko_userauth_received', 3);
  body = await waitForSample(target, 'lukko_companion_reports_ignored', 1);
  assert.equal(sample(body, 'lukko_connections_accepted'), 2);
  assert.equal(sample(body, 'lukko_connections_active'), 2);
  assert.equal(sample(body, 'lukko_userauth_received'), 3);
  assert.equal(sample(body, 'lukko_userauth_accepted{method="publickey"}'), 1);
  assert.equal(sample(body, 'lukko_userauth_failed{method="publickey"}'), 1);
  assert.equal(sample(body, 'lukko_userauth_failed{method="unknown"}'), 1);
  assert.equal(sample(body, 'lukko_translation_errors'), 1);
  assert.equal(sample(body, 'lukko_children'), 1);
  assert.equal(sample(body, 'lukko_bytes_received'), 1000);
  assert.equal(sample(body, 'lukko_packets_sent'), 20);

  // One ends cleanly, the other vanishes without `closed`: both stop counting as active.
  b.event({ t: 'closed', reason: 'protocol' });
  await waitForSample(target, 'lukko_connections_closed{reason="protocol"}', 1);
  assert.equal(sample((await get(target, '/metrics')).body, 'lukko_connections_active'), 1);
  a.close();
  body = await waitForSample(target, 'lukko_connections_active', 0);
  assert.equal(sample(body, 'lukko_connections_active'), 0);
  assert.equal(sample(body, 'lukko_children'), 0);

  // SIGTERM saves the counters; a new companion starts from them.
  c.proc.kill('SIGTERM');
  assert.equal(await c.exited, 0);
  const saved = JSON.parse(readFileSync(STATE, 'utf8')) as { counters: Record<string, number> };
  assert.equal(saved.counters.lukko_connections_accepted, 2);

  // Stopped: an instance's events return at once, and nothing waits.
  const lonely = connectReporter(REPORT);
  const t0 = performance.now();
  for (let i = 0; i < 100; i++) lonely.event({ t: 'auth', method: 'password', ok: false });
  await lonely.flush();
  const ms = performance.now() - t0;
  assert.ok(ms < 100, `events with the companion stopped took ${ms} ms`);
  assert.equal(lonely.connected, false);
  lonely.close();
  b.close();

  c = await startCompanion(config);
  body = (await get(target, '/metrics')).body;
  assert.equal(sample(body, 'lukko_connections_accepted'), 2);
  assert.equal(sample(body, 'lukko_userauth_failed{method="unknown"}'), 1);
  assert.equal(sample(body, 'lukko_bytes_sent'), 2000);
  assert.equal(sample(body, 'lukko_connections_active'), 0);
  const again = connectReporter(REPORT);
  await connected(again);
  again.event({ t: 'accepted' });
  body = await waitForSample(target, 'lukko_connections_accepted', 3);
  assert.equal(sample(body, 'lukko_connections_accepted'), 3);
  again.close();

  c.proc.kill('SIGTERM');
  assert.equal(await c.exited, 0, c.out());
});

test('a configuration error exits 78; a socket in use exits 1', async () => {
  const bad = join(dir, 'bad.conf');
  writeFileSync(bad, 'prometheus_exporter {\n}\n');
  const proc = spawn(NODE, [MAIN, 'companion', '--config', bad, '--state', join(dir, 's2.json'), '--report-socket', join(dir, 'r2.socket')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve) => proc.on('exit', resolve));
  assert.equal(code, 78);
  assert.match(err, /PrometheusExporter has no bind address/);

  const good = join(dir, 'empty.conf');
  writeFileSync(good, '');
  const c = await startCompanion(good);
  const second = spawn(NODE, [MAIN, 'companion', '--config', good, '--state', join(dir, 's3.json'), '--report-socket', REPORT], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err2 = '';
  second.stderr.on('data', (d: Buffer) => (err2 += d.toString()));
  assert.equal(await new Promise<number | null>((resolve) => second.on('exit', resolve)), 1);
  assert.match(err2, /another process is listening/);
  c.proc.kill('SIGTERM');
  assert.equal(await c.exited, 0);
});
