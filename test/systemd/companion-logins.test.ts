// lukko.socket, lukko@.service and lukko-companion.service together under a real systemd:
// real OpenSSH logins through the socket become metrics in the companion; stopping the
// companion does not break logins (instances fail open); restarting it keeps every counter
// monotonic, and the instances of the next logins report to the new process.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CONFIG_PATH, LUKKO_DIR, ROOT, UNIT_DIR, installedLukko, waitFor } from '../helpers/harness.ts';

const { h, client, setup, teardown } = installedLukko('lukko-companion-logins-test');
const COMPANION = 'lukko-companion.service';
const SCRAPE = `const r = await fetch('http://127.0.0.1:9100/metrics'); process.stdout.write(await r.text());`;

async function scrape(): Promise<string> {
  return (await h.exec([`${LUKKO_DIR}/node/bin/node`, '--input-type=module', '-e', SCRAPE])).stdout;
}
function sample(body: string, key: string): number {
  const line = body.split('\n').find((l) => l.startsWith(`${key} `));
  assert.ok(line, `no sample ${key}`);
  return Number(line.slice(key.length + 1));
}
async function until(what: string, key: string, want: (v: number) => boolean): Promise<string> {
  return waitFor(what, async () => {
    const b = await scrape();
    return want(sample(b, key)) ? b : undefined;
  });
}

before(async () => {
  await setup();
  await h.writeFile(`${UNIT_DIR}/${COMPANION}`, readFileSync(join(ROOT, 'units', COMPANION), 'utf8'));
  await h.writeFile(CONFIG_PATH, 'listener {\n  bind "*:22"\n}\nprometheus_exporter {\n  bind "127.0.0.1:9100"\n}\n');
  await h.systemctl(['daemon-reload']);
  await h.systemctl(['enable', '--now', COMPANION]);
});
after(teardown);

test('logins through lukko.socket are counted by lukko-companion.service', async () => {
  const r = await client.ssh('alice', 'echo counted');
  assert.equal(r.stdout, 'counted\n', r.stderr);
  const body = await until('the login in the metrics', 'lukko_userauth_accepted{method="publickey"}', (v) => v === 1);
  assert.equal(sample(body, 'lukko_connections_accepted'), 1);
  assert.equal(sample(body, 'lukko_children_spawned'), 1);
  await until('the connection closed', 'lukko_connections_active', (v) => v === 0);
});

test('with the companion stopped logins work; after a restart the counters go on from where they were', async () => {
  const before = await scrape();
  await h.systemctl(['stop', COMPANION]);
  const r = await client.ssh('alice', 'echo without');
  assert.equal(r.stdout, 'without\n', r.stderr);
  await h.systemctl(['start', COMPANION]);
  const restarted = await scrape();
  for (const key of ['lukko_connections_accepted', 'lukko_userauth_accepted{method="publickey"}', 'lukko_userauth_received', 'lukko_children_spawned', 'lukko_bytes_sent']) {
    assert.ok(sample(restarted, key) >= sample(before, key), `${key} went backwards across the restart`);
  }
  const again = await client.ssh('alice', 'echo again');
  assert.equal(again.stdout, 'again\n', again.stderr);
  await until('the next login counted on top', 'lukko_userauth_accepted{method="publickey"}', (v) => v === sample(restarted, 'lukko_userauth_accepted{method="publickey"}') + 1);
  await waitFor('no lukko@ instance left', async () => ((await h.units('lukko@*')).length === 0 ? true : undefined));
  assert.deepEqual((await h.failed()).map((u) => u.unit), []);
});
