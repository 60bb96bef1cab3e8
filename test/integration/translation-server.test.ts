// `lukko translation-server` as a process (the built dist/), spoken to over real AF_UNIX
// sockets with the bytes lukko sends (buildLoginRequest) and read with lukko's own response
// parser: on a path and on an abstract name, reloads, broken files, garbage, timeouts,
// socket activation and hash-password.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ResponseDecoder, encodePacket } from '../../src/translation/codec.ts';
import { TranslationCommand as C } from '../../src/translation/commands.ts';
import { TranslationError } from '../../src/translation/errors.ts';
import { buildLoginRequest } from '../../src/translation/login-request.ts';
import type { LoginRequest } from '../../src/translation/login-request.ts';
import { parseLoginResponse } from '../../src/translation/response.ts';
import type { TranslationResponse } from '../../src/translation/response.ts';
import { hashPassword, parsePasswordHash, verifyPassword } from '../../src/translation-server/password-hash.ts';
import { MAIN, NODE, ROOT } from '../helpers/fixture.ts';

const dir = mkdtempSync(join(tmpdir(), 'lukko-translation-'));
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBrF6w7YJ6pgFoO6kXdlv/hA/hSUtAXoBUsDthENj8hK tv';
const PASSWORD = 'correct horse battery staple';
let HASH = '';

function usersIni(extra = ''): string {
  return `; test accounts
[alice]
uid = 2001
gid = 2001
groups = 27
home = /home/alice
shell = /bin/bash
password = ${HASH}
authorized_keys[] = ${KEY}

[john.doe]
uid = 2002
gid = 2002
home = /home/john.doe
no_password = sftp

[alice:sftp]
execute = /usr/lib/openssh/sftp-server
mount_root_tmpfs = true
mount_home = /home/alice
${extra}`;
}

function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', NODE_COMPILE_CACHE: join(ROOT, 'node_modules/.cache/lukko-compile'), ...extra };
}

interface Proc {
  proc: ChildProcess;
  out(): string;
  /** Resolves with the exit code once the process has ended. */
  exited: Promise<number | null>;
  lines(msg: string): Record<string, unknown>[];
  stop(): Promise<number | null>;
}

function launch(argv: string[], input?: string): Proc {
  const proc = spawn(argv[0]!, argv.slice(1), { env: env(), stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stdin!.on('error', () => {});
  proc.stdin!.end(input);
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return {
    proc,
    out: () => out,
    exited,
    lines: (msg) => out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e.msg === msg),
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      return exited;
    },
  };
}

async function waitFor<T>(what: string, probe: () => T | undefined, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** `lukko translation-server`, ready to answer. */
async function startServer(users: string, listen: string, extra: string[] = []): Promise<Proc> {
  const p = launch([NODE, MAIN, 'translation-server', '--users', users, '--listen', listen, '--log-level', 'debug', ...extra]);
  await waitFor('the server to be ready', () => {
    if (p.proc.exitCode !== null) throw new Error(`translation-server exited ${p.proc.exitCode}: ${p.out()}`);
    return p.lines('translation server ready').length > 0 ? true : undefined;
  });
  return p;
}

const address = (listen: string): string => (listen.startsWith('@') ? `\0${listen.slice(1)}` : listen);

interface Exchange {
  responses: (TranslationResponse | TranslationError)[];
  /** The server closed the connection before the client did. */
  closedByServer: boolean;
}

/**
 * One connection: each request is written after the previous response came in (raw bytes
 * are written as they are and get no response counted).
 */
function exchange(listen: string, requests: (LoginRequest | Buffer)[], opts: { wait?: number } = {}): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ path: address(listen) });
    const responses: (TranslationResponse | TranslationError)[] = [];
    let decoder = new ResponseDecoder();
    let i = 0;
    let clientEnded = false;
    let closedByServer = false;
    let timer: NodeJS.Timeout | undefined;
    const end = (): void => {
      clientEnded = true;
      s.end();
    };
    const next = (): void => {
      const r = requests[i++];
      if (r === undefined) {
        if (opts.wait === undefined) end();
        else timer = setTimeout(end, opts.wait);
        return;
      }
      s.write(Buffer.isBuffer(r) ? r : buildLoginRequest(r));
      if (Buffer.isBuffer(r)) next();
    };
    s.on('connect', next);
    s.on('data', (d: Buffer) => {
      const st = decoder.push(d);
      if (st.kind === 'need-more') return;
      responses.push(st.kind === 'complete' ? parseLoginResponse(st.packets) : st.error);
      decoder = new ResponseDecoder();
      next();
    });
    s.on('end', () => {
      if (!clientEnded) closedByServer = true;
      clearTimeout(timer);
      s.end();
    });
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNRESET' || e.code === 'EPIPE') closedByServer = true;
      else reject(e);
    });
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ responses, closedByServer });
    });
  });
}

async function ask(listen: string, request: LoginRequest): Promise<TranslationResponse> {
  const { responses } = await exchange(listen, [request]);
  const r = responses[0];
  assert.ok(r !== undefined, 'no response');
  if (r instanceof TranslationError) assert.fail(`lukko would refuse the response: ${r.message}`);
  return r;
}

const lookup = (user: string): LoginRequest => ({ service: 'ssh', user });
const withPassword = (user: string, password: string): LoginRequest => ({ service: 'ssh', user, password, listenerTag: 'public' });

before(async () => {
  HASH = await hashPassword(PASSWORD);
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('on a socket path and on an abstract name', () => {
  const users = join(dir, 'users.ini');
  const path = join(dir, 'run', 'translation.socket'); // run/ does not exist yet
  const abstract = `@lukko-translation-test-${process.pid}`;
  let servers: Proc[] = [];

  before(async () => {
    writeFileSync(users, usersIni(), { mode: 0o600 });
    servers = [await startServer(users, path), await startServer(users, abstract)];
  });
  after(async () => {
    for (const s of servers) await s.stop();
  });

  test('the socket file is 0600 in a directory the server made', () => {
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.ok(statSync(path).isSocket());
  });

  for (const listen of [path, abstract]) {
    test(`answers: account data, 404, 403, a correct password (${listen.startsWith('@') ? 'abstract' : 'path'})`, async () => {
      const a = await ask(listen, lookup('alice'));
      assert.equal(a.status, undefined);
      assert.deepEqual(a.topLevel?.uidGid, { uid: 2001, gid: 2001, groups: [27] });
      assert.equal(a.topLevel?.home, '/home/alice');
      assert.equal(a.authorizedKeys, `${KEY}\n`);
      assert.equal(a.services.get('sftp')?.execute, '/usr/lib/openssh/sftp-server');

      const john = await ask(listen, { ...lookup('john.doe'), peek: true });
      assert.equal(john.noPassword, 'sftp');
      assert.equal(john.topLevel?.home, '/home/john.doe');

      const unknown = await ask(listen, lookup('mallory'));
      assert.equal(unknown.status, 404);
      assert.equal(unknown.message, 'No such user');

      const t0 = Date.now();
      const unknownPw = await ask(listen, withPassword('mallory', PASSWORD));
      assert.equal(unknownPw.status, 404);
      assert.ok(Date.now() - t0 >= 15, 'an unknown user\'s password check took no time');

      const wrong = await ask(listen, withPassword('alice', 'Tr0ub4dor&3'));
      assert.equal(wrong.status, 403);
      assert.equal(wrong.message, 'Wrong password');

      const right = await ask(listen, withPassword('alice', PASSWORD));
      assert.equal(right.status, undefined);
      assert.equal(right.topLevel?.shell, '/bin/bash');
    });
  }

  test('several requests on one connection, one response each, in order', async () => {
    const { responses, closedByServer } = await exchange(path, [lookup('alice'), lookup('nobody'), withPassword('alice', PASSWORD), lookup('john.doe')]);
    assert.equal(closedByServer, false);
    assert.deepEqual(responses.map((r) => (r instanceof TranslationError ? r.message : r.status ?? r.topLevel?.home)), ['/home/alice', 404, '/home/alice', '/home/john.doe']);
  });

  test('one log line per request, with user, tag and outcome, and never the password', async () => {
    await ask(path, withPassword('alice', 'a-wrong-one'));
    const line = await waitFor('the log line', () => servers[0]!.lines('login request').find((e) => e.outcome === 'wrong-password'));
    assert.equal(line.user, 'alice');
    assert.equal(line.tag, 'public');
    assert.equal(line.password, true);
    assert.equal(typeof line.ms, 'number');
    for (const s of servers) {
      assert.ok(!s.out().includes(PASSWORD) && !s.out().includes('a-wrong-one'), 'a password in the log');
    }
    const outcomes = new Set(servers[0]!.lines('login request').map((e) => e.outcome));
    for (const o of ['account', 'no-such-user', 'wrong-password', 'password-accepted']) assert.ok(outcomes.has(o), o);
  });

  test('garbage, oversized and unknown requests close that connection; the server keeps serving', async () => {
    const garbage = await exchange(path, [Buffer.from('GET / HTTP/1.0\r\n\r\n')], { wait: 5000 });
    assert.equal(garbage.responses.length, 0);
    assert.equal(garbage.closedByServer, true);
    // A header announcing 64 KiB.
    const big = await exchange(path, [Buffer.concat([encodePacket(C.BEGIN), Buffer.from([0xff, 0xff, C.USER, 0])])], { wait: 5000 });
    assert.equal(big.closedByServer, true);
    // Well framed but not a LOGIN request; and a good request after a bad one on the same connection is never read.
    const odd = await exchange(path, [Buffer.concat([encodePacket(C.BEGIN), encodePacket(C.HOST, Buffer.from('x')), encodePacket(C.END)]), buildLoginRequest(lookup('alice'))], { wait: 5000 });
    assert.equal(odd.responses.length, 0);
    assert.equal(odd.closedByServer, true);
    // Connect and hang up at once.
    await new Promise<void>((resolve) => {
      const s = net.connect({ path }, () => {
        s.destroy();
        resolve();
      });
    });
    const reasons = servers[0]!.lines('malformed request; connection closed').map((e) => e.reason);
    assert.ok(reasons.some((r) => /not BEGIN/.test(String(r))), JSON.stringify(reasons));
    assert.ok(reasons.some((r) => /larger than 4096/.test(String(r))));
    assert.ok(reasons.some((r) => /unexpected HOST/.test(String(r))));
    assert.equal(servers[0]!.proc.exitCode, null);
    assert.equal((await ask(path, lookup('alice'))).topLevel?.home, '/home/alice');
  });

  test('a request cut off by the client ends the connection without an answer', async () => {
    const half = buildLoginRequest(lookup('alice')).subarray(0, 10);
    const r = await exchange(path, [half]);
    assert.equal(r.responses.length, 0);
    await waitFor('the log line', () => (servers[0]!.lines('connection ended inside a request').length > 0 ? true : undefined));
  });
});

describe('reloading the user file', () => {
  const users = join(dir, 'reload.ini');
  const path = join(dir, 'reload.socket');
  let server: Proc;
  before(async () => {
    writeFileSync(users, usersIni(), { mode: 0o600 });
    server = await startServer(users, path);
  });
  after(() => server.stop());

  test('an edit is served at the next request, without a signal', async () => {
    assert.equal((await ask(path, lookup('bob'))).status, 404);
    writeFileSync(users, usersIni('\n[bob]\nuid = 2003\ngid = 2003\nhome = /home/bob\n'));
    assert.equal((await ask(path, lookup('bob'))).topLevel?.home, '/home/bob');
    // An editor that renames a new file into place.
    writeFileSync(`${users}.new`, usersIni('\n[bob]\nuid = 2003\ngid = 2003\nhome = /srv/bob\n'), { mode: 0o600 });
    renameSync(`${users}.new`, users);
    assert.equal((await ask(path, lookup('bob'))).topLevel?.home, '/srv/bob');
    assert.ok(server.lines('user file loaded').length >= 2);
  });

  test('a broken edit keeps the last good version in service, and says where it is broken', async () => {
    writeFileSync(users, usersIni('\n[bob]\nuid = 0\ngid = 2003\nhome = /srv/bob\npassword = plain-text\n'));
    assert.equal((await ask(path, lookup('bob'))).topLevel?.home, '/srv/bob');
    assert.equal((await ask(path, withPassword('alice', PASSWORD))).topLevel?.home, '/home/alice');
    const errors = server.lines('user file has errors; still serving the last good version');
    assert.equal(errors.length, 1, 'reported once, not at every request');
    const problems = (errors[0]!.problems as string[]).join('\n');
    assert.match(problems, new RegExp(`${users.replace(/[.]/g, '\\.')}:23: \\[bob\\] uid: "0" is not a uid`));
    assert.match(problems, /:26: \[bob\] password: this looks like a plain-text password/);
    // Fixed: served again.
    writeFileSync(users, usersIni('\n[bob]\nuid = 2004\ngid = 2003\nhome = /srv/bob\n'));
    assert.deepEqual((await ask(path, lookup('bob'))).topLevel?.uidGid?.uid, 2004);
  });

  test('a removed file keeps the last version; SIGHUP reads the file again', async () => {
    rmSync(users);
    assert.equal((await ask(path, lookup('bob'))).topLevel?.uidGid?.uid, 2004);
    await waitFor('the error', () => (server.lines('cannot read the user file; still serving the last good version').length > 0 ? true : undefined));
    writeFileSync(users, usersIni(), { mode: 0o600 });
    const before = server.lines('user file loaded').length;
    server.proc.kill('SIGHUP');
    await waitFor('the reload', () => server.lines('user file loaded').find((e, i) => i >= before && e.reason === 'SIGHUP'));
    assert.equal((await ask(path, lookup('bob'))).status, 404);
  });
});

describe('the process', () => {
  test('an idle or slow connection is closed after --request-timeout', async () => {
    const users = join(dir, 'timeout.ini');
    writeFileSync(users, usersIni(), { mode: 0o600 });
    const path = join(dir, 'timeout.socket');
    const server = await startServer(users, path, ['--request-timeout', '1']);
    try {
      const t0 = Date.now();
      const half = await exchange(path, [buildLoginRequest(lookup('alice')).subarray(0, 12)], { wait: 10_000 });
      assert.equal(half.closedByServer, true);
      const ms = Date.now() - t0;
      assert.ok(ms >= 900 && ms < 5000, `${ms} ms`);
      assert.equal(server.lines('request incomplete in time; connection closed').length, 1);
      // After a response the clock starts again; an idle connection is closed quietly.
      const idle = await exchange(path, [lookup('alice')], { wait: 10_000 });
      assert.equal(idle.responses.length, 1);
      assert.equal(idle.closedByServer, true);
    } finally {
      await server.stop();
    }
  });

  test('SIGTERM: exit 0 and the socket file is gone; a stale socket file is replaced', async () => {
    const users = join(dir, 'term.ini');
    writeFileSync(users, usersIni(), { mode: 0o600 });
    const path = join(dir, 'term.socket');
    const first = await startServer(users, path);
    // A second server on a live socket refuses to start.
    const second = launch([NODE, MAIN, 'translation-server', '--users', users, '--listen', path]);
    assert.equal(await second.exited, 78);
    assert.match(second.out(), /another process listens on/);
    assert.equal(await first.stop(), 0);
    assert.equal(existsSync(path), false);
    // Killed hard, it leaves its socket file behind; the next start replaces it.
    const killed = await startServer(users, path);
    killed.proc.kill('SIGKILL');
    await killed.exited;
    assert.equal(existsSync(path), true);
    const next = await startServer(users, path);
    assert.equal((await ask(path, lookup('alice'))).topLevel?.home, '/home/alice');
    assert.equal(await next.stop(), 0);
  });

  test('a broken user file at start: exit 78, every problem with file:line on stderr', async () => {
    const users = join(dir, 'broken.ini');
    writeFileSync(users, '[alice]\nuid = 2001\ngid = 2001\nhome = /home/alice\npassword = hunter2\nshel = /bin/sh\n[bad name]\n');
    const p = launch([NODE, MAIN, 'translation-server', '--users', users, '--listen', join(dir, 'broken.socket')]);
    assert.equal(await p.exited, 78);
    const lines = p.out().trim().split('\n');
    assert.deepEqual(lines.map((l) => l.replace(/^(lukko translation-server: [^:]+:\d+):.*$/, '$1')), [
      `lukko translation-server: ${users}:5`,
      `lukko translation-server: ${users}:6`,
      `lukko translation-server: ${users}:7`,
    ]);
    assert.match(lines[0]!, /plain-text password, which is refused; use a hash made by `lukko translation-server hash-password`/);
    assert.match(lines[1]!, /unknown key "shel"/);
    const missing = launch([NODE, MAIN, 'translation-server', '--users', join(dir, 'nope.ini'), '--listen', join(dir, 'nope.socket')]);
    assert.equal(await missing.exited, 78);
    assert.match(missing.out(), /cannot read the user file: ENOENT/);
  });

  test('socket activation (Accept=no): the listening socket from LISTEN_FDS, --listen unused', async () => {
    const users = join(dir, 'activated.ini');
    writeFileSync(users, usersIni(), { mode: 0o600 });
    const path = join(dir, 'activated.socket');
    const p = launch(['systemd-socket-activate', '-l', path, '-E', `NODE_COMPILE_CACHE=${env().NODE_COMPILE_CACHE}`,
      NODE, MAIN, 'translation-server', '--users', users, '--listen', join(dir, 'never.socket')]);
    try {
      await waitFor('systemd-socket-activate', () => (existsSync(path) ? true : undefined));
      // The first connection starts the server, which takes over the listening socket.
      assert.equal((await ask(path, lookup('alice'))).topLevel?.home, '/home/alice');
      assert.equal((await ask(path, withPassword('alice', PASSWORD))).status, undefined);
      const ready = await waitFor('ready', () => p.lines('translation server ready')[0]);
      assert.deepEqual(ready.listen, ['fd 3 (unknown)']);
      assert.equal(existsSync(join(dir, 'never.socket')), false);
      assert.equal(p.lines('systemd passed the listening socket; --listen is not used').length, 1);
    } finally {
      await p.stop();
    }
  });

  test('hash-password: stdin in, a hash out that the server accepts; plain mistakes refused', async () => {
    const p = launch([NODE, MAIN, 'translation-server', 'hash-password'], 'pässwörd\n');
    assert.equal(await p.exited, 0);
    const hash = p.out().trim();
    assert.match(hash, /^\$scrypt\$ln=15,r=6,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
    assert.equal(await verifyPassword(parsePasswordHash(hash), Buffer.from('pässwörd')), true);

    const cheap = launch([NODE, MAIN, 'translation-server', 'hash-password', '--params', 'ln=12,r=8,p=1'], 'x');
    assert.equal(await cheap.exited, 0);
    assert.deepEqual(parsePasswordHash(cheap.out().trim()).params, { ln: 12, r: 8, p: 1 });

    for (const [input, re] of [['', /empty password/], ['\n', /empty password/], ['a\nb\n', /more than one line/], ['x'.repeat(257), /longer than 256 bytes/]] as const) {
      const bad = launch([NODE, MAIN, 'translation-server', 'hash-password'], input);
      assert.equal(await bad.exited, 1, input);
      assert.match(bad.out(), re);
    }
  });

  test('hash-password on a terminal: asks twice, echoes nothing, Backspace edits', async () => {
    const pty = await import('node-pty');
    const run = async (first: string, second: string): Promise<{ code: number; out: string }> => {
      const term = pty.spawn(NODE, [MAIN, 'translation-server', 'hash-password'], { env: env() as Record<string, string>, cols: 200, rows: 24 });
      let out = '';
      term.onData((d) => (out += d));
      const exit = new Promise<number>((resolve) => term.onExit(({ exitCode }) => resolve(exitCode)));
      await waitFor('the prompt', () => (out.includes('Password: ') ? true : undefined));
      term.write(first);
      await waitFor('the second prompt', () => (out.includes('Again: ') ? true : undefined));
      term.write(second);
      return { code: await exit, out };
    };
    // "tyop", Backspace twice, "po": the password is "typo"; a multi-byte character too.
    const ok = await run('tyop\x7f\x7fpoä\r', 'typoä\r');
    assert.equal(ok.code, 0, ok.out);
    const hash = /\$scrypt\$\S+/.exec(ok.out)?.[0];
    assert.ok(hash, ok.out);
    assert.equal(await verifyPassword(parsePasswordHash(hash), Buffer.from('typoä')), true);
    assert.ok(!ok.out.includes('typo') && !ok.out.includes('tyop'), `echoed: ${JSON.stringify(ok.out)}`);
    const differ = await run('one\r', 'two\r');
    assert.equal(differ.code, 1);
    assert.match(differ.out, /the passwords differ/);
  });
});
