// The connection storm at the scale issue 5 asks for: 500 connect-and-close clients, 500
// connect-and-reset clients (SO_LINGER 0, as port scanners do) and 100 half-finished
// handshakes that lukko itself must end after 10 s. Afterwards `systemctl --failed` lists
// nothing, the system is `running`, no lukko@ instance is left, and a real login works.
//
// Pacing: every instance is a Node process (~0.1 s of CPU) and the test machine has two cores,
// so systemd serves such a storm at roughly 12 connections a second; the rest waits in the
// start queue (and, behind the poll limit, in the listen backlog). Thrown all at once, the 1100
// clients were measured to work too (45 s, nothing failed, NRefused=0, the last half-finished
// handshake ended 33 s after it connected), but then the queue's length depends on whatever
// else the machine runs, and `npm test` runs two test files at a time: a queue approaching
// TimeoutStartSec=90s would fail instances for the machine's sake, not lukko's. So the clients
// come in waves of 100, and a wave starts only while fewer than 300 instances are live (well
// under MaxConnections=512, beyond which systemd would refuse connections). The 100
// half-finished handshakes are opened first and stay open during the first waves, so the
// waves arrive on top of them.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { ClientStats } from '../helpers/harness.ts';
import { installedLukko, parseShow, rawClients, sleep, waitFor } from '../helpers/harness.ts';

const { h, client, setup, teardown } = installedLukko('lukko-storm-test');
after(teardown);
before(async () => {
  await setup();
  assert.equal((await client.ssh('alice', 'id -un')).stdout.trim(), 'alice'); // warm start, compile cache
});

const WAVE = 100;
const LIVE_BELOW = 300;

const connections = async (): Promise<number> => Number((await h.show('lukko.socket', ['NConnections'])).NConnections);

async function waves(mode: 'fin' | 'rst', total: number): Promise<ClientStats[]> {
  const out: ClientStats[] = [];
  for (let sent = 0; sent < total; sent += WAVE) {
    await waitFor(`fewer than ${LIVE_BELOW} live instances`, async () => ((await connections()) < LIVE_BELOW ? true : undefined), 60_000, 200);
    out.push(await rawClients(h, mode, Math.min(WAVE, total - sent)));
  }
  return out;
}

const sum = (stats: ClientStats[], key: string): number => stats.reduce((n, s) => n + (s.by[key] ?? 0), 0);

test('500 closes, 500 resets and 100 half-finished handshakes leave nothing failed and nothing running', async () => {
  const accepted = async (): Promise<number> => Number((await h.show('lukko.socket', ['NAccepted'])).NAccepted);
  const before = await accepted();
  const t0 = Date.now();
  const half = rawClients(h, 'half', 100);
  // All 100 accepted (each has an instance). Not "100 running at once": on a loaded 2-core
  // machine the last ones may start after the first have hit their 10 s limit.
  await waitFor('100 half-finished handshakes accepted', async () => ((await accepted()) - before >= 100 ? true : undefined), 60_000, 200);
  const tHalf = Date.now() - t0;
  const fin = await waves('fin', 500);
  const tFin = Date.now() - t0;
  const rst = await waves('rst', 500);
  const tRst = Date.now() - t0;
  const halfDone = await half;
  console.log(`# half-finished handshakes running after ${tHalf} ms; 500 fin sent by ${tFin} ms; 500 rst sent by ${tRst} ms`);
  console.log(`# fin ${JSON.stringify(fin.map((s) => s.by))}\n# rst ${JSON.stringify(rst.map((s) => s.by))}\n# half ${JSON.stringify(halfDone)}`);

  // Every client saw its connection end without an error of its own.
  assert.equal(sum(fin, 'client') + sum(fin, 'server'), 500, JSON.stringify(fin));
  assert.equal(sum(rst, 'client'), 500, JSON.stringify(rst));
  // lukko, not the client, ended every half-finished handshake, after its 10 s limit.
  assert.equal(halfDone.by.server, 100, JSON.stringify(halfDone));
  assert.equal(halfDone.banners, 100);
  assert.ok(halfDone.minMs >= 9_500, `a half-finished handshake ended after ${halfDone.minMs} ms`);

  // No instance is left, loaded or running.
  await waitFor('every lukko@ instance to end', async () => ((await h.units('lukko@*')).length === 0 ? true : undefined), 60_000, 250);
  const tDone = Date.now() - t0;

  // Nothing failed, anywhere, and the system says so itself.
  assert.deepEqual(await h.failed(), []);
  const state = await h.exec(['systemctl', 'is-system-running'], { allowFail: true });
  assert.equal(state.stdout.trim(), 'running', state.stdout + state.stderr);
  assert.doesNotMatch(await h.journal(['-o', 'cat', '_PID=1']), /lukko.*(Failed with result|Main process exited, code=(exited|killed|dumped), status=[1-9]|Trigger limit hit|refusing)/);

  const socket = parseShow((await h.systemctl(['show', 'lukko.socket', '-p', 'ActiveState', '-p', 'SubState', '-p', 'NAccepted', '-p', 'NConnections', '-p', 'NRefused'])).stdout);
  console.log(`# socket after the storm: ${JSON.stringify(socket)}; all instances gone after ${tDone} ms`);
  assert.equal(socket.ActiveState, 'active');
  assert.equal(socket.SubState, 'listening');
  assert.equal(socket.NConnections, '0');
  assert.equal(socket.NRefused, '0', 'the pacing kept the storm under MaxConnections=512');
  // 1 warm-up login + 100 half + 500 fin, and whichever resets systemd still accepted.
  assert.ok(Number(socket.NAccepted) >= 601, `NAccepted=${socket.NAccepted}`);
  // Every instance systemd started ran lukko to its own orderly end.
  const closed = (await h.journal(['-t', 'lukko', '-o', 'cat'])).split('\n').filter((l) => l.includes('"msg":"connection closed"'));
  assert.equal(closed.length, Number(socket.NAccepted));

  // The socket still accepts: a real OpenSSH login.
  await sleep(100);
  assert.equal((await client.ssh('alice', 'id -un')).stdout.trim(), 'alice');
  assert.deepEqual(await h.failed(), []);
});
