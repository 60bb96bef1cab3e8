// sftp and scp through the system's OpenSSH sftp-server, run as the user.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Server, World } from '../helpers/fixture.ts';
import { authorize, cleanup, copyArgs, keyLine, makeWorld, run, startServer } from '../helpers/fixture.ts';

let world: World;
let server: Server;
let local: string;
let digest: string;

const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

before(async () => {
  world = makeWorld();
  authorize(world, 'alice', [keyLine(world, 'ed25519')]);
  server = await startServer(world);
  local = join(world.dir, 'ten-mb');
  writeFileSync(local, randomBytes(10 * 1024 * 1024));
  digest = sha(local);
});

after(async () => {
  await server?.stop();
  if (world) cleanup(world);
});

test('sftp: put, ls and get of a 10 MB file; the copy belongs to the user', async () => {
  const back = join(world.dir, 'back');
  const r = await run('sftp', ['-b', '-', ...copyArgs(server.port, world.keys.ed25519!), 'alice@127.0.0.1'], {
    input: `put ${local} up.bin\nls -l up.bin\nget up.bin ${back}\npwd\n`,
    timeout: 60000,
  });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /up\.bin/);
  assert.match(r.stdout, /10485760/);
  assert.match(r.stdout, new RegExp(`Remote working directory: ${world.users.alice!.home}`));
  const remote = join(world.users.alice!.home, 'up.bin');
  assert.equal(sha(remote), digest);
  assert.equal(sha(back), digest);
  assert.equal(statSync(remote).uid, world.users.alice!.uid);
});

for (const mode of [[], ['-O']]) {
  test(`scp ${mode.length ? '-O (legacy scp protocol, over exec)' : '(SFTP protocol)'} both ways`, async () => {
    const name = `scp${mode.length}.bin`;
    const up = await run('scp', [...mode, ...copyArgs(server.port, world.keys.ed25519!), local, `alice@127.0.0.1:${name}`], { timeout: 60000 });
    assert.equal(up.code, 0, up.stderr);
    assert.equal(sha(join(world.users.alice!.home, name)), digest);
    const down = join(world.dir, `down-${name}`);
    const r = await run('scp', [...mode, ...copyArgs(server.port, world.keys.ed25519!), `alice@127.0.0.1:${name}`, down], { timeout: 60000 });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(sha(down), digest);
  });
}
