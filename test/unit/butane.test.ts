// butane/: the Flatcar Butane configs and the Ignition JSON they stand for. The real `butane`
// cannot run here (docs/flatcar.md), so scripts/butane-to-ignition.ts transpiles our subset;
// this test checks that the checked-in .ign files are exactly its output, that the unit texts
// are units/ byte for byte, and that Debian's ignition-validate (installed with apt-get if
// missing) accepts every config and each example merged into the main one, and rejects
// broken ones (so a broken config fails this test, not a Flatcar boot).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test } from 'node:test';
import type { Ignition, Yaml } from '../../scripts/butane-to-ignition.ts';
import {
  BUTANE_DIR,
  ButaneError,
  butaneFiles,
  butaneToIgnition,
  decodeDataUrl,
  ensureIgnitionValidate,
  mergeIgnition,
  parseYaml,
  transpile,
  validateIgnition,
} from '../../scripts/butane-to-ignition.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const unitText = (name: string): string => readFileSync(join(ROOT, 'units', name), 'utf8');
const readIgn = (rel: string): Ignition => JSON.parse(readFileSync(join(BUTANE_DIR, rel.replace(/\.bu$/, '.ign')), 'utf8')) as Ignition;
type Unit = { name: string; contents?: string; enabled?: boolean; mask?: boolean; dropins?: { name: string; contents?: string }[] };
const units = (ign: Ignition): Unit[] => (ign.systemd?.units ?? []) as unknown as Unit[];
const unit = (ign: Ignition, name: string): Unit => {
  const u = units(ign).find((x) => x.name === name);
  assert.ok(u, `no ${name} in the config`);
  return u;
};
const EXAMPLES = ['examples/port-2222.bu', 'examples/one-address.bu', 'examples/two-ports.bu', 'examples/sshd-port-2222.bu'];

before(() => {
  const why = ensureIgnitionValidate();
  if (why) throw new Error(`ignition-validate is needed for this test: ${why}`);
});

test('the YAML subset: mappings, lists of mappings, octal modes, quoting, literal blocks', () => {
  const doc = parseYaml(
    [
      '# comment',
      'a: 0644',
      'b: "x: #y"',
      "c: 'it''s'",
      'd: plain text # trailing comment',
      'list:',
      '  - name: one',
      '    on: true',
      '  - name: two',
      '    text: |',
      '      [Unit]',
      '',
      '      # kept',
      '        indented',
      'seq:',
      '- 1',
      '- x',
    ].join('\n'),
  );
  assert.deepEqual(doc, {
    a: 420,
    b: 'x: #y',
    c: "it's",
    d: 'plain text',
    list: [{ name: 'one', on: true }, { name: 'two', text: '[Unit]\n\n# kept\n  indented\n' }],
    seq: [1, 'x'],
  } satisfies Yaml);
  assert.throws(() => parseYaml('a: [1, 2]'), ButaneError);
  assert.throws(() => parseYaml('a: 1\na: 2'), /duplicate key/);
  assert.throws(() => parseYaml('a:\n\t- 1'), /tabs/);
});

test('the transpiler refuses what it does not know, as a stricter butane would', () => {
  const ok = 'variant: flatcar\nversion: 1.0.0\n';
  assert.deepEqual(butaneToIgnition(parseYaml(ok)), { ignition: { version: '3.3.0' } });
  assert.throws(() => transpile('variant: fcos\nversion: 1.0.0\n'), /variant/);
  assert.throws(() => transpile('variant: flatcar\nversion: 1.1.0\n'), /1\.0\.0/);
  assert.throws(() => transpile(`${ok}systemd:\n  units:\n    - name: x.service\n      enable: true\n`), /unknown key "enable"/);
  assert.throws(() => transpile(`${ok}storage:\n  files:\n    - path: etc/x\n`), /absolute/);
  assert.throws(() => transpile(`${ok}storage:\n  files:\n    - path: /x\n      contents:\n        inline: a\n        source: https://x/\n`), /exactly one/);
  assert.deepEqual(JSON.parse(transpile(`${ok}passwd:\n  users:\n    - name: core\n      ssh_authorized_keys:\n        - ssh-ed25519 AAAA x@y\n      home_dir: /home/core\n`)), {
    ignition: { version: '3.3.0' },
    passwd: { users: [{ name: 'core', sshAuthorizedKeys: ['ssh-ed25519 AAAA x@y'], homeDir: '/home/core' }] },
  });
  const url = JSON.parse(transpile(`${ok}storage:\n  files:\n    - path: /x\n      contents:\n        inline: |\n          a b%#\n`)) as Ignition;
  const source = (url.storage?.files?.[0]?.contents as { source: string }).source;
  assert.equal(decodeDataUrl(source), 'a b%#\n');
});

test('every butane/*.bu transpiles to exactly its checked-in .ign', () => {
  const files = butaneFiles();
  assert.deepEqual(files.sort(), ['lukko.bu', ...EXAMPLES].sort());
  for (const bu of files) {
    const expected = readFileSync(join(BUTANE_DIR, bu.replace(/\.bu$/, '.ign')), 'utf8');
    assert.equal(transpile(readFileSync(join(BUTANE_DIR, bu), 'utf8')), expected, `butane/${bu}: run node scripts/butane-to-ignition.ts --write`);
  }
});

test('the units inside lukko.bu are units/ byte for byte', () => {
  // Straight from the YAML, so the .ign cannot hide a difference.
  const doc = parseYaml(readFileSync(join(BUTANE_DIR, 'lukko.bu'), 'utf8')) as { systemd: { units: { name: string; contents?: string }[] } };
  for (const name of ['lukko.socket', 'lukko@.service', 'lukko-companion.service']) {
    const u = doc.systemd.units.find((x) => x.name === name);
    assert.equal(u?.contents, unitText(name), `${name} in butane/lukko.bu differs from units/${name}`);
  }
  const ign = readIgn('lukko.bu');
  assert.equal(unit(ign, 'lukko.socket').contents, unitText('lukko.socket'));
  assert.equal(unit(ign, 'lukko@.service').contents, unitText('lukko@.service'));
  assert.equal(unit(ign, 'lukko-companion.service').contents, unitText('lukko-companion.service'));
  assert.equal(unit(ign, 'lukko-companion.service').enabled, true);
});

test('lukko.bu: sysext, config, host keys, sshd.socket masked, lukko.socket enabled', () => {
  const ign = readIgn('lukko.bu');
  const files = (ign.storage?.files ?? []) as { path: string; mode?: number; contents: { source: string; verification?: { hash: string } } }[];
  const links = (ign.storage?.links ?? []) as { path: string; target: string; hard?: boolean }[];
  // The sysext: a versioned image under /opt/extensions, verified, linked from /etc/extensions.
  const raw = files.find((f) => f.path.startsWith('/opt/extensions/lukko/'));
  assert.ok(raw, 'no sysext image under /opt/extensions/lukko/');
  assert.match(raw.path, /\/lukko-[^/]+-x86-64\.raw$/);
  assert.equal(raw.mode, 0o644);
  assert.match(raw.contents.source, /^https:\/\//);
  assert.match(raw.contents.verification?.hash ?? '', /^sha512-[0-9a-f]{128}$/);
  assert.deepEqual(links.find((l) => l.path === '/etc/extensions/lukko.raw'), { path: '/etc/extensions/lukko.raw', target: raw.path, hard: false });
  // lukko.conf, and it is a configuration lukko accepts.
  const conf = files.find((f) => f.path === '/etc/cm4all/lukko/lukko.conf');
  assert.ok(conf);
  const dir = mkdtempSync(join(tmpdir(), 'lukko-butane-'));
  try {
    writeFileSync(join(dir, 'lukko.conf'), decodeDataUrl(conf.contents.source));
    const r = spawnSync(join(ROOT, '.runtime/bin/node'), [join(ROOT, 'dist/cli/main.js'), 'check-config', '--config', join(dir, 'lukko.conf')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr + r.stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // Flatcar's sshd.socket (enabled vendor-side, under /usr) is masked; lukko.socket enabled.
  assert.deepEqual(unit(ign, 'sshd.socket'), { name: 'sshd.socket', mask: true });
  assert.equal(unit(ign, 'lukko.socket').enabled, true);
  // Host keys: a oneshot before the socket, and every instance waits for it.
  const keygen = unit(ign, 'lukko-keygen.service');
  assert.equal(keygen.enabled, true);
  assert.match(keygen.contents ?? '', /^Type=oneshot$/m);
  assert.match(keygen.contents ?? '', /^RemainAfterExit=yes$/m);
  assert.match(keygen.contents ?? '', /^Before=lukko\.socket\b/m);
  assert.match(keygen.contents ?? '', /^ExecStart=\/usr\/lib\/lukko\/node\/bin\/node \/usr\/lib\/lukko\/dist\/cli\/main\.js keygen --config \/etc\/cm4all\/lukko\/lukko\.conf$/m);
  assert.match(keygen.contents ?? '', /^WantedBy=sockets\.target$/m);
  const dropin = unit(ign, 'lukko@.service').dropins?.find((d) => d.name === '10-keygen.conf');
  assert.equal(dropin?.contents, '[Unit]\nWants=lukko-keygen.service\nAfter=lukko-keygen.service\n');
});

test('ignition-validate accepts every config without a warning', () => {
  for (const bu of butaneFiles()) {
    const v = validateIgnition(readFileSync(join(BUTANE_DIR, bu.replace(/\.bu$/, '.ign')), 'utf8'));
    assert.ok(v.ok, `butane/${bu}: ${v.output}`);
    assert.equal(v.output, '', `butane/${bu}: ${v.output}`);
  }
});

test('each example merged into lukko.bu as docs/flatcar.md says still validates', () => {
  const main = readIgn('lukko.bu');
  for (const ex of EXAMPLES) {
    const base = JSON.parse(JSON.stringify(main)) as Ignition;
    // The sshd fallback replaces the mask entry.
    if (ex.includes('sshd')) delete (unit(base, 'sshd.socket') as { mask?: boolean }).mask;
    const merged = mergeIgnition(base, readIgn(ex));
    const v = validateIgnition(JSON.stringify(merged));
    assert.ok(v.ok, `lukko.bu + ${ex}: ${v.output}`);
    assert.equal(v.output, '', `lukko.bu + ${ex}: ${v.output}`);
    const target = ex.includes('sshd') ? 'sshd.socket' : 'lukko.socket';
    assert.equal(unit(merged, target).dropins?.length, 1);
    assert.match(unit(merged, target).dropins?.[0]?.contents ?? '', /^ListenStream=$/m, 'a drop-in must reset the ListenStream= list first');
  }
});

test('ignition-validate fails broken configs, so this test would too', () => {
  const main = readIgn('lukko.bu');
  const broken: [string, (c: Ignition) => void][] = [
    ['relative path', (c) => ((c.storage!.files![1] as { path: string }).path = 'etc/cm4all/lukko/lukko.conf')],
    ['drop-in name without .conf', (c) => (unit(c, 'lukko@.service').dropins![0]!.name = '10-keygen')],
    ['hash of the wrong length', (c) => ((c.storage!.files![0] as { contents: { verification: { hash: string } } }).contents.verification.hash = 'sha512-00')],
    ['unterminated section in a unit', (c) => (unit(c, 'lukko.socket').contents = '[Socket\nListenStream=22\n')],
    ['duplicate unit', (c) => c.systemd!.units.push({ name: 'lukko.socket', enabled: true })],
    ['spec 3.4.0', (c) => ((c.ignition as { version: string }).version = '3.4.0')],
  ];
  for (const [what, spoil] of broken) {
    const c = JSON.parse(JSON.stringify(main)) as Ignition;
    spoil(c);
    const v = validateIgnition(JSON.stringify(c));
    assert.equal(v.ok, false, `${what}: ignition-validate accepted it`);
  }
});
