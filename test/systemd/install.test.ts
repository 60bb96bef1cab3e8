// scripts/install.sh, the one install command: it puts the pinned Node runtime, the build and
// the production dependencies under /usr/lib/lukko and the units into /usr/lib/systemd/system.
// Here it installs straight into a booted container's root (--destdir), a container that sees
// nothing of this checkout, has no Node.js of its own, and then serves a real OpenSSH login
// through lukko.socket. `lukko units` (the installed command) then moves the socket to the
// ports lukko.conf names.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CONFIG_PATH, MINIMAL_CONFIG, ROOT, SshClient, bareHarness, rootfsOf, run } from '../helpers/harness.ts';

const h = bareHarness('lukko-install-test');
const client = new SshClient(h);
let rootfs = '';
let installLog = '';

before(async () => {
  await h.boot();
  rootfs = rootfsOf(h);
  const r = await run(join(ROOT, 'scripts/install.sh'), ['--prefix', '/usr', '--destdir', rootfs], { timeoutMs: 120_000 });
  installLog = r.stderr;
  await h.systemctl(['daemon-reload']);
  await h.writeFile(CONFIG_PATH, MINIMAL_CONFIG);
  // The installed command, from PATH: /usr/bin/lukko.
  await h.exec(['lukko', 'keygen', '--config', CONFIG_PATH]);
  await h.addUser('alice', await client.init());
  await client.trustHostKey();
});

after(async () => {
  await h.stop();
  client.cleanup();
});

test('the installed tree holds what runs, and not the build tools', () => {
  const app = join(rootfs, 'usr/lib/lukko');
  const present = [
    'node/bin/node',
    'node/LICENSE',
    'package.json',
    'dist/cli/main.js',
    'dist/connection/main.bundle.js',
    'dist/systemd/render-units.js',
    'dist/spawn/lukko-exec',
    // The native addons, as built by npm ci against the pinned runtime.
    'node_modules/ssh2/lib/protocol/crypto/build/Release/sshcrypto.node',
    'node_modules/node-pty/build/Release/pty.node',
    'node_modules/sd-notify/build/Release/notify.node',
    'node_modules/cpu-features/build/Release/cpufeatures.node',
    'node_modules/yargs/build/lib/yargs-factory.js',
  ];
  for (const f of present) assert.ok(existsSync(join(app, f)), `missing ${f}`);
  assert.ok(statSync(join(app, 'dist/spawn/lukko-exec')).mode & 0o111, 'lukko-exec is executable');
  const absent = [
    'node/include', 'node/share', 'node/CHANGELOG.md', 'node/bin/npm', 'dist/.tsbuildinfo', 'dist/sysext',
    'node_modules/typescript', 'node_modules/esbuild', 'node_modules/@esbuild', 'node_modules/@types', 'node_modules/.bin',
    'node_modules/nan', 'node_modules/node-addon-api', 'node_modules/buildcheck', 'node_modules/node-pty/prebuilds',
    'node_modules/node-pty/deps', 'node_modules/cpu-features/build/Release/obj.target',
  ];
  for (const f of absent) assert.ok(!existsSync(join(app, f)), `${f} should not be installed`);
  // No package that package-lock.json marks dev-only, at any depth.
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
  for (const [path, meta] of Object.entries(lock.packages)) {
    if (meta.dev) assert.ok(!existsSync(join(app, path)), `dev dependency ${path} installed`);
  }
  const pkg = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(pkg.type, 'module');
  assert.equal(pkg.devDependencies, undefined);
  // Units placed unchanged (prefix /usr), and the command.
  for (const unit of ['lukko.socket', 'lukko@.service', 'lukko-translation.socket', 'lukko-translation.service']) {
    assert.equal(readFileSync(join(rootfs, 'usr/lib/systemd/system', unit), 'utf8'), readFileSync(join(ROOT, 'units', unit), 'utf8'));
  }
  assert.match(readFileSync(join(rootfs, 'usr/bin/lukko'), 'utf8'), /exec \/usr\/lib\/lukko\/node\/bin\/node \/usr\/lib\/lukko\/dist\/cli\/main\.js "\$@"/);
  const mb = Number(execFileSync('du', ['-sm', app], { encoding: 'utf8' }).split('\t')[0]);
  console.log(`# installed tree: ${mb} MB (${installLog.trim()})`);
  // The node binary alone is ~121 MB; everything else must stay small.
  assert.ok(mb < 135, `installed tree is ${mb} MB`);
});

test('nothing but the installed tree can run: no Node.js in the container, no bind mount', async () => {
  assert.notEqual((await h.exec(['sh', '-c', 'command -v node'], { allowFail: true })).code, 0);
  assert.notEqual((await h.exec(['findmnt', '-n', '/usr/lib/lukko'], { allowFail: true })).code, 0);
  assert.equal((await h.exec(['lukko', '--version'])).stdout.trim(), JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version);
});

test('lukko.socket from the installed units serves a real OpenSSH login', async () => {
  await h.systemctl(['enable', '--now', 'lukko.socket']);
  const r = await client.ssh('alice', 'id -un; echo "$SSH_CONNECTION"');
  const [user, conn] = r.stdout.trim().split('\n');
  assert.equal(user, 'alice');
  assert.match(conn ?? '', / 127\.0\.0\.1 22$/);
  assert.deepEqual((await h.failed()).map((u) => u.unit), []);
});

test('lukko units turns lukko.conf\'s listeners into a drop-in that moves the socket', async () => {
  await h.writeFile(CONFIG_PATH, 'listener {\n  bind "127.0.0.1:2022"\n  keepalive yes\n}\nlistener {\n  bind "*:2023"\n  keepalive yes\n}\n');
  const r = await h.exec(['lukko', 'units', '--config', CONFIG_PATH, '--output', '/etc/systemd/system']);
  assert.match(r.stderr, /wrote \/etc\/systemd\/system\/lukko\.socket\.d\/50-lukko-conf\.conf/);
  const dropIn = (await h.exec(['cat', '/etc/systemd/system/lukko.socket.d/50-lukko-conf.conf'])).stdout;
  assert.match(dropIn, /^ListenStream=\nListenStream=127\.0\.0\.1:2022\nListenStream=2023\n/m);
  await h.systemctl(['daemon-reload']);
  await h.systemctl(['restart', 'lukko.socket']);
  // systemd read every line of it.
  const show = await h.show('lukko.socket', ['FreeBind', 'KeepAlive', 'Backlog', 'BindIPv6Only', 'ActiveState']);
  assert.equal(show.ActiveState, 'active');
  // One Listen= line per address (parseShow would keep only the last).
  const listen = (await h.systemctl(['show', 'lukko.socket', '--property=Listen'])).stdout.trim().split('\n').sort();
  assert.deepEqual(listen, ['Listen=127.0.0.1:2022 (Stream)', 'Listen=[::]:2023 (Stream)']);
  assert.equal(show.FreeBind, 'yes');
  assert.equal(show.KeepAlive, 'yes');
  assert.doesNotMatch(dropIn, /^Backlog=/m);
  assert.notEqual(show.Backlog, '256', `lukko.conf's default 256 must not shorten systemd's queue (${show.Backlog})`);
  assert.equal(show.BindIPv6Only, 'both');
  // Real connections: both new ports log in, the old one refuses.
  for (const port of [2022, 2023]) {
    assert.equal((await client.ssh('alice', 'id -un', { port })).stdout.trim(), 'alice', `port ${port}`);
  }
  const old = await client.ssh('alice', 'true', { port: 22, allowFail: true });
  assert.equal(old.code, 255);
  assert.match(old.stderr, /Connection refused/);
  assert.deepEqual((await h.failed()).map((u) => u.unit), []);
});

test('lukko units refuses listeners one socket unit cannot carry (exit 78), and writes nothing', async () => {
  const conf = '/etc/cm4all/lukko/split.conf';
  await h.writeFile(conf, 'listener {\n  bind "*:2024"\n  reuse_port yes\n}\nlistener {\n  bind "*:2025"\n}\n');
  const r = await h.exec(['lukko', 'units', '--config', conf, '--output', '/run/units-test'], { allowFail: true });
  assert.equal(r.code, 78);
  assert.match(r.stderr, /reuse_port differs .*split\.conf:1\): yes; .*split\.conf:5\): no/);
  assert.notEqual((await h.exec(['test', '-e', '/run/units-test'], { allowFail: true })).code, 0);
});
