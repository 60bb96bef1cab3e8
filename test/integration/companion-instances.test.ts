// Real instances reporting to a real `lukko companion`: OpenSSH logins (good and bad keys,
// sftp, a -W forward) become the original's metrics; the tarpit and max_connections_per_ip
// are held by the companion across instances and sources; with the companion gone or silent,
// logins still work and nothing waits long.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Server, World } from '../helpers/fixture.ts';
import { authorize, cleanup, copyArgs, keyLine, makeWorld, run, settled, ssh, sshArgs, startServer } from '../helpers/fixture.ts';
import type { Companion } from '../helpers/companion.ts';
import { sample, scrape, startCompanion as start } from '../helpers/companion.ts';

let world: World;
const companions: Companion[] = [];
const servers: Server[] = [];

async function startCompanion(name: string): Promise<Companion> {
  const c = await start(world.dir, name);
  companions.push(c);
  return c;
}

before(() => {
  world = makeWorld({ keyTypes: { good: ['ed25519'], bad: ['ed25519'] } });
  authorize(world, 'alice', [keyLine(world, 'good')]);
});
after(async () => {
  for (const s of servers) await s.stop();
  for (const c of companions) if (c.proc.exitCode === null) c.proc.kill('SIGKILL');
  cleanup(world);
});

function listener(lines: string): void {
  writeFileSync(world.configPath, `listener {\n  bind "127.0.0.1:22"\n${lines}}\n`);
}

async function serve(companion: string | undefined): Promise<Server> {
  const s = await startServer(world, { env: { LUKKO_COMPANION_SOCKET: companion ?? '' } });
  servers.push(s);
  return s;
}

/** Waits until every per-connection process has reported its end (they flush at exit). */
async function quiet(server: Server): Promise<void> {
  await settled(server);
}

function echoServer(): Promise<{ port: number; close(): void }> {
  return new Promise((resolve) => {
    const srv = net.createServer((s) => s.pipe(s));
    srv.listen(0, '127.0.0.1', () => resolve({ port: (srv.address() as net.AddressInfo).port, close: () => srv.close() }));
  });
}

test('real logins become the original metrics, and promtool accepts the page', async () => {
  listener('');
  const c = await startCompanion('metrics');
  const server = await serve(c.socket);
  const before = await scrape(c.metricsPort);
  const echo = await echoServer();
  try {
    const ok = await ssh(server, world.keys.good, 'alice', ['cat > /dev/null; echo done'], { input: Buffer.alloc(1 << 20, 7) });
    assert.equal(ok.code, 0, ok.stderr);
    const badKey = await ssh(server, world.keys.bad, 'alice', ['true']);
    assert.equal(badKey.code, 255);
    const unknown = await ssh(server, world.keys.good, 'nosuchuser', ['true']);
    assert.equal(unknown.code, 255);
    writeFileSync(join(world.dir, 'up.txt'), 'sftp payload\n');
    const sftp = await run('sftp', [...copyArgs(server.port, world.keys.good!), '-b', '-', 'alice@127.0.0.1'], { input: `put ${join(world.dir, 'up.txt')} up.txt\nls\n` });
    assert.equal(sftp.code, 0, sftp.stderr);
    const fwd = await run('ssh', [...sshArgs(server.port, world.keys.good, 'alice', ['-W', `127.0.0.1:${echo.port}`])], { input: 'through the tunnel\n' });
    assert.equal(fwd.stdout, 'through the tunnel\n', fwd.stderr);
  } finally {
    echo.close();
  }
  await quiet(server);
  // Five client connections; both instances flushed their last report before exiting.
  let after = await scrape(c.metricsPort);
  const delta = (key: string) => sample(after, key) - sample(before, key);
  for (let i = 0; i < 100 && sample(after, 'lukko_connections_active') !== 0; i++) {
    await new Promise((r) => setTimeout(r, 50));
    after = await scrape(c.metricsPort);
  }
  assert.equal(delta('lukko_connections_accepted'), 5);
  assert.equal(delta('lukko_userauth_accepted{method="publickey"}'), 3, 'exec, sftp and -W logged in');
  assert.equal(delta('lukko_userauth_failed{method="publickey"}'), 1, 'the bad key');
  assert.equal(delta('lukko_userauth_failed{method="unknown"}'), 1, 'nosuchuser');
  // every request counts: none probes, the key queries (PK_OK) and the signed requests
  assert.ok(delta('lukko_userauth_received') >= 5 + 3 + 3, `received ${delta('lukko_userauth_received')}`);
  assert.equal(delta('lukko_children_spawned'), 2, 'the exec and the sftp-server');
  assert.equal(delta('lukko_children_exited'), 2);
  assert.equal(delta('lukko_spawn_errors'), 0);
  assert.ok(delta('lukko_total_spawn_duration') > 0);
  assert.ok(delta('lukko_bytes_received') >= 1 << 20, `bytes received ${delta('lukko_bytes_received')}`);
  assert.ok(delta('lukko_bytes_sent') > 0 && delta('lukko_packets_sent') > 0 && delta('lukko_packets_received') > 0);
  assert.equal(sample(after, 'lukko_connections_active'), 0);
  assert.equal(sample(after, 'lukko_children'), 0);

  const promtool = spawnSync('promtool', ['check', 'metrics'], { input: after, encoding: 'utf8' });
  assert.notEqual(promtool.error?.message ?? '', 'spawnSync promtool ENOENT', 'promtool is installed by scripts/setup.sh');
  const problems = `${promtool.stdout}${promtool.stderr}`.split('\n').filter((l) => l.trim() && !/counter metrics should have "_total" suffix/.test(l));
  assert.deepEqual(problems, []);
  await server.stop();
  await c.stop();
});

test('tarpit: ten failed logins slow the next ones from that source only', async () => {
  listener('  tarpit yes\n');
  const c = await startCompanion('tarpit');
  const server = await serve(c.socket);
  const before = await scrape(c.metricsPort);
  // Ten at once: 10 accepts plus their auth costs empty the bucket (burst 10, 1/s).
  const failed = await Promise.all(Array.from({ length: 10 }, () => ssh(server, world.keys.bad, 'alice', ['true'])));
  for (const f of failed) assert.equal(f.code, 255);
  const slow = await ssh(server, world.keys.bad, 'alice', ['true']);
  assert.equal(slow.code, 255);
  await quiet(server);
  const delays = server
    .events()
    .filter((e) => typeof e.msg === 'string' && /^(Connect from 127\.0\.0\.1|Userauth) tarpit /.test(e.msg))
    .map((e) => e.delay as number);
  assert.ok(delays.length > 0, 'the instances applied tarpit delays');
  for (const d of delays) assert.ok(d > 0 && d <= 60 && Math.abs(d * 10 - Math.round(d * 10)) < 1e-9, `delay ${d} is a multiple of 100 ms`);
  // The delays the last attempt slept are part of its time (at least the connect delay).
  // The attempt after the ten (the last instance to start) slept its delays: at accept and
  // before its auth requests, each the companion's current figure for that source.
  const lastPid = server.events().filter((e) => e.msg === 'connection').at(-1)!.pid;
  const slept = server
    .events()
    .filter((e) => e.pid === lastPid && typeof e.msg === 'string' && e.msg.includes(' tarpit '))
    .reduce((sum, e) => sum + (e.delay as number), 0);
  assert.ok(slept >= 0.1, `the next attempt was delayed (${slept} s)`);
  assert.ok(slow.ms >= slept * 1000, `it took ${slow.ms} ms, at least the ${slept} s it was told to sleep`);
  const companionLines = c.out().split('\n').filter((l) => l.includes('Connect from 127.0.0.1 tarpit'));
  assert.ok(companionLines.length > 0, c.out());
  const after = await scrape(c.metricsPort);
  assert.ok(sample(after, 'lukko_tarpit') - sample(before, 'lukko_tarpit') >= delays.length);

  // Another source (127.0.0.2) is not delayed at all and logs in.
  const other = await run('ssh', [...sshArgs(server.port, world.keys.good, 'alice', ['-b', '127.0.0.2']), 'echo other']);
  assert.equal(other.stdout, 'other\n', other.stderr);
  await quiet(server);
  const otherTarpit = server.events().filter((e) => e.client === '127.0.0.2' && typeof e.msg === 'string' && e.msg.includes('tarpit'));
  assert.deepEqual(otherTarpit, []);
  await server.stop();
  await c.stop();
});

test('max_connections_per_ip: the third connection from a source is refused with the DISCONNECT text, another source is not', async () => {
  listener('  max_connections_per_ip 2\n');
  const c = await startCompanion('limit');
  const server = await serve(c.socket);
  const before = await scrape(c.metricsPort);
  const holders = [0, 1].map(() => ssh(server, world.keys.good, 'alice', ['sleep 4']));
  // wait until both hold a session
  for (let i = 0; i < 200; i++) {
    if (server.events().filter((e) => e.msg === 'session start').length >= 2) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  const third = await ssh(server, world.keys.good, 'alice', ['true']);
  assert.equal(third.code, 255);
  assert.match(third.stderr, /Too many connections/);
  const other = await run('ssh', [...sshArgs(server.port, world.keys.good, 'alice', ['-b', '127.0.0.2']), 'echo other']);
  assert.equal(other.stdout, 'other\n', other.stderr);
  for (const h of await Promise.all(holders)) assert.equal(h.code, 0, h.stderr);
  // Freed: the next one from the first source works again.
  const again = await ssh(server, world.keys.good, 'alice', ['echo again']);
  assert.equal(again.stdout, 'again\n', again.stderr);
  await quiet(server);
  const after = await scrape(c.metricsPort);
  assert.equal(sample(after, 'lukko_connections_rejected') - sample(before, 'lukko_connections_rejected'), 1);
  assert.match(c.out(), /Too many connections from 127\.0\.0\.1/);
  await server.stop();
  await c.stop();
});

test('with the companion stopped, or alive but silent, logins under tarpit and limits still work', async () => {
  listener('  tarpit yes\n  max_connections_per_ip 1\n');
  // No companion at that path.
  const absent = await serve(join(world.dir, 'nobody-home.socket'));
  const r1 = await ssh(absent, world.keys.good, 'alice', ['echo up']);
  assert.equal(r1.stdout, 'up\n', r1.stderr);
  await absent.stop();
  // A socket that accepts and never answers: the instance waits at most ADMIT_TIMEOUT_MS.
  const silentPath = join(world.dir, 'silent.socket');
  const silent = net.createServer(() => {});
  await new Promise<void>((resolve) => silent.listen(silentPath, resolve));
  try {
    const s = await serve(silentPath);
    const r2 = await ssh(s, world.keys.good, 'alice', ['echo still up']);
    assert.equal(r2.stdout, 'still up\n', r2.stderr);
    await s.stop();
  } finally {
    silent.close();
  }
});
