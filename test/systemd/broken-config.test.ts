// Our own faults must be visible: a broken lukko.conf (or missing host keys) leaves a FAILED
// lukko@ instance whose status and journal say why (file:line, exit status 78), the socket
// stays up, and once the file is fixed the next connection logs in with no restart at all.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { CONFIG_DIR, CONFIG_PATH, installedLukko, MINIMAL_CONFIG, waitFor } from '../helpers/harness.ts';

const { h, client, setup, teardown } = installedLukko('lukko-broken-config-test');
before(setup);
after(teardown);

const socketState = async (): Promise<Record<string, string>> => h.show('lukko.socket', ['ActiveState', 'InvocationID']);

/** Connects (the login fails) and returns the one new failed lukko@ instance. */
async function failedConnection(before: Set<string>): Promise<string> {
  const r = await client.ssh('alice', 'true', { allowFail: true });
  assert.equal(r.code, 255, 'the login must fail');
  return waitFor('a failed lukko@ instance', async () => {
    const fresh = (await h.failed()).filter((u) => u.unit.startsWith('lukko@') && !before.has(u.unit));
    return fresh.length === 1 ? fresh[0]!.unit : undefined;
  });
}

test('a broken lukko.conf leaves a failed instance that names file:line and status 78; fixing the file heals', async () => {
  const socketBefore = await socketState();
  assert.equal(socketBefore.ActiveState, 'active');
  await h.writeFile(CONFIG_PATH, 'listener {\n  bind "*:22"\n  no_such_option yes\n}\n');

  const unit = await failedConnection(new Set());
  const props = await h.show(unit, ['ActiveState', 'Result', 'ExecMainCode', 'ExecMainStatus']);
  assert.deepEqual(props, { ActiveState: 'failed', Result: 'exit-code', ExecMainCode: '1', ExecMainStatus: '78' });
  // `systemctl status` exits 3 for a failed unit; what an operator reads is its text.
  const status = await h.systemctl(['status', '--no-pager', '--lines=20', unit], { allowFail: true });
  assert.equal(status.code, 3);
  assert.match(status.stdout, /code=exited, status=78\/CONFIG/);
  assert.match(status.stdout, /\/etc\/cm4all\/lukko\/lukko\.conf:3: /);
  const journal = await h.journal(['-u', unit, '-o', 'cat']);
  assert.match(journal, /lukko: \/etc\/cm4all\/lukko\/lukko\.conf:3: .*no_such_option/);
  assert.match(journal, /Failed with result 'exit-code'/);
  // The fault is also reported at error priority or above (journalctl -p err).
  assert.match(await h.journal(['-u', unit, '-p', 'err', '-o', 'cat']), /lukko\.conf:3/);

  // Every further connection fails the same way; the socket is not touched by any of it.
  const second = await failedConnection(new Set([unit]));
  assert.notEqual(second, unit);
  assert.deepEqual(await socketState(), socketBefore);
  assert.equal((await h.show('lukko.socket', ['NConnections'])).NConnections, '0');

  // Fixed: the very next connection logs in, without daemon-reload or any restart.
  await h.writeFile(CONFIG_PATH, MINIMAL_CONFIG);
  assert.equal((await client.ssh('alice', 'id -un')).stdout.trim(), 'alice');
  assert.deepEqual(await socketState(), socketBefore, 'lukko.socket was restarted');
  // The record of the fault stays until the operator clears it.
  const failed = (await h.failed()).map((u) => u.unit).sort();
  assert.deepEqual(failed, [unit, second].sort());
  await h.systemctl(['reset-failed', 'lukko@*']);
  assert.deepEqual(await h.failed(), []);
});

test('missing host keys fail the instance with status 78, and putting them back heals', async () => {
  const socketBefore = await socketState();
  await h.exec(['sh', '-c', `mkdir -p /root/keys && mv ${CONFIG_DIR}/host_* /root/keys/`]);
  const unit = await failedConnection(new Set());
  assert.deepEqual(await h.show(unit, ['Result', 'ExecMainStatus']), { Result: 'exit-code', ExecMainStatus: '78' });
  assert.match(await h.journal(['-u', unit, '-o', 'cat']), /no host key/);
  await h.exec(['sh', '-c', `mv /root/keys/host_* ${CONFIG_DIR}/`]);
  assert.equal((await client.ssh('alice', 'id -un')).stdout.trim(), 'alice');
  assert.deepEqual(await socketState(), socketBefore);
  await h.systemctl(['reset-failed', unit]);
  assert.deepEqual(await h.failed(), []);
});
