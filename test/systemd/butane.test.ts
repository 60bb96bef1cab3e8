// butane/lukko.ign under a real systemd: the files, units, drop-ins, masks and presets it
// holds are written into the container the way Ignition's files stage writes them, next to a
// stand-in for Flatcar's own sshd.socket (port 22, enabled by a symlink under /usr, as Flatcar
// ships it). Then sockets.target is started as at boot: lukko-keygen.service writes the host
// keys before lukko.socket listens, sshd.socket stays masked, a real OpenSSH client logs in,
// nothing fails. The drop-in examples are applied the way docs/operations.md says.
//
// Not covered here: downloading and merging the sysext (the image is the install/sysext
// work's; this harness bind-mounts the same /usr/lib/lukko tree from the checkout instead).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Ignition } from '../../scripts/butane-to-ignition.ts';
import { BUTANE_DIR, decodeDataUrl } from '../../scripts/butane-to-ignition.ts';
import { CONFIG_DIR, Harness, SshClient, UNIT_DIR, parseShow, shellQuote } from '../helpers/harness.ts';

const h = new Harness({ name: 'lukko-butane-test' });
const client = new SshClient(h);
const readIgn = (rel: string): Ignition => JSON.parse(readFileSync(join(BUTANE_DIR, rel), 'utf8')) as Ignition;
type Unit = { name: string; contents?: string; enabled?: boolean; mask?: boolean; dropins?: { name: string; contents?: string }[] };

/** What Ignition's files stage does with our subset; returns the remote files it would have downloaded. */
async function applyIgnition(ign: Ignition): Promise<string[]> {
  const remote: string[] = [];
  for (const f of (ign.storage?.files ?? []) as { path: string; mode?: number; contents: { source: string } }[]) {
    if (!f.contents.source.startsWith('data:')) {
      remote.push(f.path);
      continue;
    }
    await h.writeFile(f.path, decodeDataUrl(f.contents.source), (f.mode ?? 0o644).toString(8).padStart(4, '0'));
  }
  for (const l of (ign.storage?.links ?? []) as { path: string; target: string }[]) {
    await h.exec(['sh', '-c', `mkdir -p "$(dirname ${shellQuote(l.path)})" && ln -sfn ${shellQuote(l.target)} ${shellQuote(l.path)}`]);
  }
  const enable: string[] = [];
  for (const u of (ign.systemd?.units ?? []) as unknown as Unit[]) {
    const path = `/etc/systemd/system/${u.name}`;
    if (u.contents !== undefined) await h.writeFile(path, u.contents);
    for (const d of u.dropins ?? []) if (d.contents !== undefined) await h.writeFile(`${path}.d/${d.name}`, d.contents);
    if (u.mask) await h.exec(['ln', '-sfn', '/dev/null', path]);
    if (u.enabled) enable.push(`enable ${u.name}\n`);
  }
  await h.writeFile('/etc/systemd/system-preset/20-ignition.preset', enable.join(''));
  return remote;
}

// Flatcar's sshd.socket as far as this test needs it: port 22, Accept=yes, enabled vendor-side.
const SSHD_SOCKET = '[Unit]\nDescription=stand-in for Flatcar sshd.socket\nConflicts=sshd.service\n\n[Socket]\nListenStream=22\nAccept=yes\nTriggerLimitBurst=0\n\n[Install]\nWantedBy=sockets.target\n';
const SSHD_AT = '[Unit]\nDescription=stand-in for Flatcar sshd@.service\n\n[Service]\nExecStart=-/bin/cat\nStandardInput=socket\n';

const listening = async (): Promise<string> => (await h.exec(['ss', '-Htln'])).stdout;

before(async () => {
  await h.boot();
  await h.writeFile(`${UNIT_DIR}/sshd.socket`, SSHD_SOCKET);
  await h.writeFile(`${UNIT_DIR}/sshd@.service`, SSHD_AT);
  await h.exec(['sh', '-c', `mkdir -p ${UNIT_DIR}/sockets.target.wants && ln -sfn ../sshd.socket ${UNIT_DIR}/sockets.target.wants/sshd.socket`]);
  await h.systemctl(['daemon-reload']);
  // `is-enabled` says "disabled" for a vendor-side .wants link; sockets.target wants it all the same.
  assert.match((await h.show('sockets.target', ['Wants'])).Wants ?? '', /\bsshd\.socket\b/);
  await h.exec(['useradd', '--create-home', '--shell', '/bin/bash', 'alice']);
});
after(async () => {
  await h.stop();
  client.cleanup();
});

test('lukko.ign provisions: host keys first, lukko.socket on 22, sshd.socket masked, a login works, nothing failed', async () => {
  const remote = await applyIgnition(readIgn('lukko.ign'));
  assert.deepEqual(remote.map((p) => p.replace(/[^/]+$/, '')), ['/opt/extensions/lukko/'], 'only the sysext is downloaded');
  await h.systemctl(['daemon-reload']);
  // First boot applies presets (Ignition's "enabled: true"); then boot reaches sockets.target.
  await h.systemctl(['preset', 'lukko.socket', 'lukko-keygen.service']);
  assert.equal((await h.systemctl(['is-enabled', 'lukko.socket'])).stdout.trim(), 'enabled');
  assert.equal((await h.systemctl(['is-enabled', 'sshd.socket'], { allowFail: true })).stdout.trim(), 'masked');
  const verify = await h.exec(['systemd-analyze', 'verify', '/etc/systemd/system/lukko-keygen.service', '/etc/systemd/system/lukko.socket'], { allowFail: true });
  assert.equal(verify.code, 0, verify.stderr);
  assert.equal(verify.stderr + verify.stdout, '', 'systemd-analyze verify warns');
  await h.systemctl(['start', 'sockets.target']);

  // The keys were written by lukko-keygen.service, which finished before the socket listened.
  const keys = (await h.exec(['sh', '-c', `ls ${CONFIG_DIR}`])).stdout.split('\n').filter(Boolean).sort();
  assert.deepEqual(keys, ['host_ecdsa_key', 'host_ecdsa_key.pub', 'host_ed25519_key', 'host_ed25519_key.pub', 'lukko.conf']);
  assert.match(await h.journal(['-u', 'lukko-keygen.service', '-o', 'cat']), /wrote \/etc\/cm4all\/lukko\/host_ed25519_key/);
  const keygen = await h.show('lukko-keygen.service', ['ActiveState', 'SubState', 'Result', 'ExecMainExitTimestampMonotonic']);
  const socket = await h.show('lukko.socket', ['ActiveState', 'ActiveEnterTimestampMonotonic']);
  assert.deepEqual([keygen.ActiveState, keygen.SubState, keygen.Result], ['active', 'exited', 'success']);
  assert.equal(socket.ActiveState, 'active');
  assert.ok(Number(keygen.ExecMainExitTimestampMonotonic) <= Number(socket.ActiveEnterTimestampMonotonic), 'lukko.socket listened before the keys were written');
  assert.equal((await h.systemctl(['is-active', 'sshd.socket'], { allowFail: true })).stdout.trim(), 'inactive');
  const order = (await h.systemctl(['list-dependencies', '--after', '--plain', '--no-pager', 'lukko@1-127.0.0.1:22-127.0.0.1:1.service'])).stdout;
  assert.match(order, /lukko-keygen\.service/, 'instances are not ordered after the keygen');

  // A real login, through lukko.socket.
  await h.writeFile('/home/alice/.ssh/authorized_keys', await client.init(), '0600', 'alice:alice');
  await h.exec(['sh', '-c', 'chmod 0700 /home/alice/.ssh && chown alice:alice /home/alice/.ssh']);
  await client.trustHostKey();
  assert.equal((await client.ssh('alice', 'id -un')).stdout.trim(), 'alice');
  assert.match((await h.journal(['-u', 'lukko.socket', '-o', 'cat'])).concat(await h.journal(['-t', 'lukko', '-o', 'cat'])), /"msg":"accepted"/);
  assert.deepEqual(await h.failed(), []);
  assert.equal((await h.exec(['systemctl', 'is-system-running'], { allowFail: true })).stdout.trim(), 'running');
  assert.doesNotMatch(await h.journal(['-o', 'cat', '_PID=1']), /ordering cycle/i);
});

test('lukko-keygen.service never overwrites a key and replaces an empty one', async () => {
  const sum = async (): Promise<string> => (await h.exec(['sh', '-c', `cd ${CONFIG_DIR} && sha256sum host_ed25519_key host_ecdsa_key`])).stdout;
  const before1 = await sum();
  await h.systemctl(['restart', 'lukko-keygen.service']);
  assert.equal(await sum(), before1);
  await h.exec(['sh', '-c', `: > ${CONFIG_DIR}/host_ecdsa_key`]); // what a power cut can leave
  await h.systemctl(['restart', 'lukko-keygen.service']);
  const after1 = await sum();
  assert.equal(after1.split('\n')[0], before1.split('\n')[0], 'the ed25519 key changed');
  assert.notEqual(after1.split('\n')[1], before1.split('\n')[1]);
  assert.ok(Number((await h.exec(['stat', '-c', '%s', `${CONFIG_DIR}/host_ecdsa_key`])).stdout) > 0);
  assert.equal((await client.ssh('alice', 'id -un')).stdout.trim(), 'alice');
  assert.deepEqual(await h.failed(), []);
});

async function applyDropin(example: string, edit: (s: string) => string = (s) => s): Promise<void> {
  const u = ((readIgn(example).systemd?.units ?? []) as unknown as Unit[])[0]!;
  const d = u.dropins![0]!;
  await h.writeFile(`/etc/systemd/system/${u.name}.d/${d.name}`, edit(d.contents!));
  await h.systemctl(['daemon-reload']);
  await h.systemctl(['restart', u.name]);
}

const login = async (port: number): Promise<string> => {
  const r = await client.ssh('alice', 'id -un', { port, allowFail: true });
  return r.code === 0 ? r.stdout.trim() : r.stderr.includes('Connection refused') ? 'refused' : `exit ${r.code}: ${r.stderr}`;
};

test('the drop-in examples: another port, two ports, one address', async () => {
  await applyDropin('examples/port-2222.ign');
  assert.deepEqual([await login(2222), await login(22)], ['alice', 'refused']);
  await applyDropin('examples/two-ports.ign');
  assert.deepEqual([await login(22), await login(2222)], ['alice', 'alice']);
  // The documentation address, swapped for one the container has.
  await applyDropin('examples/one-address.ign', (s) => s.replace('192.0.2.10', '127.0.0.1'));
  assert.deepEqual([await login(22), await login(2222)], ['alice', 'refused']);
  const ss = await listening();
  assert.match(ss, /127\.0\.0\.1:22 /);
  assert.doesNotMatch(ss, /(\*|\[::\]|0\.0\.0\.0):22 /);
  assert.equal((await h.show('lukko.socket', ['FreeBind'])).FreeBind, 'yes');
  await h.exec(['rm', '-r', '/etc/systemd/system/lukko.socket.d']);
  await h.systemctl(['daemon-reload']);
  await h.systemctl(['restart', 'lukko.socket']);
  assert.equal(await login(22), 'alice');
  assert.deepEqual(await h.failed(), []);
});

test('why the mask: sshd.socket on port 22 cannot start next to lukko.socket; moved to 2222 it can', async () => {
  await h.exec(['rm', '/etc/systemd/system/sshd.socket']); // unmask
  await h.systemctl(['daemon-reload']);
  const fight = await h.systemctl(['start', 'sshd.socket'], { allowFail: true });
  assert.notEqual(fight.code, 0);
  assert.match(await h.journal(['-u', 'sshd.socket', '-o', 'cat']), /Address already in use/);
  await h.systemctl(['reset-failed', 'sshd.socket']);
  await applyDropin('examples/sshd-port-2222.ign');
  const sshd = parseShow((await h.systemctl(['show', 'sshd.socket', '-p', 'ActiveState', '-p', 'Listen'])).stdout);
  assert.deepEqual(sshd, { ActiveState: 'active', Listen: '[::]:2222 (Stream)' });
  assert.equal(await login(22), 'alice');
  assert.deepEqual(await h.failed(), []);
});
