// lukko as an operator installs it: units in /usr/lib/systemd/system, lukko.conf and host keys
// in /etc/cm4all/lukko, `systemctl enable --now lukko.socket`, then a real OpenSSH client
// logs in through systemd's Accept=yes socket, and systemctl shows who is connected.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { installedLukko, parseShow, sleep, waitFor } from '../helpers/harness.ts';

const { h, client, setup, teardown } = installedLukko('lukko-login-test');
before(setup);
after(teardown);

test('a real OpenSSH client logs in and runs a command as its user', async () => {
  const r = await client.ssh('alice', 'id -un; pwd; echo "$SSH_CONNECTION"; cat /proc/self/cgroup');
  const [user, cwd, conn, ...cgroup] = r.stdout.trim().split('\n');
  assert.equal(user, 'alice');
  assert.equal(cwd, '/home/alice');
  assert.match(conn ?? '', /^127\.0\.0\.1 \d+ 127\.0\.0\.1 22$/);
  // The session runs inside the connection's own unit: its boundary.
  assert.match(cgroup.find((l) => l.startsWith('0::')) ?? '', /^0::\/system\.slice\/system-lukko\.slice\/lukko@\d+-127\.0\.0\.1:22-127\.0\.0\.1:\d+\.service$/);
});

test('the session environment is the user\'s, not systemd\'s', async () => {
  const env = (await client.ssh('alice', 'env')).stdout;
  for (const name of ['NOTIFY_SOCKET', 'LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES', 'INVOCATION_ID', 'JOURNAL_STREAM', 'NODE_COMPILE_CACHE']) {
    assert.doesNotMatch(env, new RegExp(`^${name}=`, 'm'), `${name} leaked into the session`);
  }
  assert.match(env, /^USER=alice$/m);
  // Signals start at their defaults (systemd and Node both ignore SIGPIPE): `yes` dies of it.
  const pipe = await client.ssh('alice', 'yes | head -n1 >/dev/null; echo "${PIPESTATUS[0]}"');
  assert.equal(pipe.stdout.trim(), '141');
});

test('while a session is live, systemctl shows the user and the remote address (STATUS=)', async () => {
  const live = client.ssh('alice', 'sleep 5');
  try {
    const unit = await waitFor('a running lukko@ instance with a status for alice', async () => {
      const units = (await h.units('lukko@*')).filter((u) => u.active === 'active' && u.sub === 'running');
      for (const u of units) {
        const p = await h.show(u.unit, ['StatusText']);
        if (p.StatusText?.startsWith('alice ')) return u.unit;
      }
      return undefined;
    });
    const props = await h.show(unit, ['StatusText', 'Type', 'ActiveState', 'NRestarts']);
    console.log(`# ${unit}: StatusText=${props.StatusText}`);
    assert.match(props.StatusText ?? '', /^alice from 127\.0\.0\.1: /);
    assert.match(props.StatusText ?? '', /sleep 5/);
    const status = await h.systemctl(['status', '--no-pager', '--lines=0', 'lukko@*']);
    assert.match(status.stdout, /Status: "alice from 127\.0\.0\.1: [^"]*"/);
    assert.match(status.stdout, /TriggeredBy: .*lukko\.socket/);
    // The kernel applies the socket's keepalive settings to the accepted connection.
    const ss = (await h.exec(['ss', '-tnoH', 'state', 'established', '( sport = :22 )'])).stdout;
    // 2 min, not the kernel's 2 h: "timer:(keepalive,1min58sec,0)".
    assert.match(ss, /timer:\(keepalive,(?:1min\d+sec|2min|\d+sec),0\)/);
    const socket = parseShow((await h.systemctl(['show', 'lukko.socket', '-p', 'NConnections'])).stdout);
    assert.equal(socket.NConnections, '1');
  } finally {
    const r = await live;
    assert.equal(r.code, 0);
  }
  // The instance is gone (inactive units are garbage-collected), nothing failed.
  await waitFor('no lukko@ instance left', async () => ((await h.units('lukko@*')).length === 0 ? true : undefined));
  assert.deepEqual((await h.failed()).map((u) => u.unit), []);
});

test('log lines reach the journal with priorities, under the lukko identifier', async () => {
  await client.ssh('alice', 'true');
  const lines = (await h.journal(['-t', 'lukko', '-o', 'json', '--output-fields=PRIORITY,MESSAGE'])).trim().split('\n');
  const accepted = lines.map((l) => JSON.parse(l) as { PRIORITY: string; MESSAGE: string }).find((e) => e.MESSAGE.includes('"msg":"accepted"'));
  assert.ok(accepted, 'no "accepted" line under SyslogIdentifier=lukko');
  assert.equal(accepted.PRIORITY, '6');
  assert.match(accepted.MESSAGE, /^\{.*"user":"alice"/);
});

test('ListenStream= moves with a drop-in, daemon-reload and restart of the socket; a live session survives', async () => {
  // A session that is running while the operator moves the port must not notice.
  const live = client.ssh('alice', 'echo started; sleep 4; echo survived', { timeoutMs: 30000 });
  await waitFor('a lukko@ instance', async () => ((await h.exec(['systemctl', 'list-units', '--no-legend', 'lukko@*'])).stdout.includes('lukko@') ? true : undefined));
  await sleep(300);
  await h.writeFile('/etc/systemd/system/lukko.socket.d/listen.conf', '[Socket]\nListenStream=\nListenStream=127.0.0.1:2222\n');
  await h.systemctl(['daemon-reload']);
  // After the reload alone the socket claims the new address while nothing listens at all.
  const listening = async (): Promise<string> => (await h.exec(['ss', '-Htln'])).stdout;
  assert.equal((await h.show('lukko.socket', ['Listen'])).Listen, '127.0.0.1:2222 (Stream)');
  assert.doesNotMatch(await listening(), /:2222 |:22 /);
  assert.match(await h.journal(['-u', 'lukko.socket', '-o', 'cat']), /not functional until restarted/);
  await h.systemctl(['restart', 'lukko.socket']);
  assert.match(await listening(), /127\.0\.0\.1:2222/);
  assert.equal((await client.ssh('alice', 'id -un', { port: 2222 })).stdout.trim(), 'alice');
  const old = await client.ssh('alice', 'true', { allowFail: true });
  assert.equal(old.code, 255);
  assert.match(old.stderr, /Connection refused/);
  const survived = await live;
  assert.equal(survived.code, 0, survived.stderr);
  assert.equal(survived.stdout, 'started\nsurvived\n');
  await h.exec(['rm', '-r', '/etc/systemd/system/lukko.socket.d']);
  await h.systemctl(['daemon-reload']);
  await h.systemctl(['restart', 'lukko.socket']);
  await sleep(100);
  assert.equal((await client.ssh('alice', 'id -un')).stdout.trim(), 'alice');
});
