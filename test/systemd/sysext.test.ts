// The systemd-sysext image (npm run build:sysext → scripts/build-sysext.sh): the way lukko gets
// onto Flatcar, whose /usr is read-only and has no Node.js. The image is built from this
// checkout, dropped into /var/lib/extensions of a container that has neither lukko nor Node,
// merged with `systemd-sysext merge` through a loop device, and its units serve a login.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CONFIG_PATH, MINIMAL_CONFIG, ROOT, SshClient, bareHarness, loopDeviceArgs, rootfsOf, run } from '../helpers/harness.ts';

// Raw images need loop devices inside the container (the harness README); without them
// systemd-sysext cannot attach the image and the merge test fails saying so.
const loops = loopDeviceArgs();
const h = bareHarness('lukko-sysext-test', loops);
const client = new SshClient(h);
const work = mkdtempSync(join(tmpdir(), 'lukko-sysext-test-'));
const image = join(work, 'lukko.raw');

before(async () => {
  // --fast: gzip level 1, the same format as the default image, built in 1 s rather than 10.
  await run(join(ROOT, 'scripts/build-sysext.sh'), ['--output', image, '--fast'], { timeoutMs: 300_000 });
  await h.boot();
  const extensions = join(rootfsOf(h), 'var/lib/extensions');
  mkdirSync(extensions, { recursive: true });
  copyFileSync(image, join(extensions, 'lukko.raw'));
});

after(async () => {
  await h.stop();
  client.cleanup();
  rmSync(work, { recursive: true, force: true });
});

test('the image holds /usr only: the tree, the units, the command and its release file', () => {
  const list = execFileSync('unsquashfs', ['-d', '', '-lc', image], { encoding: 'utf8' }).split('\n');
  for (const f of [
    '/usr/lib/lukko/node/bin/node',
    '/usr/lib/lukko/dist/cli/main.js',
    '/usr/lib/lukko/node_modules/ssh2/lib/protocol/crypto/build/Release/sshcrypto.node',
    '/usr/lib/systemd/system/lukko.socket',
    '/usr/lib/systemd/system/lukko@.service',
    '/usr/bin/lukko',
    '/usr/lib/extension-release.d/extension-release.lukko',
  ]) assert.ok(list.includes(f), `image lacks ${f}`);
  // systemd-sysext merges /usr and /opt only; anything else in the image would be dead weight.
  assert.deepEqual(list.filter((f) => f !== '' && !f.startsWith('/usr/')), []);
  const release = execFileSync('unsquashfs', ['-cat', image, 'usr/lib/extension-release.d/extension-release.lukko'], { encoding: 'utf8' });
  assert.match(release, /^ID=_any$/m);
  assert.match(release, /^ARCHITECTURE=x86-64$/m);
  assert.match(release, /^EXTENSION_RELOAD_MANAGER=1$/m);
});

test('systemd-sysext merges the raw image into the read-only /usr', async () => {
  // Loop devices are host-wide: one that another process is just attaching answers EBUSY.
  // Try a few times before calling it a failure.
  let merged = await h.exec(['systemd-sysext', 'merge'], { allowFail: true });
  for (let i = 0; i < 5 && merged.code !== 0 && /busy/i.test(merged.stderr); i++) {
    await new Promise((r) => setTimeout(r, 1000));
    merged = await h.exec(['systemd-sysext', 'merge'], { allowFail: true });
  }
  assert.equal(
    merged.code,
    0,
    `systemd-sysext merge failed: ${merged.stderr.trim()}\n` +
      (loops.length ? '' : 'This host has no /dev/loop-control, so the container cannot attach a raw image; see docs/install.md (directory extensions need none).'),
  );
  assert.match((await h.exec(['systemd-sysext', 'status'])).stdout, /^\/usr\s+lukko\s/m);
  assert.equal((await h.exec(['/usr/lib/lukko/node/bin/node', '--version'])).stdout.trim().slice(0, 4), 'v24.');
  // /usr stays read-only, as on Flatcar: the image is the only way in.
  assert.notEqual((await h.exec(['touch', '/usr/lib/lukko/x'], { allowFail: true })).code, 0);
  // EXTENSION_RELOAD_MANAGER=1: systemd knows the units without a daemon-reload.
  assert.equal((await h.show('lukko.socket', ['LoadState'])).LoadState, 'loaded');
  assert.equal((await h.show('lukko.socket', ['FragmentPath'])).FragmentPath, '/usr/lib/systemd/system/lukko.socket');
});

test('the merged units start and serve a real OpenSSH login', async () => {
  await h.writeFile(CONFIG_PATH, MINIMAL_CONFIG);
  await h.exec(['lukko', 'keygen', '--config', CONFIG_PATH]);
  await h.addUser('alice', await client.init());
  await client.trustHostKey();
  await h.systemctl(['enable', '--now', 'lukko.socket']);
  assert.equal((await client.ssh('alice', 'id -un')).stdout.trim(), 'alice');
  assert.deepEqual((await h.failed()).map((u) => u.unit), []);
});

test('unmerging takes lukko away again', async () => {
  await h.systemctl(['disable', '--now', 'lukko.socket']);
  await h.exec(['systemd-sysext', 'unmerge']);
  assert.notEqual((await h.exec(['test', '-e', '/usr/lib/lukko'], { allowFail: true })).code, 0);
});
