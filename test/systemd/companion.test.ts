// lukko-companion.service under a real systemd (257): the unit verifies cleanly, starts as
// Type=notify inside its sandbox with the watchdog on, serves the metrics of what an
// instance reports over /run/lukko/companion.socket, and keeps its counters across a restart
// in /var/lib/lukko (StateDirectory=) while the socket's directory survives (Preserve=yes).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CONFIG_PATH, Harness, LUKKO_DIR, ROOT, UNIT_DIR, waitFor } from '../helpers/harness.ts';

const h = new Harness({ name: 'lukko-companion-test' });
const UNIT = 'lukko-companion.service';
const NODE = `${LUKKO_DIR}/node/bin/node`;

// Inside the container: report events (argv[1], JSON list) like an instance does.
const REPORT = String.raw`
import { connectReporter } from '${LUKKO_DIR}/dist/companion/report-client.js';
const r = connectReporter('/run/lukko/companion.socket');
for (let i = 0; i < 100 && !r.connected; i++) await new Promise((res) => setTimeout(res, 10));
if (!r.connected) { console.error('not connected'); process.exit(1); }
for (const e of JSON.parse(process.argv[1])) r.event(e);
await r.flush(500);
r.close();
`;
const SCRAPE = `const r = await fetch('http://127.0.0.1:9100/metrics'); process.stdout.write(await r.text());`;

async function scrape(): Promise<string> {
  return (await h.exec([NODE, '--input-type=module', '-e', SCRAPE])).stdout;
}
function sample(body: string, key: string): number | undefined {
  const line = body.split('\n').find((l) => l.startsWith(`${key} `));
  return line === undefined ? undefined : Number(line.slice(key.length + 1));
}

before(async () => {
  await h.boot();
  await h.writeFile(`${UNIT_DIR}/${UNIT}`, readFileSync(join(ROOT, 'units', UNIT), 'utf8'));
  await h.writeFile(CONFIG_PATH, 'prometheus_exporter {\n  bind "127.0.0.1:9100"\n}\n');
  await h.systemctl(['daemon-reload']);
});
after(() => h.stop());

test('systemd-analyze verify passes with no warnings', async () => {
  const r = await h.exec(['systemd-analyze', 'verify', `${UNIT_DIR}/${UNIT}`], { allowFail: true });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr + r.stdout, '');
});

test('starts, reports become metrics, counters survive a restart', async () => {
  await h.systemctl(['start', UNIT]);
  const show = await h.show(UNIT, ['ActiveState', 'WatchdogUSec', 'StatusText', 'Result']);
  assert.equal(show.ActiveState, 'active');
  assert.equal(show.WatchdogUSec, '30s');
  assert.match(show.StatusText ?? '', /0 connections now/);
  assert.equal((await h.sh('stat -c %a /run/lukko/companion.socket')).trim(), '600');

  await h.exec([NODE, '--input-type=module', '-e', REPORT, JSON.stringify([
    { t: 'accepted', ip: '192.0.2.1' },
    { t: 'auth', method: 'password', ok: false },
    { t: 'closed' },
  ])]);
  const body = await waitFor('the metrics', async () => {
    const b = await scrape();
    return sample(b, 'lukko_userauth_failed{method="password"}') === 1 ? b : undefined;
  });
  assert.equal(sample(body, 'lukko_connections_accepted'), 1);

  await h.systemctl(['restart', UNIT]);
  assert.equal((await h.show(UNIT, ['ActiveState'])).ActiveState, 'active');
  const after = await scrape();
  assert.equal(sample(after, 'lukko_connections_accepted'), 1);
  assert.match(await h.sh('cat /var/lib/lukko/companion-state.json'), /"lukko_connections_accepted": 1/);

  await h.systemctl(['stop', UNIT]);
  // The runtime directory (and the translation server's socket in it) stays.
  await h.exec(['test', '-d', '/run/lukko']);
  const failed = await h.failed();
  assert.deepEqual(failed.filter((u) => u.unit.startsWith('lukko')), []);
});
