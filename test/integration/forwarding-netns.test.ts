// Forwarding for accounts in a network namespace, with the real OpenSSH client, the real
// `lukko translation-server` and a real named namespace (`ip netns`). The namespace and the
// host each run a marker server on the same loopback port, so every answer says which
// network a forward reached.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Server, World } from '../helpers/fixture.ts';
import { roundTrip } from '../helpers/forward.ts';
import { useTranslationServer } from '../helpers/translation.ts';
import { cleanup, freePort, makeWorld, NODE, publicKey, run, settled, ssh, sshArgs, startServer } from '../helpers/fixture.ts';

const asRoot = process.getuid?.() === 0;
const skip = !asRoot ? 'needs root for network namespaces' : false;

const NETNS = `lukko-fwd-${process.pid}`;
const MISSING = `lukko-fwd-missing-${process.pid}`;

let world: World;
let server: Server;
let translation: ChildProcess | undefined;
let ids: { uid: number; gid: number };
let port: number; // the marker servers' port, in the namespace and on the host
let otherPort: number; // a second server in the namespace, not in permitopen
let permittedListen: number;
let floodPort: number;
let floodCount: string;
let hostMarker: net.Server;
let clientService: net.Server;
let clientPort: number;
const background: ChildProcess[] = [];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const argsInfo = (user: string, extra: string[]) => sshArgs(server.port, world.keys.ed25519, user, extra).map((a) => (a === 'LogLevel=ERROR' ? 'LogLevel=INFO' : a));

/** A server that greets with `marker\n` and then echoes. Run in the namespace as a script. */
const MARKER_SERVER = `
const net = require('node:net');
for (const [port, marker] of JSON.parse(process.argv[1])) {
  net.createServer((s) => { s.on('error', () => {}); s.write(marker + '\\n'); s.pipe(s); }).listen(port, '127.0.0.1');
}
setInterval(() => {}, 1 << 30);
`;

/** Writes to every connection as fast as it is taken, and keeps the count in a file. */
const FLOOD_SERVER = `
const net = require('node:net');
const fs = require('node:fs');
const [port, file] = [Number(process.argv[1]), process.argv[2]];
const chunk = Buffer.alloc(65536, 120);
let total = 0;
net.createServer((s) => {
  s.on('error', () => {});
  const pump = () => { while (s.write(chunk)) total += chunk.length; total += chunk.length; };
  s.on('drain', pump);
  pump();
}).listen(port, '127.0.0.1');
setInterval(() => fs.writeFileSync(file, String(total)), 50);
`;

/** Connects inside the namespace (or on the host) and returns the first line it gets, or the error. */
const PROBE = `
const s = require('node:net').connect(Number(process.argv[1]), '127.0.0.1');
let got = '';
s.on('data', (d) => { got += d; if (got.includes('\\n')) { process.stdout.write(got.split('\\n')[0]); s.destroy(); } });
s.on('error', (e) => process.stdout.write('error ' + e.code));
`;

async function probeInNetns(p: number): Promise<string> {
  const r = await run('ip', ['netns', 'exec', NETNS, NODE, '-e', PROBE, String(p)]);
  return r.stdout.trim();
}

async function probeOnHost(p: number): Promise<string> {
  const r = await run(NODE, ['-e', PROBE, String(p)]);
  return r.stdout.trim();
}

function markerServer(marker: string): net.Server {
  return net.createServer((s) => {
    s.on('error', () => undefined);
    s.write(`${marker}\n`);
    s.pipe(s);
  });
}

function usersIni(): string {
  const key = publicKey(world.keys.ed25519!);
  const { uid, gid } = ids;
  const account = (name: string, extra: string, options = '') => {
    const home = join(world.dir, 'ts-home', name);
    mkdirSync(home, { recursive: true });
    chownSync(home, uid, gid);
    return `
[${name}]
uid = ${uid}
gid = ${gid}
home = ${home}
shell = /bin/sh
authorized_keys[] = ${options}${key}
${extra}`;
  };
  return [
    account('named', `network_namespace_name = ${NETNS}\n`),
    account('narrow', `network_namespace_name = ${NETNS}\n`, `permitopen="127.0.0.1:${port}",permitlisten="localhost:${permittedListen}" `),
    account('fresh', 'network_namespace = true\n'),
    account('missing', `network_namespace_name = ${MISSING}\n`),
  ].join('');
}

/** ssh -N in the background; resolves once `ready` shows in stderr (or it exited). */
async function sshBackground(user: string, extra: string[], ready?: RegExp): Promise<{ proc: ChildProcess; stderr: () => string }> {
  const proc = spawn('ssh', argsInfo(user, ['-N', ...extra]), { stdio: ['ignore', 'ignore', 'pipe'] });
  background.push(proc);
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  for (let i = 0; ready && i < 400 && !ready.test(err) && proc.exitCode === null; i++) await sleep(25);
  return { proc, stderr: () => err };
}

async function waitFor(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await sleep(25);
  }
  throw new Error(`timed out waiting for ${what}`);
}


const refusals = (user: string) => server.events().filter((e) => e.msg === 'forwarding refused' && e.user === user);

describe('forwarding for accounts in a network namespace', { skip }, () => {
  before(async () => {
    world = makeWorld();
    const alice = world.users.alice!;
    ids = { uid: alice.uid + 9, gid: alice.uid + 9 };
    port = await freePort();
    otherPort = await freePort();
    permittedListen = await freePort();
    floodPort = await freePort();
    assert.equal((await run('ip', ['netns', 'add', NETNS])).code, 0);
    assert.equal((await run('ip', ['-n', NETNS, 'link', 'set', 'lo', 'up'])).code, 0);
    const ns = spawn('ip', ['netns', 'exec', NETNS, NODE, '-e', MARKER_SERVER, JSON.stringify([[port, 'netns'], [otherPort, 'netns-other']])], { stdio: 'ignore' });
    background.push(ns);
    floodCount = join(world.dir, 'flood-count');
    background.push(spawn('ip', ['netns', 'exec', NETNS, NODE, '-e', FLOOD_SERVER, String(floodPort), floodCount], { stdio: 'ignore' }));
    hostMarker = markerServer('host');
    await new Promise<void>((r) => hostMarker.listen(port, '127.0.0.1', r));
    clientService = markerServer('client-service');
    await new Promise<void>((r) => clientService.listen(0, '127.0.0.1', r));
    clientPort = (clientService.address() as net.AddressInfo).port;
    await waitFor('the namespace marker server', async () => (await probeInNetns(port)) === 'netns');

    translation = (await useTranslationServer(world, usersIni())).proc;
    server = await startServer(world);
  });

  after(async () => {
    for (const p of background) p.kill('SIGKILL');
    await server?.stop();
    translation?.kill('SIGTERM');
    hostMarker?.close();
    clientService?.close();
    await run('ip', ['netns', 'del', NETNS]);
    if (world) cleanup(world);
  });

  test('ssh -W to 127.0.0.1:port reaches the server in the namespace, not the host\'s on the same port', async () => {
    assert.equal(await probeOnHost(port), 'host'); // the host's server is there
    const r = await ssh(server, world.keys.ed25519, 'named', [], { extra: ['-W', `127.0.0.1:${port}`], input: 'hello\n' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'netns\nhello\n');
  });

  test('ssh -L: 1 MB through the namespace\'s echo server comes back unchanged; a closed port is a refused channel', async () => {
    const local = await freePort();
    const closed = await freePort();
    const { proc } = await sshBackground('named', ['-L', `${local}:127.0.0.1:${port}`]);
    await waitFor('the -L listener', async () => (await probeOnHost(local)) === 'netns');
    const data = randomBytes(1 << 20);
    const back = await roundTrip({ port: local }, data);
    assert.equal(back.subarray(0, 6).toString(), 'netns\n');
    assert.equal(sha(back.subarray(6, 6 + data.length)), sha(data));
    // nothing listens on `closed` in the namespace (the host may have it or not): refused
    const ns = await ssh(server, world.keys.ed25519, 'named', [], { extra: ['-W', `127.0.0.1:${closed}`] });
    assert.notEqual(ns.code, 0);
    assert.match(ns.stderr, /stdio forwarding failed/);
    await waitFor('the refusal log line', async () => refusals('named').some((e) => /connect failed: ECONNREFUSED \(network namespace/.test(String(e.reason))));
    proc.kill('SIGTERM');
  });

  test('ssh -R 0: the allocated port listens inside the namespace, owned by the account, and not on the host; cancel stops it', async () => {
    const control = join(world.dir, `ctl-${process.pid}`);
    const { proc, stderr } = await sshBackground('named', ['-M', '-S', control, '-R', `0:127.0.0.1:${clientPort}`], /Allocated port \d+/);
    const m = /Allocated port (\d+)/.exec(stderr());
    assert.ok(m, stderr());
    const allocated = Number(m[1]);
    assert.equal(await probeInNetns(allocated), 'client-service');
    assert.notEqual(await probeOnHost(allocated), 'client-service');
    // /proc/net/tcp inside the namespace: the listening socket (state 0A) and its owner's uid
    const tcp = await run('ip', ['netns', 'exec', NETNS, 'cat', '/proc/net/tcp']);
    const hex = allocated.toString(16).toUpperCase().padStart(4, '0');
    const row = tcp.stdout.split('\n').map((l) => l.trim().split(/\s+/)).find((f) => f[1] === `0100007F:${hex}` && f[3] === '0A');
    assert.ok(row, tcp.stdout);
    assert.equal(row[7], String(ids.uid));
    // cancel-tcpip-forward through the control socket, for a forward added there
    const fixed = await freePort();
    const add = await run('ssh', ['-S', control, '-O', 'forward', '-R', `${fixed}:127.0.0.1:${clientPort}`, 'x']);
    assert.equal(add.code, 0, add.stderr);
    await waitFor('the added forward', async () => (await probeInNetns(fixed)) === 'client-service');
    const cancel = await run('ssh', ['-S', control, '-O', 'cancel', '-R', `${fixed}:127.0.0.1:${clientPort}`, 'x']);
    assert.equal(cancel.code, 0, cancel.stderr);
    await waitFor('the listener to go', async () => (await probeInNetns(fixed)) === 'error ECONNREFUSED');
    assert.equal(await probeInNetns(allocated), 'client-service'); // the other forward stays
    proc.kill('SIGTERM');
    // the helpers end with the connection: none of the account's is left
    await settled(server);
    await waitFor('the helpers to end', async () => (await run('ps', ['-C', 'lukko-netns', '-o', 'uid='])).stdout.split('\n').every((u) => u.trim() !== String(ids.uid)));
  });

  test('a reader that does not read holds the sender in the namespace back (backpressure through both relays)', async () => {
    const local = await freePort();
    const { proc } = await sshBackground('named', ['-L', `${local}:127.0.0.1:${floodPort}`]);
    await waitFor('the -L listener', async () => new Promise((resolve) => {
      const s = net.connect(local, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    }));
    const stalled = net.connect(local, '127.0.0.1');
    stalled.pause(); // never reads
    let last = -1;
    let same = 0;
    for (let i = 0; i < 400 && same < 10; i++) {
      await sleep(50);
      const now = existsSync(floodCount) ? Number(readFileSync(floodCount, 'utf8') || 0) : 0;
      same = now > 0 && now === last ? same + 1 : 0;
      last = now;
    }
    assert.equal(same, 10, `the sender never stopped: ${last} bytes`);
    // kernel socket buffers, the SSH window and one 64 KiB buffer per relay: a few MB, not more
    assert.ok(last < 64 * 1024 * 1024, `${last} bytes sent into a stalled reader`);
    if (process.env.LUKKO_TEST_DUMP) console.log(`stalled -L: ${last} bytes`);
    stalled.destroy();
    proc.kill('SIGTERM');

    // the other way: ssh -R, a client-side sender, a reader in the namespace that does not read
    let sent = 0;
    const chunk = Buffer.alloc(65536, 121);
    const flood = net.createServer((s) => {
      s.on('error', () => undefined);
      const pump = (): void => {
        while (s.write(chunk)) sent += chunk.length;
        sent += chunk.length;
      };
      s.on('drain', pump);
      pump();
    });
    await new Promise<void>((r) => flood.listen(0, '127.0.0.1', r));
    const fport = (flood.address() as net.AddressInfo).port;
    const remote = await sshBackground('named', ['-R', `0:127.0.0.1:${fport}`], /Allocated port \d+/);
    const allocated = Number(/Allocated port (\d+)/.exec(remote.stderr())?.[1]);
    const idle = spawn('ip', ['netns', 'exec', NETNS, NODE, '-e', `require('node:net').connect(${allocated}, '127.0.0.1').pause(); setTimeout(() => {}, 60000)`], { stdio: 'ignore' });
    background.push(idle);
    last = -1;
    same = 0;
    for (let i = 0; i < 400 && same < 10; i++) {
      await sleep(50);
      same = sent > 0 && sent === last ? same + 1 : 0;
      last = sent;
    }
    assert.equal(same, 10, `the client-side sender never stopped: ${last} bytes`);
    assert.ok(last < 64 * 1024 * 1024, `${last} bytes sent into a stalled reader`);
    if (process.env.LUKKO_TEST_DUMP) console.log(`stalled -R: ${last} bytes`);
    idle.kill('SIGKILL');
    remote.proc.kill('SIGTERM');
    flood.close();
  });

  test('permitopen and permitlisten still decide inside the namespace', async () => {
    const ok = await ssh(server, world.keys.ed25519, 'narrow', [], { extra: ['-W', `127.0.0.1:${port}`], input: 'x\n' });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, 'netns\nx\n');
    const other = await ssh(server, world.keys.ed25519, 'narrow', [], { extra: ['-W', `127.0.0.1:${otherPort}`] });
    assert.notEqual(other.code, 0);
    assert.match(other.stderr, /stdio forwarding failed/);
    const listen = await sshBackground('narrow', ['-R', `${permittedListen}:127.0.0.1:${clientPort}`]);
    await waitFor('the permitted remote forward', async () => (await probeInNetns(permittedListen)) === 'client-service');
    listen.proc.kill('SIGTERM');
    const refused = await ssh(server, world.keys.ed25519, 'narrow', [], {
      extra: ['-o', 'ExitOnForwardFailure=yes', '-N', '-R', `${permittedListen + 1}:127.0.0.1:${clientPort}`],
      timeout: 20000,
    });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /remote port forwarding failed/);
    await waitFor('the refusal log lines', async () => {
      const reasons = refusals('narrow').map((e) => String(e.reason));
      return reasons.some((r) => r.includes(`permitopen`)) && reasons.some((r) => r.includes('permitlisten'));
    });
  });

  test('a per-session NETWORK_NAMESPACE still gets no TCP forwarding, and the log names that rule', async () => {
    const w = await ssh(server, world.keys.ed25519, 'fresh', [], { extra: ['-W', `127.0.0.1:${port}`] });
    assert.notEqual(w.code, 0);
    assert.match(w.stderr, /stdio forwarding failed/);
    const r = await ssh(server, world.keys.ed25519, 'fresh', [], { extra: ['-o', 'ExitOnForwardFailure=yes', '-N', '-R', `0:127.0.0.1:${clientPort}`], timeout: 20000 });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /remote port forwarding failed/);
    await settled(server);
    const reasons = refusals('fresh').map((e) => `${String(e.forward)}: ${String(e.reason)}`);
    assert.ok(reasons.some((x) => /^direct-tcpip .*NETWORK_NAMESPACE/.test(x)), reasons.join('\n'));
    assert.ok(reasons.some((x) => /^tcpip-forward .*NETWORK_NAMESPACE/.test(x)), reasons.join('\n'));
  });

  test('a namespace that cannot be entered refuses the forward; the host\'s server on that port is never reached', async () => {
    const w = await ssh(server, world.keys.ed25519, 'missing', [], { extra: ['-W', `127.0.0.1:${port}`] });
    assert.notEqual(w.code, 0);
    assert.doesNotMatch(w.stdout, /host/);
    assert.match(w.stderr, /stdio forwarding failed/);
    const r = await ssh(server, world.keys.ed25519, 'missing', [], { extra: ['-o', 'ExitOnForwardFailure=yes', '-N', '-R', `0:127.0.0.1:${clientPort}`], timeout: 20000 });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /remote port forwarding failed/);
    await settled(server);
    const reasons = refusals('missing').map((e) => String(e.reason));
    assert.equal(reasons.filter((x) => x === `network namespace ${MISSING}: cannot enter (ENOENT)`).length, 2, reasons.join('\n'));
  });
});
