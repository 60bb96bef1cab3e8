// Exit statuses: 0 for anything the client or the network does, 78 for our configuration,
// promptly, because systemd turns every non-zero exit into a failed unit.
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Server, World } from '../helpers/fixture.ts';
import { authorize, childExits, cleanup, settled, keyLine, MAIN, makeWorld, NODE, run, ssh, startServer } from '../helpers/fixture.ts';

let world: World;
let server: Server;

before(async () => {
  world = makeWorld();
  authorize(world, 'alice', [keyLine(world, 'ed25519')]);
  server = await startServer(world);
});

after(async () => {
  await server?.stop();
  if (world) cleanup(world);
});

async function exitsAfter(count: number, action: () => Promise<void>): Promise<number[]> {
  await settled(server);
  const before = childExits(server).length;
  await action();
  for (let i = 0; i < 200 && childExits(server).length < before + count; i++) await new Promise((r) => setTimeout(r, 25));
  return childExits(server).slice(before);
}

function connect(): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(server.port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  });
}

describe('noise never fails the per-connection process', () => {
  test('connect and close', async () => {
    let t0 = 0;
    const exits = await exitsAfter(5, async () => {
      t0 = Date.now();
      for (let i = 0; i < 5; i++) (await connect()).end();
    });
    assert.deepEqual(exits, [0, 0, 0, 0, 0]);
    // promptly: well before the 10 s authentication timer would have ended them
    assert.ok(Date.now() - t0 < 8000, `took ${Date.now() - t0} ms`);
  });

  test('connect and reset (RST, as port scanners do)', async () => {
    const exits = await exitsAfter(5, async () => {
      for (let i = 0; i < 5; i++) {
        const s = await connect();
        await new Promise((r) => setTimeout(r, 20));
        s.resetAndDestroy();
      }
    });
    assert.deepEqual(exits, [0, 0, 0, 0, 0]);
  });

  test('garbage instead of an SSH identification, and a client that stops mid-key-exchange', async () => {
    const exits = await exitsAfter(2, async () => {
      const a = await connect();
      const aClosed = new Promise((r) => a.on('close', r)); // before anything can close it
      a.write('GET / HTTP/1.0\r\n\r\n');
      a.on('data', () => {});
      const b = await connect();
      b.on('data', () => {});
      // identification and a truncated KEXINIT packet, then the client vanishes
      b.write('SSH-2.0-OpenSSH_9.2\r\n');
      b.write(Buffer.from([0, 0, 1, 0, 4, 20, 1, 2, 3]));
      await new Promise((r) => setTimeout(r, 300));
      b.destroy();
      await aClosed;
    });
    assert.deepEqual(exits, [0, 0]);
  });

  test('a client that disconnects after logging in', async () => {
    const exits = await exitsAfter(1, async () => {
      const r = await ssh(server, world.keys.ed25519, 'alice', ['true']);
      assert.equal(r.code, 0);
    });
    assert.deepEqual(exits, [0]);
  });
});

describe('configuration faults are visible', () => {
  test('a broken lukko.conf: exit 78 naming file:line; fixed, the next connection works without a restart', async () => {
    const good = readFileSync(world.configPath, 'utf8');
    writeFileSync(world.configPath, `${good}listener {\n  bind "127.0.0.1:22" # comment\n}\n`);
    try {
      const exits = await exitsAfter(1, async () => {
        const r = await ssh(server, world.keys.ed25519, 'alice', ['true']);
        assert.equal(r.code, 255);
      });
      assert.deepEqual(exits, [78]);
      assert.match(server.output(), new RegExp(`${world.configPath.replace(/[.]/g, '\\.')}:5: Unexpected tokens at end of line`));
    } finally {
      writeFileSync(world.configPath, good);
    }
    const r = await ssh(server, world.keys.ed25519, 'alice', ['echo fixed']);
    assert.equal(r.stdout, 'fixed\n');
  });

  test('no host key: exit 78, never a key made up for the connection', async () => {
    const keys = ['host_ed25519_key', 'host_ecdsa_key'].map((f) => join(world.configDir, f));
    const saved = keys.map((k) => readFileSync(k));
    for (const k of keys) rmSync(k);
    try {
      const exits = await exitsAfter(1, async () => {
        const r = await ssh(server, world.keys.ed25519, 'alice', ['true']);
        assert.equal(r.code, 255);
      });
      assert.deepEqual(exits, [78]);
      assert.match(server.output(), /no host key/);
    } finally {
      keys.forEach((k, i) => writeFileSync(k, saved[i]!, { mode: 0o600 }));
    }
  });

  test("a listener's host_key_file is the key clients see, instead of the defaults", async () => {
    const good = readFileSync(world.configPath, 'utf8');
    const own = join(world.dir, 'listener-key');
    await run('ssh-keygen', ['-q', '-t', 'ecdsa', '-b', '384', '-N', '', '-f', own]);
    writeFileSync(world.configPath, `listener {\n  bind "127.0.0.1:22"\n  host_key_file "${own}"\n}\n`);
    try {
      const r = await run('ssh-keyscan', ['-p', String(server.port), '127.0.0.1']);
      const keys = r.stdout.trim().split('\n').map((l) => l.split(' ').slice(1).join(' '));
      assert.deepEqual(keys, [readFileSync(`${own}.pub`, 'utf8').split(' ').slice(0, 2).join(' ')]);
    } finally {
      writeFileSync(world.configPath, good);
    }
  });

  test('lukko connection without a socket: exit 78 with a reason', async () => {
    const r = await run(NODE, [MAIN, 'connection', '--config', world.configPath], { env: { ...process.env, LISTEN_FDS: '1', LISTEN_PID: '1' } });
    assert.equal(r.code, 78);
    assert.match(r.stderr, /LISTEN_PID/);
  });

  test('check-config prints the effective listeners, and fails with file:line', async () => {
    const ok = await run(NODE, [MAIN, 'check-config', '--config', world.configPath]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /listener 127\.0\.0\.1:22/);
    const broken = join(world.dir, 'broken.conf');
    writeFileSync(broken, 'listener {\n  bind "127.0.0.1:22"\n  tarpit maybe\n}\n');
    const bad = await run(NODE, [MAIN, 'check-config', '--config', broken]);
    assert.equal(bad.code, 78);
    assert.match(bad.stderr, /broken\.conf:3: yes\/no expected/);
  });
});

describe('settings this release cannot honour', () => {
  test('proxying: exit 78 with the reason, never run without it', async () => {
    const good = readFileSync(world.configPath, 'utf8');
    for (const [extra, reason] of [
      ['target_host backend {\n  address "127.0.0.1"\n  host_key_file "/dev/null"\n}\nlistener {\n  bind "127.0.0.1:22"\n  proxy_to backend\n}\n', /proxy_to is not supported/],
    ] as const) {
      writeFileSync(world.configPath, /^(listener|target_host)/.test(extra) ? extra : good + extra);
      try {
        const exits = await exitsAfter(1, async () => {
          const r = await ssh(server, world.keys.ed25519, 'alice', ['true']);
          assert.equal(r.code, 255);
        });
        assert.deepEqual(exits, [78]);
        assert.match(server.output(), reason);
      } finally {
        writeFileSync(world.configPath, good);
      }
    }
  });
});

describe('stopped from outside', () => {
  test('SIGTERM (systemctl stop): the client is told, the session ends, exit 0', async () => {
    await settled(server);
    const started = server.events().filter((e) => e.msg === 'connection process started').length;
    const client = ssh(server, world.keys.ed25519, 'alice', ['echo up; sleep 300'], { timeout: 20000 });
    let pid: number | undefined;
    for (let i = 0; i < 200 && pid === undefined; i++) {
      await new Promise((r) => setTimeout(r, 25));
      const ev = server.events().filter((e) => e.msg === 'connection process started');
      if (ev.length > started && server.output().includes('"msg":"session start"')) pid = ev[ev.length - 1]!.child as number;
    }
    assert.ok(pid, 'found the connection process');
    await new Promise((r) => setTimeout(r, 300));
    process.kill(pid!, 'SIGTERM');
    const r = await client;
    assert.equal(r.stdout, 'up\n');
    assert.match(r.stderr, /Server shutting down/);
    await settled(server);
    assert.deepEqual(childExits(server).slice(-1), [0]);
  });
});
