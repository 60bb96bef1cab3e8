// The companion's metrics: the original's names, types and labels (spec §4.3), the text
// format, the aggregation of report events, and counters that survive restarts.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { applyEvent, newInstanceState, updateGauges } from '../../src/companion/aggregate.ts';
import { CounterStore, formatCounterState, parseCounterState } from '../../src/companion/counter-store.ts';
import { METRICS, MetricError, MetricsRegistry, PROMETHEUS_CONTENT_TYPE, renderPrometheusText, sampleKey } from '../../src/companion/metrics.ts';
import type { ReportEvent } from '../../src/companion/report-protocol.ts';
import { createLogger } from '../../src/log/logger.ts';

const silent = createLogger({ fd: -1, mode: 'none' });

// spec/config-control-metrics.md §4.3, in order.
const SPEC: [string, 'counter' | 'gauge', string[]][] = [
  ['event_loop_iterations', 'counter', ['process="lukko"']],
  ['event_loop_idle_duration', 'counter', ['process="lukko"']],
  ['event_loop_busy_duration', 'counter', ['process="lukko"']],
  ['lukko_spawn_pending', 'gauge', []],
  ['lukko_children_spawned', 'counter', []],
  ['lukko_total_spawn_duration', 'counter', []],
  ['lukko_spawn_errors', 'counter', []],
  ['lukko_children_killed', 'counter', []],
  ['lukko_children_exited', 'counter', []],
  ['lukko_children', 'gauge', []],
  ['lukko_connections_accepted', 'counter', []],
  ['lukko_connections_rejected', 'counter', []],
  ['lukko_connections_closed', 'counter', ['reason="terminated"', 'reason="unsupported_service"', 'reason="protocol"']],
  ['lukko_userauth_received', 'counter', []],
  ['lukko_userauth_accepted', 'counter', ['method="password"', 'method="publickey"', 'method="hostbased"']],
  ['lukko_userauth_failed', 'counter', ['method="password"', 'method="publickey"', 'method="hostbased"', 'method="unsupported"', 'method="unknown"']],
  ['lukko_translation_errors', 'counter', []],
  ['lukko_tarpit', 'counter', []],
  ['lukko_bytes_received', 'counter', []],
  ['lukko_bytes_sent', 'counter', []],
  ['lukko_packets_received', 'counter', []],
  ['lukko_packets_sent', 'counter', []],
  ['lukko_connections_active', 'gauge', []],
];

test('the registry holds every metric of the original with its type and labels', () => {
  const families = new MetricsRegistry().families();
  for (const [name, type, labels] of SPEC) {
    const f = families.find((x) => x.name === name);
    assert.ok(f, name);
    assert.equal(f.type, type, name);
    const keys = f.samples.map((s) => sampleKey(name, s.labels));
    assert.deepEqual(keys, labels.length ? labels.map((l) => `${name}{${l}}`) : [name]);
    assert.ok(f.help.length > 10);
  }
  // Only our own additions beyond the spec, and they are named as ours.
  for (const d of METRICS) if (!SPEC.some(([n]) => n === d.name)) assert.match(d.name, /^lukko_companion_/);
});

test('renderPrometheusText writes HELP, TYPE and samples, escaping as the format says', () => {
  const text = renderPrometheusText([
    { name: 'a', type: 'counter', help: 'one\\two\nthree', samples: [{ labels: { x: 'q"\\\n' }, value: 3 }] },
    { name: 'b', type: 'gauge', help: 'h', samples: [{ labels: {}, value: 0.5 }, { labels: { z: '1', y: '2' }, value: Infinity }] },
  ]);
  assert.equal(text, '# HELP a one\\\\two\\nthree\n# TYPE a counter\na{x="q\\"\\\\\\n"} 3\n# HELP b h\n# TYPE b gauge\nb 0.5\nb{y="2",z="1"} +Inf\n');
  assert.equal(PROMETHEUS_CONTENT_TYPE, 'text/plain; version=0.0.4; charset=utf-8');
});

test('counters only grow; unknown samples and wrong types are refused', () => {
  const m = new MetricsRegistry();
  m.inc('lukko_userauth_failed', { method: 'unknown' }, 2);
  assert.equal(m.get('lukko_userauth_failed', { method: 'unknown' }), 2);
  assert.throws(() => m.inc('lukko_userauth_failed', { method: 'none' }), MetricError);
  assert.throws(() => m.inc('lukko_connections_accepted', undefined, -1), MetricError);
  assert.throws(() => m.inc('lukko_connections_accepted', undefined, NaN), MetricError);
  assert.throws(() => m.inc('lukko_children'), MetricError);
  assert.throws(() => m.setGauge('lukko_tarpit', 1), MetricError);
  assert.match(m.render(), /^lukko_userauth_failed\{method="unknown"\} 2$/m);
});

test('restoreCounters keeps the larger value and reports what it does not know', () => {
  const m = new MetricsRegistry();
  m.inc('lukko_tarpit', undefined, 5);
  const unknown = m.restoreCounters({ lukko_tarpit: 3, lukko_connections_accepted: 7, lukko_children: 4, gone_metric: 1, 'lukko_userauth_accepted{method="password"}': 9 });
  assert.deepEqual(unknown.sort(), ['gone_metric', 'lukko_children']);
  assert.equal(m.get('lukko_tarpit'), 5);
  assert.equal(m.get('lukko_connections_accepted'), 7);
  assert.equal(m.get('lukko_userauth_accepted', { method: 'password' }), 9);
  assert.equal(m.get('lukko_children'), 0);
});

test('report events become the original metrics', () => {
  const m = new MetricsRegistry();
  const a = newInstanceState();
  const b = newInstanceState();
  const events: [typeof a, ReportEvent][] = [
    [a, { t: 'accepted', ip: '192.0.2.1', listener: 'x' }],
    [b, { t: 'accepted' }],
    [a, { t: 'auth', method: 'none', ok: false }],
    [a, { t: 'auth', method: 'publickey', ok: false }],
    [a, { t: 'auth', method: 'publickey', ok: true }],
    [b, { t: 'auth', method: 'unknown', ok: false }],
    [b, { t: 'auth', method: 'unsupported', ok: false }],
    [a, { t: 'spawn', ok: true, seconds: 0.25 }],
    [a, { t: 'spawn', ok: false, seconds: 0.5 }],
    [a, { t: 'spawn', ok: true }],
    [a, { t: 'exit' }],
    [a, { t: 'kill' }],
    [a, { t: 'bytes', in: 100, out: 200, packetsIn: 3, packetsOut: 4 }],
    [a, { t: 'bytes', in: 1, out: 2 }],
    [b, { t: 'error', kind: 'translation' }],
    [b, { t: 'tarpit' }],
    [b, { t: 'rejected' }],
    [b, { t: 'loop', idle: 1.5, busy: 0.25, iterations: 10 }],
    [b, { t: 'closed', reason: 'protocol' }],
  ];
  for (const [s, e] of events) applyEvent(m, s, e);
  assert.deepEqual(updateGauges(m, [a, b]), { active: 1, children: 1 });
  const want: [string, Record<string, string> | undefined, number][] = [
    ['lukko_connections_accepted', undefined, 2],
    ['lukko_userauth_received', undefined, 5],
    ['lukko_userauth_accepted', { method: 'publickey' }, 1],
    ['lukko_userauth_failed', { method: 'publickey' }, 1],
    ['lukko_userauth_failed', { method: 'unknown' }, 1],
    ['lukko_userauth_failed', { method: 'unsupported' }, 1],
    ['lukko_children_spawned', undefined, 3],
    ['lukko_spawn_errors', undefined, 1],
    ['lukko_total_spawn_duration', undefined, 0.75],
    ['lukko_children_exited', undefined, 1],
    ['lukko_children_killed', undefined, 1],
    ['lukko_children', undefined, 1],
    ['lukko_bytes_received', undefined, 101],
    ['lukko_bytes_sent', undefined, 202],
    ['lukko_packets_received', undefined, 3],
    ['lukko_packets_sent', undefined, 4],
    ['lukko_translation_errors', undefined, 1],
    ['lukko_tarpit', undefined, 1],
    ['lukko_connections_rejected', undefined, 1],
    ['lukko_connections_closed', { reason: 'protocol' }, 1],
    ['lukko_connections_active', undefined, 1],
    ['event_loop_idle_duration', { process: 'lukko' }, 1.5],
    ['event_loop_busy_duration', { process: 'lukko' }, 0.25],
    ['event_loop_iterations', { process: 'lukko' }, 10],
  ];
  for (const [name, labels, value] of want) assert.equal(m.get(name, labels), value, sampleKey(name, labels));
  // An instance whose stream ended no longer counts, with or without `closed`.
  assert.deepEqual(updateGauges(m, [b]), { active: 0, children: 0 });
});

test('state file: parse, refuse and round-trip', () => {
  const text = formatCounterState({ lukko_tarpit: 3, 'lukko_userauth_failed{method="unknown"}': 2 });
  assert.deepEqual(parseCounterState(text), { ok: true, counters: { lukko_tarpit: 3, 'lukko_userauth_failed{method="unknown"}': 2 } });
  for (const bad of ['', '[]', '{"format":"x","version":1,"counters":{}}', '{"format":"lukko-companion-state","version":2,"counters":{}}', '{"format":"lukko-companion-state","version":1,"counters":{"a":-1}}', '{"format":"lukko-companion-state","version":1,"counters":{"a":"1"}}']) {
    assert.equal(parseCounterState(bad).ok, false, bad);
  }
});

test('CounterStore saves atomically, loads, and counters never go backwards', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lukko-companion-state-'));
  const path = join(dir, 'state.json');
  const m1 = new MetricsRegistry();
  const s1 = new CounterStore({ path, registry: m1, log: silent });
  s1.load(); // no file: from 0
  m1.inc('lukko_connections_accepted', undefined, 41);
  m1.inc('lukko_total_spawn_duration', undefined, 0.125);
  assert.equal(s1.save(), true);
  assert.deepEqual(readdirSync(dir), ['state.json']); // no temporary file left
  m1.inc('lukko_connections_accepted');
  assert.equal(s1.stop(), true);

  const m2 = new MetricsRegistry();
  new CounterStore({ path, registry: m2, log: silent }).load();
  assert.equal(m2.get('lukko_connections_accepted'), 42);
  assert.equal(m2.get('lukko_total_spawn_duration'), 0.125);

  // A corrupt file is moved aside and counting starts again.
  writeFileSync(path, '{"format":');
  const m3 = new MetricsRegistry();
  new CounterStore({ path, registry: m3, log: silent }).load();
  assert.equal(m3.get('lukko_connections_accepted'), 0);
  assert.ok(existsSync(`${path}.corrupt`));
  assert.equal(readFileSync(`${path}.corrupt`, 'utf8'), '{"format":');
});

test('promtool check metrics accepts the output (when promtool is installed)', (t) => {
  const which = spawnSync('sh', ['-c', 'command -v promtool']);
  if (which.status !== 0) return t.skip('promtool not installed');
  const m = new MetricsRegistry();
  m.inc('lukko_total_spawn_duration', undefined, 0.0123);
  const r = spawnSync('promtool', ['check', 'metrics'], { input: m.render(), encoding: 'utf8' });
  // The names are the original's, without "_total": the only lint promtool may raise.
  const problems = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.trim() && !/counter metrics should have "_total" suffix/.test(l));
  assert.deepEqual(problems, []);
  assert.ok(r.status === 0 || r.status === 3, `promtool exit ${r.status}`);
});
