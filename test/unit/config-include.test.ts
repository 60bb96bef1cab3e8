// @include (with globs), @include_optional, include chains and block state across files.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { ConfigError, loadConfig, parseConfigText, type Config } from '../../src/config/index.ts';

const root = realpathSync(mkdtempSync(join(tmpdir(), 'lukko-config-')));
after(() => rmSync(root, { recursive: true, force: true }));

let counter = 0;
/** Writes a fresh tree of files and returns its directory; `lukko.conf` is the main file. */
function tree(files: Record<string, string>): string {
  const dir = join(root, `t${++counter}`);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

const load = (dir: string): Config => loadConfig(join(dir, 'lukko.conf'));
const listener = (tag: string): string => `listener {\n bind "*"\n tag ${tag}\n}\n`;
const tags = (c: Config): string[] => c.listeners.map((l) => l.tag);

function loadFails(dir: string, message: string, chain: string[]): ConfigError {
  let caught: unknown;
  assert.throws(() => load(dir), (e: unknown) => {
    caught = e;
    return true;
  });
  assert.ok(caught instanceof ConfigError);
  assert.equal(caught.message, message);
  assert.deepEqual(caught.chain, chain);
  return caught;
}

test('a relative include resolves against the including file, recursively', () => {
  const d = tree({
    'lukko.conf': '@include "sub/a.conf"\n',
    'sub/a.conf': '@include "b.conf"\n' + listener('a'),
    'sub/b.conf': listener('b'),
  });
  assert.deepEqual(tags(load(d)), ['b', 'a']);
});

test('an absolute include path is used as is', () => {
  const d = tree({ 'x/other.conf': listener('abs') });
  const d2 = tree({ 'lukko.conf': `@include "${join(d, 'x/other.conf')}"` });
  assert.deepEqual(tags(load(d2)), ['abs']);
});

test('glob includes are sorted, and a leading dot is not special', () => {
  const d = tree({
    'lukko.conf': '@include "conf.d/*.conf"\n',
    'conf.d/z.conf': listener('z'),
    'conf.d/a.conf': listener('a'),
    'conf.d/.hidden.conf': listener('hidden'),
    'conf.d/B.conf': listener('B'),
    'conf.d/notes.txt': 'garbage',
  });
  assert.deepEqual(tags(load(d)), ['hidden', 'B', 'a', 'z']);
});

test('? and [...] work in glob patterns', () => {
  const d = tree({
    'lukko.conf': '@include "d/?[a-b]*.conf"\n@include "d/[!x]?.c*"\n',
    'd/1a.conf': listener('1a'),
    'd/2b-x.conf': listener('2b'),
    'd/3c.conf': listener('3c'),
    'd/xy.conf': listener('xy'),
  });
  assert.deepEqual(tags(load(d)), ['1a', '2b', '1a', '3c']);
});

test('[ alone does not make a glob', () => {
  const d = tree({ 'lukko.conf': '@include "x[1].conf"\n', 'x[1].conf': listener('bracket'), 'x1.conf': listener('one') });
  assert.deepEqual(tags(load(d)), ['bracket']);
});

test('a glob matching nothing is fine, a missing directory is not', () => {
  const ok = tree({ 'lukko.conf': '@include "conf.d/*.conf"\n', 'conf.d/readme': 'x' });
  assert.equal(load(ok).listeners[0]?.implicit, true);
  const bad = tree({ 'lukko.conf': '\n@include "missing.d/*.conf"\n' });
  const main = join(bad, 'lukko.conf');
  loadFails(bad, `${main}:2: Failed to open directory "${join(bad, 'missing.d')}": No such file or directory (near '"missing.d/*.conf"')`, [`${main}:2`]);
});

test('directory components are never globbed', () => {
  const d = tree({ 'lukko.conf': '@include "c*/a.conf"\n', 'conf/a.conf': listener('a') });
  const main = join(d, 'lukko.conf');
  loadFails(d, `${main}:1: Failed to open "${join(d, 'c*/a.conf')}": No such file or directory (near '"c*/a.conf"')`, [`${main}:1`]);
});

test('a missing plain include is an error', () => {
  const d = tree({ 'lukko.conf': '# first\n@include "nope.conf"\n' });
  const main = join(d, 'lukko.conf');
  const e = loadFails(d, `${main}:2: Failed to open "${join(d, 'nope.conf')}": No such file or directory (near '"nope.conf"')`, [`${main}:2`]);
  assert.equal(e.token, '"nope.conf"');
});

test('@include_optional ignores ENOENT and ENOTDIR but does not glob', () => {
  const d = tree({
    'lukko.conf': '@include_optional "local.conf"\n@include_optional "file/x.conf"\n@include_optional "*.conf"\n',
    file: 'not a directory',
    'a.conf': listener('glob-would-find-me'),
  });
  assert.equal(load(d).listeners[0]?.implicit, true);
  const lit = tree({ 'lukko.conf': '@include_optional "*.conf"\n', '*.conf': listener('literal'), 'b.conf': listener('b') });
  assert.deepEqual(tags(load(lit)), ['literal']);
});

test('@include_optional reports other errors, without quotes around the path', () => {
  const d = tree({ 'lukko.conf': '@include_optional "sub"\n', 'sub/x': '' });
  const main = join(d, 'lukko.conf');
  loadFails(d, `${main}:1: Failed to open ${join(d, 'sub')}: Is a directory (near '"sub"')`, [`${main}:1`]);
  const denied = Object.assign(new Error('denied'), { code: 'EACCES' });
  assert.throws(
    () => parseConfigText('@include_optional "/x.conf"', { path: '/m.conf', readFile: () => { throw denied; } }),
    { message: `/m.conf:1: Failed to open /x.conf: Permission denied (near '"/x.conf"')` },
  );
});

test('include paths must be quoted; escapes are recognised', () => {
  const d = tree({ 'lukko.conf': '@include "we\\"ird\\\\.conf"\n', 'we"ird\\.conf': listener('weird') });
  assert.deepEqual(tags(load(d)), ['weird']);
  const p = { path: '/m.conf' };
  assert.throws(() => parseConfigText('@include x.conf', p), { message: "/m.conf:1: Quoted path expected (near 'x.conf')" });
  assert.throws(() => parseConfigText('@include "a\\x"', p), { message: `/m.conf:1: Quoted path expected (near '"a\\x"')` });
  assert.throws(() => parseConfigText('@include "abc', p), { message: `/m.conf:1: Quoted path expected (near '"abc')` });
  assert.throws(() => parseConfigText('@include', p), { message: "/m.conf:1: Quoted path expected (near '@include')" });
  assert.throws(() => parseConfigText('@include ""', p), { message: `/m.conf:1: Empty value not allowed (near '""')` });
  assert.throws(() => parseConfigText('@include "a" b', p), { message: "/m.conf:1: Unexpected tokens at end of line: b (near 'b')" });
  assert.throws(() => parseConfigText('@includes "a"', p), { message: "/m.conf:1: Word expected (near '@includes')" });
});

test('include paths are not variable-expanded', () => {
  const d = tree({ 'lukko.conf': '@set d = "sub"\n@include "${d}/a.conf"\n', 'sub/a.conf': listener('a') });
  const main = join(d, 'lukko.conf');
  loadFails(d, `${main}:2: Failed to open "${join(d, '${d}/a.conf')}": No such file or directory (near '"\${d}/a.conf"')`, [`${main}:2`]);
});

test('block state crosses include boundaries in both directions', () => {
  const d = tree({
    'lukko.conf': 'listener {\n@include "body.conf"\n}\n@include "open.conf"\n tag second\n}\n',
    'body.conf': 'bind "*:22"\ntag first\n',
    'open.conf': 'listener {\n bind "*:23"\n',
  });
  const c = load(d);
  assert.deepEqual(tags(c), ['first', 'second']);
  assert.equal(c.listeners[1]?.file, join(d, 'open.conf'));
  assert.equal(c.listeners[1]?.line, 1);
});

test('relative paths inside an included file resolve against that file', () => {
  const d = tree({ 'lukko.conf': 'listener {\n bind "*"\n@include "keys/k.conf"\n}\n', 'keys/k.conf': 'host_key_file "host_key"\n' });
  assert.deepEqual(load(d).listeners[0]?.hostKeyFiles, [join(d, 'keys/host_key')]);
});

test('errors in nested includes carry the whole include chain', () => {
  const d = tree({
    'lukko.conf': '# one\n# two\n@include "conf.d/*.conf"\n',
    'conf.d/a.conf': '\n@include "../deep.conf"\n',
    'deep.conf': 'listener {\n bind "*"\n bogus yes\n}\n',
  });
  const main = join(d, 'lukko.conf');
  const a = join(d, 'conf.d/a.conf');
  const deep = join(d, 'deep.conf');
  const e = loadFails(d, `${deep}:3: Unknown option (near 'bogus')`, [`${main}:3`, `${a}:2`, `${deep}:3`]);
  assert.equal(e.file, deep);
  assert.equal(e.line, 3);
});

test('an unclosed block opened in an include reports its chain', () => {
  const d = tree({ 'lukko.conf': '\n@include "open.conf"\n', 'open.conf': '# x\nspawn {\n' });
  const main = join(d, 'lukko.conf');
  const open = join(d, 'open.conf');
  loadFails(d, `${open}:2: Block not closed at end of file (near 'spawn')`, [`${main}:2`, `${open}:2`]);
});

test('self-inclusion stops with an error instead of overflowing the stack', () => {
  const d = tree({ 'lukko.conf': '@include "lukko.conf"\n' });
  assert.throws(() => load(d), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.equal(e.reason, 'Too many nested includes');
    assert.equal(e.chain.length, 33);
    return true;
  });
});

test('injected readFile/listDir are the only file access of parseConfigText', () => {
  const files: Record<string, string> = { '/v/conf.d/b.conf': listener('b'), '/v/conf.d/a.conf': listener('a') };
  const seen: string[] = [];
  const c = parseConfigText('@include "conf.d/*.conf"', {
    path: '/v/lukko.conf',
    readFile: (p) => {
      seen.push(p);
      const t = files[p];
      if (t === undefined) throw Object.assign(new Error('x'), { code: 'ENOENT' });
      return t;
    },
    listDir: (dir) => {
      assert.equal(dir, '/v/conf.d');
      return ['b.conf', '.', '..', 'a.conf', 'c.txt'];
    },
  });
  assert.deepEqual(tags(c), ['a', 'b']);
  assert.deepEqual(seen, ['/v/conf.d/a.conf', '/v/conf.d/b.conf']);
});
