// umask, resource limits and no_new_privs enforced by the real, built lukko-exec, through
// spawnUserProcess: root starts a program as nobody (65534) and the program reports what it got.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import type { SpawnDescription } from '../../src/spawn/description.ts';
import { spawnUserProcess, type ExitInfo } from '../../src/spawn/spawn.ts';
import type { Rlimits } from '../../src/translation/rlimits.ts';

const REPORT = 'umask; ulimit -n; ulimit -Hn; cat /proc/self/status | grep NoNewPrivs';

const asRoot = process.getuid?.() === 0;
const skip = asRoot ? false : 'needs root to change to uid 65534';

function describeAs(extra: Partial<SpawnDescription>): SpawnDescription {
  return {
    file: '/bin/sh',
    argv0: 'sh',
    args: ['-c', REPORT],
    env: [['PATH', '/usr/bin:/bin']],
    cwd: '/',
    uid: 65534,
    gid: 65534,
    groups: [],
    user: 'nobody',
    ...extra,
  };
}

async function run(desc: SpawnDescription): Promise<{ exit: ExitInfo; stdout: string; stderr: string }> {
  const p = await spawnUserProcess(desc);
  p.stdin!.end();
  let stdout = '';
  let stderr = '';
  p.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  p.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exit = await new Promise<ExitInfo>((resolve) => p.onExit(resolve));
  return { exit, stdout, stderr };
}

// What this test process has, from /proc: what a spawn without the fields must inherit.
function ours(): { umask: string; nofile: [string, string]; noNewPrivs: string; capSysResource: boolean } {
  const status = readFileSync('/proc/self/status', 'utf8');
  const field = (name: string) => new RegExp(`^${name}:\\s*(\\S+)`, 'm').exec(status)![1]!;
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'))!;
  const [soft, hard] = line.slice('Max open files'.length).trim().split(/\s+/) as [string, string];
  const CAP_SYS_RESOURCE = 24n;
  return { umask: field('Umask'), nofile: [soft, hard], noNewPrivs: field('NoNewPrivs'), capSysResource: ((BigInt(`0x${field('CapEff')}`) >> CAP_SYS_RESOURCE) & 1n) === 1n };
}

describe('spawn limits through lukko-exec', { skip }, () => {
  test('umask 0027, NOFILE 100/200 and no_new_privs reach the program', async () => {
    const rlimits: Rlimits = new Map([['NOFILE', { soft: 100n, hard: 200n }]]);
    const r = await run(describeAs({ umask: 0o27, rlimits, noNewPrivs: true }));
    assert.deepEqual(r.exit, { code: 0, signal: null, coreDumped: false }, r.stderr);
    assert.equal(r.stdout, '0027\n100\n200\nNoNewPrivs:\t1\n');
    assert.equal(r.stderr, '');
  });

  test('an unset side keeps the inherited value', async () => {
    const [, hard] = ours().nofile;
    const r = await run(describeAs({ rlimits: new Map([['NOFILE', { soft: 50n }]]) }));
    assert.equal(r.exit.code, 0, r.stderr);
    assert.deepEqual(r.stdout.split('\n').slice(1, 3), ['50', hard]);
  });

  test('soft above hard refuses the spawn: exit 126 and the reason on stderr', async () => {
    const r = await run(describeAs({ umask: 0o27, rlimits: new Map([['NOFILE', { soft: 300n, hard: 200n }]]), noNewPrivs: true }));
    assert.equal(r.exit.code, 126);
    assert.equal(r.stdout, ''); // the program never ran
    assert.match(r.stderr, /lukko-exec: rlimit NOFILE: soft limit 300 is above hard limit 200/);
  });

  test('only a soft limit above the inherited hard one is refused too, not clamped', async () => {
    const [, hard] = ours().nofile;
    if (hard === 'unlimited') return; // nothing is above it
    const r = await run(describeAs({ rlimits: new Map([['NOFILE', { soft: BigInt(hard) + 1n }]]) }));
    assert.equal(r.exit.code, 126);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, new RegExp(`soft limit ${BigInt(hard) + 1n} is above hard limit ${hard}`));
  });

  test('a limit the kernel refuses (NOFILE beyond fs.nr_open) refuses the spawn', async () => {
    const nrOpen = BigInt(readFileSync('/proc/sys/fs/nr_open', 'utf8').trim());
    const r = await run(describeAs({ rlimits: new Map([['NOFILE', { soft: 10n, hard: nrOpen + 1n }]]) }));
    assert.equal(r.exit.code, 126);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /lukko-exec: setrlimit NOFILE: Operation not permitted/);
  });

  test('a hard limit is raised while still root, before the uid changes', { skip: ours().capSysResource ? false : 'no CAP_SYS_RESOURCE here' }, async () => {
    const [, hard] = ours().nofile;
    const nrOpen = BigInt(readFileSync('/proc/sys/fs/nr_open', 'utf8').trim());
    if (hard === 'unlimited' || BigInt(hard) >= nrOpen) return;
    const raised = BigInt(hard) + 1n;
    const r = await run(describeAs({ rlimits: new Map([['NOFILE', { soft: 100n, hard: raised }]]) }));
    assert.equal(r.exit.code, 0, r.stderr);
    assert.deepEqual(r.stdout.split('\n').slice(1, 3), ['100', String(raised)]);
  });

  test('absent fields change nothing: inherited umask and limits, no no_new_privs', async () => {
    const o = ours();
    assert.equal(o.noNewPrivs, '0', 'the test itself runs with no_new_privs');
    const r = await run(describeAs({}));
    assert.equal(r.exit.code, 0, r.stderr);
    assert.equal(r.stdout, `${o.umask}\n${o.nofile[0]}\n${o.nofile[1]}\nNoNewPrivs:\t0\n`);
    assert.equal(r.stderr, '');
  });
});
