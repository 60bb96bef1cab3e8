// Control commands with real effects on real sessions: `lukko companion` with an AF_UNIX
// control socket, `lukko serve` whose instances report to it, accounts from a real
// `lukko translation-server` (one with CHILD_TAG site-42, one without), the OpenSSH client.
// VERBOSE changes what a new connection logs; TERMINATE_CHILDREN ends the tagged live session
// (the client sees it end) and leaves the other alone; the same datagram from uid 65534 is
// refused.
import assert from 'node:assert/strict';
import { chownSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Companion } from '../helpers/companion.ts';
import { sample, scrape, sendUnix, sendUnixAsNobody, startCompanion, terminateDatagram, verboseDatagram } from '../helpers/companion.ts';
import type { Server, World } from '../helpers/fixture.ts';
import { cleanup, makeWorld, publicKey, settled, ssh, startServer } from '../helpers/fixture.ts';
import { useTranslationServer } from '../helpers/translation.ts';

let world: World;
let companion: Companion;
let server: Server;
let translation: Awaited<ReturnType<typeof useTranslationServer>>;
let control: string;

function account(name: string, uid: number, extra: string): string {
  const home = join(world.dir, 'ts-home', name);
  mkdirSync(home, { recursive: true });
  chownSync(home, uid, uid);
  return `[${name}]\nuid = ${uid}\ngid = ${uid}\nhome = ${home}\nshell = /bin/bash\nauthorized_keys[] = ${publicKey(world.keys.ed25519!)}\nno_home_authorized_keys = true\n${extra}\n`;
}

before(async () => {
  world = makeWorld();
  const base = world.users.alice!.uid + 7;
  translation = await useTranslationServer(world, account('tagged', base, 'child_tag[] = customer-1\nchild_tag[] = site-42\n') + account('untagged', base + 1, 'child_tag[] = site-4\n'));
  // An abstract name: reachable by every local user, so only the sender's uid protects it.
  control = `@lukko-commands-test-${process.pid}`;
  companion = await startCompanion(world.dir, 'commands', `control {\n  bind "${control}"\n}\n`);
  server = await startServer(world, { logLevel: 'info', env: { LUKKO_COMPANION_SOCKET: companion.socket } });
});

after(async () => {
  await server?.stop();
  await companion?.stop();
  translation?.proc.kill('SIGTERM');
  if (world) cleanup(world);
});

/** Log lines of the instance that served the connection logged in as `user` most recently. */
function instanceLines(user: string): Record<string, unknown>[] {
  const events = server.events();
  const pid = events.filter((e) => e.msg === 'accepted' && e.user === user).at(-1)?.pid;
  assert.ok(pid, `no instance for ${user}`);
  return events.filter((e) => e.pid === pid);
}

const DEBUG = 20;

test('VERBOSE over the control socket changes what the next connection logs', async () => {
  const quiet = await ssh(server, world.keys.ed25519, 'untagged', ['true']);
  assert.equal(quiet.code, 0, quiet.stderr);
  await settled(server);
  assert.deepEqual(instanceLines('untagged').filter((e) => (e.level as number) <= DEBUG), [], 'at the default level: no debug lines');

  await sendUnix(control, verboseDatagram(2)); // debug
  const chatty = await ssh(server, world.keys.ed25519, 'untagged', ['true']);
  assert.equal(chatty.code, 0, chatty.stderr);
  await settled(server);
  const debugLines = instanceLines('untagged').filter((e) => e.level === DEBUG);
  assert.ok(debugLines.length > 0, 'VERBOSE 2: the new connection logs at debug level');
  assert.ok(debugLines.some((e) => e.msg === 'key acceptable'), JSON.stringify(instanceLines('untagged').map((e) => [e.level, e.msg])));
  assert.ok(instanceLines('untagged').some((e) => e.msg === 'log level set by the companion (VERBOSE)' && e.verbose === 2));

  await sendUnix(control, verboseDatagram(1)); // back to the default
  const again = await ssh(server, world.keys.ed25519, 'untagged', ['true']);
  assert.equal(again.code, 0, again.stderr);
  await settled(server);
  assert.deepEqual(instanceLines('untagged').filter((e) => (e.level as number) <= DEBUG), []);
});

test('TERMINATE_CHILDREN ends the tagged live session, not the other; a non-root sender changes nothing', async () => {
  const before = await scrape(companion.metricsPort);
  const started = (): number => server.events().filter((e) => e.msg === 'session start' && (e.user === 'tagged' || e.user === 'untagged')).length;
  const already = started();
  const tagged = ssh(server, world.keys.ed25519, 'tagged', ['echo up; sleep 30; echo not reached'], { timeout: 40_000 });
  const untagged = ssh(server, world.keys.ed25519, 'untagged', ['echo up; sleep 5; echo survived'], { timeout: 40_000 });
  for (let i = 0; i < 400 && started() < already + 2; i++) {
    await new Promise((r) => setTimeout(r, 25));
  }
  const taggedPid = instanceLines('tagged')[0]!.pid;

  // From uid 65534: refused by the companion, counted, not acted on.
  await sendUnixAsNobody(control, terminateDatagram('site-42'));
  for (let i = 0; i < 100; i++) {
    const m = await scrape(companion.metricsPort);
    if (sample(m, 'lukko_companion_control_rejected{reason="untrusted"}') > sample(before, 'lukko_companion_control_rejected{reason="untrusted"}')) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(server.events().filter((e) => e.msg === 'Terminating connection').length, 0, 'nothing terminated for a non-root sender');

  const t0 = Date.now();
  await sendUnix(control, terminateDatagram('site-42'));
  const t = await tagged;
  assert.ok(Date.now() - t0 < 10_000, 'the tagged session ended on the command, long before its sleep would');
  assert.equal(t.stdout, 'up\n');
  assert.equal(t.code, 255, 'the client saw the connection end');
  const u = await untagged;
  assert.equal(u.stdout, 'up\nsurvived\n', 'the session without the tag ran to its end');
  assert.equal(u.code, 0);

  await settled(server);
  const term = server.events().filter((e) => e.msg === 'Terminating connection');
  assert.equal(term.length, 1);
  assert.equal(term[0]!.pid, taggedPid);
  assert.equal(term[0]!.tag, 'site-42');
  let after = await scrape(companion.metricsPort);
  for (let i = 0; i < 100 && sample(after, 'lukko_connections_closed{reason="terminated"}') === sample(before, 'lukko_connections_closed{reason="terminated"}'); i++) {
    await new Promise((r) => setTimeout(r, 20));
    after = await scrape(companion.metricsPort);
  }
  assert.equal(sample(after, 'lukko_connections_closed{reason="terminated"}') - sample(before, 'lukko_connections_closed{reason="terminated"}'), 1);
  assert.ok(sample(after, 'lukko_children_killed') > sample(before, 'lukko_children_killed'), 'the session\'s process was signalled');
});
