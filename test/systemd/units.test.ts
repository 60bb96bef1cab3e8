// The unit files themselves under a real systemd (257, as Flatcar stable): they pass
// `systemd-analyze verify` without a single warning, systemd reads the settings we meant, and
// a connection storm cannot leave lukko.socket failed.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Harness, HOST_NODE, UNIT_DIR, parseShow, sleep } from '../helpers/harness.ts';

const h = new Harness({ name: 'lukko-units-test' });

before(async () => {
  await h.boot();
  await h.installUnits();
});
after(() => h.stop());

test('systemd-analyze verify passes on both units, with no warnings', async () => {
  const r = await h.exec(['systemd-analyze', 'verify', `${UNIT_DIR}/lukko.socket`, `${UNIT_DIR}/lukko@.service`], { allowFail: true });
  assert.equal(r.code, 0, r.stderr);
  // Unknown keys and unparsable values are only warnings (exit 0): any output is a failure.
  assert.equal(r.stderr + r.stdout, '');
  const version = (await h.exec(['systemctl', '--version'])).stdout.split('\n')[0] ?? '';
  assert.match(version, /^systemd \d+/);
  console.log(`# ${version}`);
});

test('systemd reads the settings the units mean', async () => {
  const socket = await h.show('lukko.socket', [
    'Listen', 'Accept', 'NoDelay', 'KeepAlive', 'KeepAliveTimeUSec', 'KeepAliveIntervalUSec', 'KeepAliveProbes',
    'MaxConnections', 'TriggerLimitBurst', 'PollLimitIntervalUSec', 'PollLimitBurst', 'BindIPv6Only',
  ]);
  assert.deepEqual(socket, {
    Listen: '[::]:22 (Stream)',
    Accept: 'yes',
    NoDelay: 'yes',
    KeepAlive: 'yes',
    KeepAliveTimeUSec: '2min',
    KeepAliveIntervalUSec: '30s',
    KeepAliveProbes: '4',
    MaxConnections: '512',
    TriggerLimitBurst: '0',
    PollLimitIntervalUSec: '2s',
    PollLimitBurst: '150',
    BindIPv6Only: 'both',
  });
  const service = await h.show('lukko@1-127.0.0.1:22-127.0.0.1:1.service', [
    'Type', 'NotifyAccess', 'KillMode', 'CollectMode', 'OOMPolicy', 'TimeoutStopUSec', 'StandardInput', 'StandardOutput',
    'Environment', 'CacheDirectory', 'CacheDirectoryMode', 'NoNewPrivileges', 'ProtectSystem', 'ProtectHome', 'PrivateTmp',
  ]);
  assert.deepEqual(service, {
    Type: 'notify',
    NotifyAccess: 'main',
    KillMode: 'mixed',
    CollectMode: 'inactive',
    OOMPolicy: 'continue',
    TimeoutStopUSec: '5s',
    StandardInput: 'null',
    StandardOutput: 'journal',
    Environment: 'NODE_COMPILE_CACHE=/var/cache/lukko',
    CacheDirectory: 'lukko',
    CacheDirectoryMode: '0700',
    NoNewPrivileges: 'no',
    ProtectSystem: 'no',
    ProtectHome: 'no',
    PrivateTmp: 'no',
  });
});

// 300 connections inside one second. systemd's trigger limit (200 per 2 s for Accept=yes) would
// fail the socket for good; since systemd 255 the poll limit (150 per 2 s) pauses accepting
// before that, so the test switches the poll limit off, as an operator who raises it would,
// to show that TriggerLimitBurst=0 alone keeps the socket alive. The instances are replaced by
// a cheap stand-in: this is about the socket, not about starting 300 Node processes.
test('a connection storm cannot stop lukko.socket', async () => {
  await h.writeFile('/run/systemd/system/lukko.socket.d/50-no-poll-limit.conf', '[Socket]\nPollLimitBurst=0\n');
  await h.writeFile('/run/systemd/system/lukko@.service.d/50-stand-in.conf', '[Service]\nType=exec\nExecStart=\nExecStart=/bin/sleep 1\n');
  await h.systemctl(['daemon-reload']);
  await h.systemctl(['start', 'lukko.socket']);
  const storm = String.raw`
    const net = require('node:net');
    let n = 0;
    const all = Array.from({ length: 300 }, () => new Promise((done) => {
      const s = net.connect(22, '127.0.0.1', () => { n++; setTimeout(() => s.destroy(), 1500); });
      s.on('error', () => {}); s.on('close', done);
    }));
    Promise.all(all).then(() => console.log(n));`;
  const t0 = Date.now();
  const r = await h.netexec([HOST_NODE, '-e', storm], { timeoutMs: 60_000 });
  console.log(`# 300 connections: ${r.stdout.trim()} connected in ${Date.now() - t0} ms`);
  await sleep(500);
  const state = parseShow((await h.systemctl(['show', 'lukko.socket', '-p', 'ActiveState', '-p', 'Result', '-p', 'NAccepted'])).stdout);
  assert.equal(state.Result, 'success', 'the trigger limit stopped the socket');
  assert.equal(state.ActiveState, 'active');
  assert.ok(Number(state.NAccepted) >= 250, `only ${state.NAccepted} accepted`);
  // And the opposite, so that the test above proves something: systemd's default fails it.
  await h.writeFile('/run/systemd/system/lukko.socket.d/60-default-trigger-limit.conf', '[Socket]\nTriggerLimitBurst=200\n');
  await h.systemctl(['daemon-reload']);
  await h.systemctl(['restart', 'lukko.socket']);
  await h.netexec([HOST_NODE, '-e', storm], { timeoutMs: 60_000 });
  const broken = parseShow((await h.systemctl(['show', 'lukko.socket', '-p', 'ActiveState', '-p', 'Result'])).stdout);
  assert.deepEqual(broken, { ActiveState: 'failed', Result: 'trigger-limit-hit' });
  await h.exec(['rm', '-r', '/run/systemd/system/lukko.socket.d', '/run/systemd/system/lukko@.service.d']);
  await h.systemctl(['daemon-reload']);
});
