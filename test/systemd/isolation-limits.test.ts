// Resource limits under real systemd: a translation response's CGROUP_SET and lukko.conf's
// `spawn` resources land on the connection's own lukko@ unit (systemctl set-property
// --runtime), `systemctl status` shows them, and a process that exceeds the memory limit is
// stopped by the kernel while the connection and its unit carry on. Where the container's
// cgroup v2 tree has no memory and pids controllers (a host that keeps them in cgroup v1),
// nothing could enforce the limits: then the session must be refused, never run without them.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CONFIG_DIR, Harness, ROOT, SshClient, UNIT_DIR, waitFor } from '../helpers/harness.ts';

const h = new Harness({ name: 'lukko-isolation-limits-test' });
const client = new SshClient(h);

before(async () => {
  await h.boot();
  await h.installUnits();
  for (const unit of ['lukko-translation.socket', 'lukko-translation.service']) {
    await h.writeFile(`${UNIT_DIR}/${unit}`, readFileSync(join(ROOT, 'units', unit), 'utf8'));
  }
  await h.systemctl(['daemon-reload']);
  await h.installConfig('translation_server "/run/lukko/translation.socket"\nlistener {\n  bind "*:22"\n}\nspawn {\n  TasksMax 77\n}\n');
  const key = (await client.init()).trim();
  await h.exec(['sh', '-c', 'mkdir -p /srv/limited && chown 2001:2001 /srv/limited']);
  await h.writeFile(`${CONFIG_DIR}/users.ini`, `[limited]
uid = 2001
gid = 2001
home = /srv/limited
shell = /bin/bash
authorized_keys[] = ${key}
cgroup = customer-1
cgroup_set[] = memory.max=160M
cgroup_set[] = memory.swap.max=0
cgroup_set[] = pids.max=50
`, '0600');
  await client.trustHostKey();
  await h.systemctl(['enable', '--now', 'lukko-translation.socket', 'lukko.socket']);
});
after(async () => {
  await h.stop();
  client.cleanup();
});

let controllers: string[] = [];
const enforceable = (): boolean => controllers.includes('memory') && controllers.includes('pids');

test('the controllers the container can use', async () => {
  const root = (await h.sh("awk '$3 == \"cgroup2\" { print $2; exit }' /proc/mounts")).trim();
  assert.ok(root, 'no cgroup2 mount in the container');
  controllers = (await h.sh(`cat ${root}/cgroup.controllers`)).trim().split(/\s+/).filter((c) => c !== '');
  console.log(`# cgroup v2 controllers in the container: ${controllers.join(' ') || '(none)'}`);
});

test('without memory and pids controllers the session is refused, with a clear message and a log line', async (t) => {
  if (enforceable()) return t.skip('this host delegates the controllers: the limits are enforced (next tests)');
  const r = await client.ssh('limited', 'echo ran', { allowFail: true });
  assert.notEqual(r.stdout, 'ran\n');
  assert.match(r.stderr, /lukko: session refused: its resource limits cannot be enforced/);
  const journal = await h.journal(['-t', 'lukko', '-o', 'cat']);
  assert.match(journal, /session refused: resource limits cannot be enforced/);
  assert.match(journal, /(MemoryMax|MemorySwapMax|TasksMax) cannot be enforced/);
  assert.deepEqual((await h.failed()).filter((u) => u.unit.startsWith('lukko')), []);
});

test('CGROUP_SET and spawn resources are on the connection\'s unit and in systemctl status', async (t) => {
  if (!enforceable()) return t.skip('no memory/pids controllers in this container (refused instead: previous test)');
  const live = client.ssh('limited', 'cat /proc/self/cgroup; sleep 4');
  try {
    const unit = await waitFor('the session\'s lukko@ unit with its limits', async () => {
      for (const u of (await h.units('lukko@*')).filter((x) => x.active === 'active')) {
        const p = await h.show(u.unit, ['MemoryMax', 'TasksMax']);
        if (p.MemoryMax === String(160 * 2 ** 20)) return { unit: u.unit, props: p };
      }
      return undefined;
    });
    // pids.max=50 is stricter than lukko.conf's TasksMax 77: the stricter wins.
    assert.equal(unit.props.TasksMax, '50');
    const status = (await h.systemctl(['status', '--no-pager', '--lines=0', unit.unit])).stdout;
    assert.match(status, /Memory: .*max: 160M/);
    assert.match(status, /Tasks: \d+ \(limit: 50\)/);
    const cgroup = (await h.sh(`cat "$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)/system.slice/system-lukko.slice/${unit.unit}/memory.max"`)).trim();
    assert.equal(cgroup, String(160 * 2 ** 20));
  } finally {
    const r = await live;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^0::\/system\.slice\/system-lukko\.slice\/lukko@/m);
  }
});

test('a process that exceeds the memory limit is killed; the session and the unit go on', async (t) => {
  if (!enforceable()) return t.skip('no memory/pids controllers in this container (refused instead)');
  // tail keeps a line without a newline in memory: 400 MiB of zeros outgrow 160M.
  const r = await client.ssh('limited', 'head -c 400M /dev/zero | tail > /dev/null; echo "tail: $?"; echo still here', { timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^tail: 137\nstill here\n$/);
  assert.deepEqual((await h.failed()).filter((u) => u.unit.startsWith('lukko')), []);
});
