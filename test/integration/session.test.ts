// Logins and sessions with the real OpenSSH client against `lukko serve` and against
// systemd-socket-activate --accept (the LISTEN_FDS path systemd uses).
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { Server, World } from '../helpers/fixture.ts';
import { authorize, cleanup, keyLine, makeWorld, run, ssh, sshArgs, startServer } from '../helpers/fixture.ts';

const KEYS = {
  ed25519: ['ed25519'],
  ecdsa256: ['ecdsa', 256],
  ecdsa384: ['ecdsa', 384],
  ecdsa521: ['ecdsa', 521],
  rsa: ['rsa', 3072],
} as Record<string, [string, number?]>;

let world: World;
let server: Server;
let activated: Server;

before(async () => {
  world = makeWorld({ keyTypes: KEYS });
  authorize(world, 'alice', Object.keys(KEYS).map((k) => keyLine(world, k)));
  server = await startServer(world);
  activated = await startServer(world, { activation: 'socket-activate' });
});

after(async () => {
  await server?.stop();
  await activated?.stop();
  if (world) cleanup(world);
});

describe('public-key login', () => {
  for (const k of Object.keys(KEYS)) {
    test(`with an ${k} key`, async () => {
      const r = await ssh(server, world.keys[k], 'alice', ['echo', 'ok']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'ok\n');
    });
  }

  for (const algo of ['rsa-sha2-512', 'rsa-sha2-256']) {
    test(`an RSA key signing only with ${algo} (server-sig-algs advertises it)`, async () => {
      const r = await ssh(server, world.keys.rsa, 'alice', ['true'], { extra: ['-o', `PubkeyAcceptedAlgorithms=${algo}`] });
      assert.equal(r.code, 0, r.stderr);
    });
  }

  test('an RSA key limited to ssh-rsa (SHA-1) is refused', async () => {
    const r = await ssh(server, world.keys.rsa, 'alice', ['true'], { extra: ['-o', 'PubkeyAcceptedAlgorithms=ssh-rsa'] });
    assert.equal(r.code, 255);
    assert.match(r.stderr, /Permission denied/);
  });

  test('the server names itself and advertises rsa-sha2-512 and no SHA-1 algorithm', async () => {
    const r = await ssh(server, world.keys.ed25519, 'alice', ['true'], { extra: ['-vvv'] });
    assert.equal(r.code, 0);
    assert.match(r.stderr, /remote software version lukko_\d+\.\d+\.\d+/);
    const sigAlgs = /server-sig-algs=<([^>]*)>/.exec(r.stderr)?.[1] ?? '';
    assert.deepEqual(sigAlgs.split(','), ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256']);
    assert.match(r.stderr, /will use strict KEX ordering/);
    const peer = r.stderr.split('peer server KEXINIT proposal')[1] ?? '';
    const hostKeys = /host key algorithms: (\S+)/.exec(peer)?.[1] ?? '';
    assert.doesNotMatch(hostKeys, /ssh-rsa|ssh-dss/);
    const macs = /MACs ctos: (\S+)/.exec(peer)?.[1] ?? '';
    assert.doesNotMatch(macs, /sha1|md5/);
    const ciphers = /ciphers ctos: (\S+)/.exec(peer)?.[1] ?? '';
    assert.doesNotMatch(ciphers, /cbc/);
  });

  test('with the connection on stdin/stdout (StandardInput=socket): no log line leaks into it', async () => {
    const inetd = await startServer(world, { activation: 'inetd' });
    try {
      const r = await ssh(inetd, world.keys.ed25519, 'alice', ['echo $USER']);
      assert.equal(r.code, 0, r.stderr + inetd.output());
      assert.equal(r.stdout, 'alice\n');
      assert.match(inetd.output(), /"msg":"accepted"/); // logged to stderr instead
    } finally {
      await inetd.stop();
    }
  });

  test('through the LISTEN_FDS path (systemd-socket-activate --accept)', async () => {
    const r = await ssh(activated, world.keys.ed25519, 'alice', ['echo $USER; id -u']);
    assert.equal(r.code, 0, r.stderr + activated.output());
    assert.equal(r.stdout, `alice\n${world.users.alice!.uid}\n`);
  });
});

describe('exec', () => {
  test('stdout and stderr stay separate; exit codes pass through', async () => {
    const r = await ssh(server, world.keys.ed25519, 'alice', ['echo out; echo err >&2; exit 42']);
    assert.equal(r.code, 42);
    assert.equal(r.stdout, 'out\n');
    assert.equal(r.stderr, 'err\n');
  });

  test('stdin reaches the command and its EOF ends it', async () => {
    const r = await ssh(server, world.keys.ed25519, 'alice', ['cat; echo done'], { input: 'hello\n' });
    assert.equal(r.code, 0);
    assert.equal(r.stdout, 'hello\ndone\n');
  });

  test('death by a signal is reported as exit-signal (the client exits 255)', async () => {
    const r = await ssh(server, world.keys.ed25519, 'alice', ['kill -KILL $$'], { extra: ['-v'] });
    assert.equal(r.code, 255);
    assert.match(r.stderr, /exit-signal/);
  });

  test('binary data passes unchanged both ways', async () => {
    const data = randomBytes(10 * 1024 * 1024);
    const digest = createHash('sha256').update(data).digest('hex');
    const r = await ssh(server, world.keys.ed25519, 'alice', ['sha256sum'], { input: data, timeout: 60000 });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.split(' ')[0], digest);
    const z = await ssh(server, world.keys.ed25519, 'alice', ['head -c 20000000 /dev/urandom | tee >(sha256sum >&2)'], { timeout: 60000 });
    assert.equal(z.code, 0);
    assert.equal(z.stdout.length, 20000000);
    assert.equal(createHash('sha256').update(Buffer.from(z.stdout, 'latin1')).digest('hex'), z.stderr.split(' ')[0]);
  });
  test('heavy stdout and stderr at once: both arrive whole (flow control of both streams)', async () => {
    const r = await ssh(server, world.keys.ed25519, 'alice', ['head -c 30000000 /dev/zero >&2 & head -c 30000000 /dev/zero; wait'], { timeout: 60000 });
    assert.equal(r.code, 0);
    assert.equal(r.stdout.length, 30000000);
    assert.equal(r.stderr.length, 30000000);
  });
});

describe('the user process', () => {
  test('runs as the user: uid, primary gid, exactly the supplementary groups, in the home directory', async () => {
    const alice = world.users.alice!;
    const r = await ssh(server, world.keys.ed25519, 'alice', ['id -u; id -g; id -G; pwd']);
    assert.equal(r.code, 0, r.stderr);
    const [uid, gid, groups, cwd] = r.stdout.trim().split('\n');
    assert.equal(Number(uid), alice.uid);
    assert.equal(Number(gid), alice.gid);
    assert.deepEqual(groups!.split(' ').map(Number).sort(), [alice.gid, ...alice.groups].sort());
    assert.equal(cwd, alice.home);
  });

  test('gets the login environment, LANG/LC_* from the client and nothing else', async () => {
    const alice = world.users.alice!;
    const r = await ssh(server, world.keys.ed25519, 'alice', ['env'], {
      extra: ['-o', 'SetEnv=LANG=C.UTF-8 LC_TIME=C FOO=bar LD_PRELOAD=/x'],
    });
    assert.equal(r.code, 0, r.stderr);
    const env = Object.fromEntries(r.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    assert.equal(env.USER, 'alice');
    assert.equal(env.LOGNAME, 'alice');
    assert.equal(env.HOME, alice.home);
    assert.equal(env.SHELL, '/bin/bash');
    assert.equal(env.PATH, '/usr/local/bin:/usr/bin:/bin');
    assert.equal(env.MAIL, '/var/mail/alice');
    assert.equal(env.LANG, 'C.UTF-8');
    assert.equal(env.LC_TIME, 'C');
    assert.equal(env.FOO, undefined);
    assert.equal(env.LD_PRELOAD, undefined);
    assert.equal(env.SSH_TTY, undefined);
    assert.equal(env.LISTEN_FDS, undefined);
    assert.equal(env.LISTEN_PID, undefined);
    assert.match(env.SSH_CLIENT ?? '', new RegExp(`^127\\.0\\.0\\.1 \\d+ ${server.port}$`));
    assert.match(env.SSH_CONNECTION ?? '', new RegExp(`^127\\.0\\.0\\.1 \\d+ 127\\.0\\.0\\.1 ${server.port}$`));
  });

  test('inherits no file descriptor of the server (the client socket above all)', async () => {
    for (const srv of [server, activated]) {
      // ls runs as the shell's child, so its own directory fd is not in the shell's list (no
      // pipeline: the shell would hold the pipe's fds while ls looks).
      const r = await ssh(srv, world.keys.ed25519, 'alice', ['ls -l /proc/$$/fd/; true']);
      assert.equal(r.code, 0, r.stderr);
      const fds = r.stdout.trim().split('\n').filter((l) => / -> /.test(l)).map((l) => /(\d+) -> (.*)$/.exec(l)?.slice(1));
      // Node's stdio "pipes" are socketpairs, so 0-2 show as sockets; anything above 2
      // (the client's TCP socket, a log file, a key file) would be a leak.
      assert.deepEqual(fds.map((f) => f?.[0]).sort(), ['0', '1', '2'], r.stdout);
    }
  });

  test('a login shell: argv[0] starts with "-"', async () => {
    const r = await ssh(server, world.keys.ed25519, 'alice', [], { input: 'echo "$0"\nexit 7\n' });
    assert.equal(r.code, 7, r.stderr);
    assert.equal(r.stdout, '-bash\n');
  });

  test('ends with the connection: a process left running is killed', async () => {
    const marker = `lukko-sleep-${process.pid}-${Date.now()}`;
    const client = run('ssh', [...sshArgs(server.port, world.keys.ed25519, 'alice'), `exec -a ${marker} sleep 300`], { timeout: 3000 });
    let pid = '';
    for (let i = 0; i < 100 && !pid; i++) {
      await new Promise((r) => setTimeout(r, 50));
      pid = (await run('pgrep', ['-f', marker])).stdout.trim();
    }
    assert.ok(pid, 'the session process started');
    await client; // killed by its timeout: the client goes away without a goodbye
    let gone = false;
    for (let i = 0; i < 100 && !gone; i++) {
      await new Promise((r) => setTimeout(r, 50));
      gone = !existsSync(`/proc/${pid}`);
    }
    assert.ok(gone, `process ${pid} still running after the client went`);
  });
});

describe('pty', () => {
  test('ssh -tt gives a tty of the requested size, TERM and SSH_TTY', async () => {
    // `script` gives the client a real terminal of 40x100 to copy from.
    const inner = `stty rows 40 cols 100; TERM=xterm-256color ssh ${sshArgs(server.port, world.keys.ed25519, 'alice', ['-tt']).join(' ')} 'tty; stty size; echo $TERM; echo $SSH_TTY; stat -c %U $(tty)'`;
    const r = await run('script', ['-qec', inner, '/dev/null'], { input: '' });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const lines = r.stdout.replace(/\r|\^@|\0/g, '').trim().split('\n');
    assert.match(lines[0]!, /^\/dev\/pts\/\d+$/);
    assert.equal(lines[1], '40 100');
    assert.equal(lines[2], 'xterm-256color');
    assert.equal(lines[3], lines[0]);
    assert.equal(lines[4], 'alice');
  });

  test('terminal modes from the client are applied', async () => {
    // The client's terminal has erase = ^H and -echo; the pty on the server must too.
    const inner = `stty rows 24 cols 80 erase '^H' -echo; ssh ${sshArgs(server.port, world.keys.ed25519, 'alice', ['-tt']).join(' ')} 'stty -a'`;
    const r = await run('script', ['-qec', inner, '/dev/null'], { input: '' });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /erase = \^H/);
    assert.match(r.stdout, /-echo\b/);
  });

  test('window-change resizes the pty', async () => {
    // The client runs in a terminal of our own (node-pty), which we then resize.
    const pty = await import('node-pty');
    const term = pty.spawn('ssh', sshArgs(server.port, world.keys.ed25519, 'alice', ['-tt']).concat(['stty size; sleep 1.5; stty size']), { cols: 90, rows: 30, env: process.env as Record<string, string> });
    let out = '';
    term.onData((d) => (out += d));
    const exited = new Promise<number>((resolve) => term.onExit(({ exitCode }) => resolve(exitCode)));
    for (let i = 0; i < 100 && !/30 90/.test(out); i++) await new Promise((r) => setTimeout(r, 30));
    term.resize(111, 33);
    assert.equal(await exited, 0, out);
    const sizes = out.replace(/\r/g, '').split('\n').filter((l) => /^\d+ \d+$/.test(l.trim())).map((l) => l.trim());
    assert.deepEqual(sizes, ['30 90', '33 111'], out);
  });
});

describe('signal', () => {
  // OpenSSH's client never sends "signal" requests; ssh2's client library does.
  test('a client signal reaches the process; an unknown one is refused', async () => {
    const { Client } = (await import('ssh2')).default;
    const { readFileSync } = await import('node:fs');
    const client = new Client();
    const result = await new Promise<{ out: string; code: number | undefined }>((resolve, reject) => {
      client.on('error', reject);
      client.on('ready', () => {
        client.exec("trap 'echo got-INT; exit 3' INT; echo ready; while :; do sleep 0.1; done", (err, ch) => {
          if (err) return reject(err);
          let out = '';
          let code: number | undefined;
          ch.on('data', (d: Buffer) => {
            out += d.toString();
            if (out === 'ready\n') ch.signal('INT');
          });
          ch.on('exit', (c: number) => (code = c));
          ch.on('close', () => resolve({ out, code }));
        });
      });
      client.connect({ host: '127.0.0.1', port: server.port, username: 'alice', privateKey: readFileSync(world.keys.ed25519!) });
    });
    client.end();
    assert.equal(result.out, 'ready\ngot-INT\n');
    assert.equal(result.code, 3);
  });
});
