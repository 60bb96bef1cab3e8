// lukko-translation.socket and lukko-translation.service under a real systemd (257): the
// units verify cleanly, the first connection activates the service, which answers lukko's
// LOGIN requests from /etc/cm4all/lukko/users.ini inside its sandbox, reloads on `systemctl
// reload`, and fails visibly (status 78, file:line in the journal) with a broken user file,
// healing at the next connection once the file is fixed.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { hashPassword } from '../../src/translation-server/password-hash.ts';
import { CONFIG_DIR, Harness, LUKKO_DIR, ROOT, UNIT_DIR, waitFor } from '../helpers/harness.ts';

const h = new Harness({ name: 'lukko-translation-test' });
const USERS = `${CONFIG_DIR}/users.ini`;
const SOCKET = '/run/lukko/translation.socket';
const UNITS = ['lukko-translation.socket', 'lukko-translation.service'];
let hash = '';

const users = (extra = ''): string => `[alice]
uid = 2001
gid = 2001
home = /home/alice
shell = /bin/bash
password = ${hash}

[john.doe]
uid = 2002
gid = 2002
home = /home/john.doe
${extra}`;

// Inside the container, with the installed runtime and build: one request per line of
// argv[1] (JSON LoginRequest objects), one JSON answer per line.
const CLIENT = String.raw`
import net from 'node:net';
import { buildLoginRequest } from '${LUKKO_DIR}/dist/translation/login-request.js';
import { ResponseDecoder } from '${LUKKO_DIR}/dist/translation/codec.js';
import { parseLoginResponse } from '${LUKKO_DIR}/dist/translation/response.js';
for (const request of JSON.parse(process.argv[1])) {
  const answer = await new Promise((resolve, reject) => {
    const s = net.connect('${SOCKET}', () => s.write(buildLoginRequest(request)));
    const d = new ResponseDecoder();
    s.on('data', (chunk) => {
      const st = d.push(chunk);
      if (st.kind === 'need-more') return;
      s.end();
      const r = st.kind === 'complete' ? parseLoginResponse(st.packets) : st.error;
      resolve(r instanceof Error ? { error: r.message } : { status: r.status ?? 0, home: r.topLevel?.home, uid: r.topLevel?.uidGid?.uid, noPassword: r.noPassword });
    });
    s.on('error', (e) => resolve({ error: e.code }));
    s.on('end', () => resolve({ error: 'hung up' }));
  });
  console.log(JSON.stringify(answer));
}
`;

async function askAll(requests: object[]): Promise<Record<string, unknown>[]> {
  const r = await h.exec([`${LUKKO_DIR}/node/bin/node`, '--input-type=module', '-e', CLIENT, JSON.stringify(requests)]);
  return r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
}

before(async () => {
  hash = await hashPassword('s3cret');
  await h.boot();
  for (const unit of UNITS) await h.writeFile(`${UNIT_DIR}/${unit}`, readFileSync(join(ROOT, 'units', unit), 'utf8'));
  await h.writeFile(USERS, users(), '0600');
  await h.systemctl(['daemon-reload']);
  await h.systemctl(['enable', '--now', 'lukko-translation.socket']);
});
after(() => h.stop());

test('systemd-analyze verify passes on both units, with no warnings', async () => {
  const r = await h.exec(['systemd-analyze', 'verify', ...UNITS.map((u) => `${UNIT_DIR}/${u}`)], { allowFail: true });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr + r.stdout, '');
});

test('the first connection starts the service, which answers from users.ini', async () => {
  assert.equal((await h.show('lukko-translation.service', ['ActiveState'])).ActiveState, 'inactive');
  const socket = await h.show('lukko-translation.socket', ['ActiveState', 'Listen', 'SocketMode', 'Accept']);
  assert.deepEqual(socket, { ActiveState: 'active', Listen: `${SOCKET} (Stream)`, SocketMode: '0600', Accept: 'no' });
  assert.equal((await h.exec(['stat', '-c', '%a %U', SOCKET])).stdout.trim(), '600 root');

  const answers = await askAll([
    { service: 'ssh', user: 'alice' },
    { service: 'ssh', user: 'john.doe', listenerTag: 'public' },
    { service: 'ssh', user: 'nobody' },
    { service: 'ssh', user: 'alice', password: 's3cret' },
    { service: 'ssh', user: 'alice', password: 'wrong' },
  ]);
  assert.deepEqual(answers, [
    { status: 0, home: '/home/alice', uid: 2001 },
    { status: 0, home: '/home/john.doe', uid: 2002 },
    { status: 404 },
    { status: 0, home: '/home/alice', uid: 2001 },
    { status: 403 },
  ]);
  // Type=notify: READY=1 came, and the status line counts the accounts.
  const service = await h.show('lukko-translation.service', ['ActiveState', 'SubState', 'StatusText', 'NRestarts']);
  assert.deepEqual(service, { ActiveState: 'active', SubState: 'running', StatusText: `2 accounts from ${USERS}`, NRestarts: '0' });
  const journal = await h.journal(['-u', 'lukko-translation.service', '-o', 'cat']);
  assert.match(journal, /"msg":"translation server ready"/);
  assert.match(journal, /"user":"alice".*"outcome":"wrong-password"/);
  assert.doesNotMatch(journal, /s3cret/);
});

test('the sandbox: only the user file\'s directory of /etc, no capabilities, no network', async () => {
  const pid = (await h.show('lukko-translation.service', ['MainPID'])).MainPID;
  assert.ok(pid !== undefined && pid !== '0');
  // /proc/PID/root shows the file system as the service sees it.
  const seen = await h.sh(`cd /proc/${pid}/root && for f in etc/shadow etc/ssh etc/passwd ${USERS.slice(1)} home root; do if [ -e "$f" ] && [ -n "$(ls -A "$f" 2>/dev/null || echo file)" ]; then echo "$f yes"; else echo "$f no"; fi; done`);
  assert.deepEqual(seen.trim().split('\n'), ['etc/shadow no', 'etc/ssh no', 'etc/passwd no', `${USERS.slice(1)} yes`, 'home no', 'root no']);
  const status = await h.exec(['grep', '-E', '^Cap(Eff|Bnd):', `/proc/${pid}/status`]);
  assert.deepEqual(status.stdout.trim().split('\n').map((l) => l.split(/\s+/)[1]), ['0000000000000000', '0000000000000000']);
  const exposure = (await h.exec(['systemd-analyze', 'security', '--no-pager', 'lukko-translation.service'])).stdout;
  const score = /Overall exposure level for lukko-translation\.service: ([0-9.]+)/.exec(exposure)?.[1];
  console.log(`# systemd-analyze security: ${score}`);
  assert.ok(Number(score) <= 2.5, exposure.slice(-2000));
});

test('systemctl reload reads the file again; a broken version keeps the last good one', async () => {
  await h.writeFile(USERS, users('[bob]\nuid = 2003\ngid = 2003\nhome = /home/bob\n'), '0600');
  await h.systemctl(['reload', 'lukko-translation.service']);
  await waitFor('the reload', async () => ((await h.show('lukko-translation.service', ['StatusText'])).StatusText === `3 accounts from ${USERS}` ? true : undefined));
  assert.deepEqual(await askAll([{ service: 'ssh', user: 'bob' }]), [{ status: 0, home: '/home/bob', uid: 2003 }]);

  await h.writeFile(USERS, users('[bob]\nuid = 0\ngid = 2003\nhome = /home/bob\n'), '0600');
  await h.systemctl(['reload', 'lukko-translation.service']);
  assert.deepEqual(await askAll([{ service: 'ssh', user: 'bob' }]), [{ status: 0, home: '/home/bob', uid: 2003 }]);
  const journal = await waitFor('the error in the journal', async () => {
    const j = await h.journal(['-u', 'lukko-translation.service', '-o', 'cat', '-p', 'err']);
    return /user file has errors/.test(j) ? j : undefined;
  });
  assert.match(journal, /users\.ini:13: \[bob\] uid: \\"0\\" is not a uid/);
  assert.equal((await h.show('lukko-translation.service', ['ActiveState'])).ActiveState, 'active');
});

test('a broken user file at start fails the service with 78 and file:line, the socket stays; fixed, the next connection works', async () => {
  await h.systemctl(['stop', 'lukko-translation.service']);
  await h.writeFile(USERS, '[alice]\nuid = 2001\ngid = 2001\nhome = /home/alice\npassword = s3cret\n', '0600');
  // The next connection starts the service, which refuses the file: no answer for it (a
  // hang-up or a reset, as systemd closes the socket's queue).
  const [answer] = await askAll([{ service: 'ssh', user: 'alice' }]);
  assert.match(String(answer?.error), /^(hung up|ECONNRESET)$/);
  await waitFor('the failed service', async () => ((await h.show('lukko-translation.service', ['ActiveState'])).ActiveState === 'failed' ? true : undefined));
  const props = await h.show('lukko-translation.service', ['Result', 'ExecMainStatus', 'NRestarts']);
  assert.deepEqual(props, { Result: 'exit-code', ExecMainStatus: '78', NRestarts: '0' });
  const journal = await h.journal(['-u', 'lukko-translation.service', '-o', 'cat']);
  assert.match(journal, /lukko translation-server: \/etc\/cm4all\/lukko\/users\.ini:5: \[alice\] password: this looks like a plain-text password/);

  // The socket stays up: the server hung up on the connection that started it, so systemd
  // does not start it again and again until its start limit fails the socket.
  assert.equal((await h.show('lukko-translation.socket', ['ActiveState'])).ActiveState, 'active');

  // Fixed: the next connection starts it, without any systemctl command.
  await h.writeFile(USERS, users(), '0600');
  assert.deepEqual(await askAll([{ service: 'ssh', user: 'alice', password: 's3cret' }]), [{ status: 0, home: '/home/alice', uid: 2001 }]);
});
