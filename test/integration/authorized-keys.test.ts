// Every authorized_keys option lukko knows, allowed and refused, through the real client.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Server, World } from '../helpers/fixture.ts';
import { authorize, cleanup, copyArgs, keyLine, makeWorld, publicKey, run, ssh, startServer } from '../helpers/fixture.ts';

let world: World;
let server: Server;

before(async () => {
  world = makeWorld({ keyTypes: { ed25519: ['ed25519'], global: ['ed25519'] } });
  server = await startServer(world);
});

after(async () => {
  await server?.stop();
  if (world) cleanup(world);
});

/** Logs in as alice with a key whose line carries `options`. */
async function withOptions(options: string, command: string[] = ['echo ok'], extra: string[] = []) {
  authorize(world, 'alice', [keyLine(world, 'ed25519', options)]);
  return ssh(server, world.keys.ed25519, 'alice', command, { extra });
}

function logSince(mark: number): string {
  return server.output().slice(mark);
}

describe('command=', () => {
  test('forces the command for exec, with SSH_ORIGINAL_COMMAND', async () => {
    const r = await withOptions('command="echo forced; printenv SSH_ORIGINAL_COMMAND"', ['whoami', 'x']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'forced\nwhoami x\n');
  });

  test('forces it for a shell request, without SSH_ORIGINAL_COMMAND', async () => {
    const r = await withOptions('command="echo forced; printenv SSH_ORIGINAL_COMMAND || echo unset"', []);
    assert.equal(r.stdout, 'forced\nunset\n');
  });

  test('forces it for the sftp subsystem too', async () => {
    authorize(world, 'alice', [keyLine(world, 'ed25519', 'command="echo forced-$SSH_ORIGINAL_COMMAND >&2"')]);
    const r = await run('sftp', ['-b', '-', ...copyArgs(server.port, world.keys.ed25519!), 'alice@127.0.0.1'], { input: 'pwd\n' });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /forced-\/.*sftp-server/);
  });
});

describe('from=', () => {
  for (const [pattern, ok] of [
    ['127.0.0.1', true],
    ['127.0.0.0/8', true],
    ['10.*,127.0.0.?', true],
    ['10.0.0.0/8', false],
    ['!127.0.0.1,*', false],
    ['192.0.2.1', false],
  ] as const) {
    test(`from="${pattern}" ${ok ? 'allows' : 'refuses'} a client at 127.0.0.1`, async () => {
      const mark = server.output().length;
      const r = await withOptions(`from="${pattern}"`);
      assert.equal(r.code, ok ? 0 : 255, r.stderr);
      if (!ok) assert.match(logSince(mark), /key refused by its options/);
    });
  }
});

describe('pty options', () => {
  for (const [options, tty] of [
    ['', true],
    ['no-pty', false],
    ['restrict', false],
    ['restrict,pty', true],
    ['no-pty,pty', true],
  ] as const) {
    test(`${options || '(none)'}: ${tty ? 'a tty' : 'no tty'}`, async () => {
      const r = await withOptions(options, ['tty'], ['-tt']);
      if (tty) {
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /\/dev\/pts\/\d+/);
      } else {
        // OpenSSH clients since 8.x treat a refused pty as fatal when one was forced (-tt)
        assert.doesNotMatch(r.stdout, /\/dev\/pts/);
        assert.match(r.stderr, /PTY allocation request failed/);
      }
    });
  }
});

describe('options lukko accepts and applies', () => {
  for (const options of ['no-agent-forwarding', 'no-X11-forwarding', 'no-user-rc', 'user-rc', 'agent-forwarding', 'port-forwarding', 'no-port-forwarding', 'permitopen="127.0.0.1:80"', 'permitlisten="localhost:2022"', 'permitopen="none"', 'expiry-time="20991231"']) {
    test(`${options}: login works`, async () => {
      const r = await withOptions(options);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'ok\n');
    });
  }

  test('expiry-time in the past refuses the key', async () => {
    const r = await withOptions('expiry-time="20200101"');
    assert.equal(r.code, 255);
  });

  test('no-port-forwarding: ssh -W is refused, the connection goes on', async () => {
    const r = await withOptions('no-port-forwarding', [], ['-v', '-W', '127.0.0.1:9']);
    assert.equal(r.code, 255);
    assert.match(r.stderr, /administratively prohibited/);
  });

  test('home-read-only: a system account\'s home is read-only in that session, readable as before', async () => {
    const r = await withOptions('home-read-only', ['cat ~/.ssh/authorized_keys >/dev/null && echo read; touch ~/written 2>&1; echo $?']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^read\n.*Read-only file system\n1\n$/s);
  });
});

describe('lines lukko refuses', () => {
  for (const options of ['environment="A=B"', 'tunnel="1"', 'principals="x"', 'no-pty=yes', 'command=""', 'from="10.0.0.0/99"', 'expiry-time="tomorrow"']) {
    test(`${options}: the line is unusable and the log says why`, async () => {
      const mark = server.output().length;
      const r = await withOptions(options);
      assert.equal(r.code, 255, r.stdout);
      assert.match(logSince(mark), /authorized_keys line unusable|key refused by its options/);
    });
  }
});

describe('key files', () => {
  test('the global authorized_keys is valid for every account', async () => {
    writeFileSync(join(world.configDir, 'authorized_keys'), keyLine(world, 'global') + '\n');
    try {
      for (const user of ['alice', 'bob']) {
        const r = await ssh(server, world.keys.global, user, ['whoami']);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, `${user}\n`);
      }
    } finally {
      unlinkSync(join(world.configDir, 'authorized_keys'));
    }
  });

  test('a group-writable ~/.ssh makes the file ignored (StrictModes), with a log line', async () => {
    authorize(world, 'alice', [keyLine(world, 'ed25519')]);
    const ssh_ = join(world.users.alice!.home, '.ssh');
    chmodSync(ssh_, 0o770);
    const mark = server.output().length;
    try {
      const r = await ssh(server, world.keys.ed25519, 'alice', ['true']);
      assert.equal(r.code, 255);
      assert.match(logSince(mark), /writable by group or others/);
    } finally {
      chmodSync(ssh_, 0o700);
    }
  });

  test('an authorized_keys symlink leading out of the home directory is not followed', async () => {
    const outside = join(world.dir, 'outside');
    mkdirSync(outside, { recursive: true });
    writeFileSync(join(outside, 'keys'), publicKey(world.keys.ed25519!) + '\n');
    const file = join(world.users.alice!.home, '.ssh', 'authorized_keys');
    unlinkSync(file);
    symlinkSync(join(outside, 'keys'), file);
    const mark = server.output().length;
    try {
      const r = await ssh(server, world.keys.ed25519, 'alice', ['true']);
      assert.equal(r.code, 255);
      assert.match(logSince(mark), /outside the home directory/);
    } finally {
      unlinkSync(file);
    }
  });

  test('a FIFO as authorized_keys neither hangs nor authorizes', async () => {
    const file = join(world.users.alice!.home, '.ssh', 'authorized_keys');
    try {
      unlinkSync(file);
    } catch {
      /* absent */
    }
    await run('mkfifo', [file]);
    try {
      const r = await ssh(server, world.keys.ed25519, 'alice', ['true'], { timeout: 10000 });
      assert.equal(r.code, 255);
      assert.ok(r.ms < 5000, `took ${r.ms} ms`);
    } finally {
      unlinkSync(file);
    }
  });
});
