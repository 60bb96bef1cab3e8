// Authentication limits and what a client can learn from failures.
import assert from 'node:assert/strict';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Server, World } from '../helpers/fixture.ts';
import { sshPassword } from '../helpers/translation.ts';
import { authorize, childExits, cleanup, settled, clientKey, keyLine, makeWorld, ROOT, run, ssh, startServer } from '../helpers/fixture.ts';

let world: World;
let server: Server;
const bad: string[] = [];

before(async () => {
  world = makeWorld();
  authorize(world, 'alice', [keyLine(world, 'ed25519')]);
  for (let i = 0; i < 6; i++) bad.push(clientKey(join(world.dir, 'client'), `bad${i}`, 'ed25519'));
  server = await startServer(world);
});

after(async () => {
  await server?.stop();
  if (world) cleanup(world);
});

interface ParamikoResult {
  ok: boolean;
  allowed: string[] | null;
  ms: number;
  error: string | null;
}

async function paramiko(user: string, method: 'none' | 'publickey', key?: string): Promise<ParamikoResult> {
  const r = await run('/usr/bin/python3', [join(ROOT, 'test/helpers/paramiko_auth.py'), '127.0.0.1', String(server.port), user, method, ...(key ? [key] : [])]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as ParamikoResult;
}

describe('what a failure tells', () => {
  test('an unknown account and a wrong key look the same to OpenSSH', async () => {
    const wrongKey = await ssh(server, bad[0], 'alice', ['true']);
    const unknown = await ssh(server, world.keys.ed25519, 'nosuchuser', ['true']);
    assert.equal(wrongKey.code, 255);
    assert.equal(unknown.code, 255);
    assert.match(wrongKey.stderr, /alice@127\.0\.0\.1: Permission denied \(publickey\)\./);
    assert.match(unknown.stderr, /nosuchuser@127\.0\.0\.1: Permission denied \(publickey\)\./);
  });

  test('the none probe: the same method list for a known and an unknown account', async () => {
    const known = await paramiko('alice', 'none');
    const unknown = await paramiko('nosuchuser', 'none');
    assert.deepEqual(known.allowed, ['publickey']);
    assert.deepEqual(unknown.allowed, ['publickey']);
  });

  test('a real failed attempt (a signed request) is answered no sooner than 100 ms, known account or not', async () => {
    for (const user of ['alice', 'nosuchuser']) {
      const r = await paramiko(user, 'publickey', bad[1]);
      assert.equal(r.ok, false);
      assert.ok(r.ms >= 100, `${user}: answered after ${r.ms} ms`);
    }
    // and a good signed request goes through
    const good = await paramiko('alice', 'publickey', world.keys.ed25519);
    assert.equal(good.ok, true, good.error ?? '');
  });
});

describe('passwords', () => {
  test('without a translation server no password is offered or asked for', async () => {
    const r = await sshPassword(server, world.dir, 'alice', 'anything', ['true']);
    assert.equal(r.code, 255);
    assert.match(r.stderr, /alice@127\.0\.0\.1: Permission denied \(publickey\)\./);
    assert.doesNotMatch(r.stderr, /password/i);
  });
});

describe('limits', () => {
  test('five refused keys then the right one: logged in', async () => {
    const ids = [...bad.slice(0, 5), world.keys.ed25519!].flatMap((k) => ['-i', k]);
    const r = await ssh(server, undefined, 'alice', ['echo in'], { extra: ids });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'in\n');
  });

  test('six failed attempts end the connection', async () => {
    const ids = [...bad, world.keys.ed25519!].flatMap((k) => ['-i', k]);
    const r = await ssh(server, undefined, 'alice', ['true'], { extra: ids });
    assert.equal(r.code, 255);
    assert.match(r.stderr, /Too many authentication failures/);
  });

  test('an illegal user name is refused with a disconnect', async () => {
    for (const name of ['bad+name', 'x'.repeat(256)]) {
      const r = await ssh(server, world.keys.ed25519, name, ['true']);
      assert.equal(r.code, 255);
      assert.match(r.stderr, /Illegal user name/);
    }
  });

  test('no authentication request within 10 s: disconnected with "Timeout", process exits 0', async () => {
    await settled(server);
    const before = childExits(server).length;
    const t0 = Date.now();
    const received = await new Promise<string>((resolve) => {
      const s = net.connect(server.port, '127.0.0.1');
      let data = '';
      s.on('data', (d) => (data += d.toString('latin1')));
      s.on('connect', () => s.write('SSH-2.0-OpenSSH_9.2\r\n'));
      s.on('close', () => resolve(data));
      s.on('error', () => {});
    });
    const took = Date.now() - t0;
    assert.match(received, /^SSH-2\.0-lukko_/);
    assert.match(received, /Timeout/);
    assert.ok(took >= 9500 && took < 20000, `closed after ${took} ms`);
    for (let i = 0; i < 50 && childExits(server).length === before; i++) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(childExits(server).slice(before), [0]);
  });
});
