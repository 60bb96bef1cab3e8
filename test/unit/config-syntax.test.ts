// Lexical rules, blocks, top-level keywords, error format and the disk loader.
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConfigError, DEFAULT_CONFIG_PATH, formatAddress, loadConfig, parseConfigText, type Config } from '../../src/config/index.ts';

const P = '/etc/lukko/lukko.conf';
const parse = (text: string): Config => parseConfigText(text, { path: P });

function fails(text: string, reason: string, line: number, token: string): void {
  assert.throws(() => parse(text), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.equal(e.reason, reason);
    assert.equal(e.file, P);
    assert.equal(e.line, line);
    assert.equal(e.token, token);
    assert.equal(e.message, `${P}:${line}: ${reason} (near '${token}')`);
    assert.deepEqual(e.chain, [`${P}:${line}`]);
    return true;
  });
}

test('trims any 0x01-0x20 whitespace, accepts CRLF and a last line without newline', () => {
  const c = parse('\t listener {\r\n\v bind \t"*:22"\f\r\n\x01}');
  assert.equal(c.listeners.length, 1);
  assert.equal(c.listeners[0]?.implicit, false);
  assert.equal(formatAddress(c.listeners[0]!.bind), '[::]:22');
});

test('blank lines and # comment lines are skipped, also inside blocks', () => {
  const c = parse('# top\n\n   # indented\nlistener {\n# inside\n\n bind "*"\n}\n');
  assert.equal(c.listeners.length, 1);
  assert.equal(c.listeners[0]?.line, 4);
});

test('there are no trailing comments', () => {
  fails('populate_io_buffers yes # no', 'Unexpected tokens at end of line: # no', 1, '# no');
  fails('listener {\n bind "*" # x\n}', 'Unexpected tokens at end of line: # x', 2, '# x');
});

test('keywords are [A-Za-z0-9_]+ followed by whitespace, and case-sensitive', () => {
  fails('listener{\n', 'Word expected', 1, 'listener{');
  fails('Listener {\n', 'Unknown option', 1, 'Listener');
  fails('@shellinclude "x"', 'Word expected', 1, '@shellinclude');
  fails('-x y', 'Word expected', 1, '-x');
  fails('frobnicate yes', 'Unknown option', 1, 'frobnicate');
  fails('listener {\n bind "*"\n toString yes\n}', 'Unknown option', 3, 'toString');
});

test('unquoted values are [A-Za-z0-9_.:-]+, anything else must be quoted', () => {
  assert.equal(parse('translation_server a-b_c.d:e').translationServer, 'a-b_c.d:e');
  assert.equal(parse('translation_server "/run/ts"').translationServer, '/run/ts');
  assert.equal(parse("translation_server '@ts'").translationServer, '@ts');
  fails('translation_server /run/ts', 'Value expected', 1, '/run/ts');
  fails('translation_server @ts', 'Value expected', 1, '@ts');
  fails('translation_server a*b', 'Value expected', 1, 'a*b');
  fails('translation_server', 'Value expected', 1, 'translation_server');
});

test('quoted values have no escapes and may not be empty or unterminated', () => {
  assert.equal(parse('translation_server "a\\b"').translationServer, 'a\\b');
  assert.equal(parse(`translation_server "it's"`).translationServer, "it's");
  fails('translation_server ""', 'Empty value not allowed', 1, '""');
  fails("translation_server ''", 'Empty value not allowed', 1, "''");
  fails('translation_server "abc', 'Value expected', 1, '"abc');
  fails('translation_server "a""b"', 'Unexpected tokens at end of line: "b"', 1, '"b"');
  fails('translation_server a b', 'Unexpected tokens at end of line: b', 1, 'b');
});

test('booleans are exactly yes or no', () => {
  assert.equal(parse('populate_io_buffers yes').populateIoBuffers, true);
  assert.equal(parse('populate_io_buffers "yes"\npopulate_io_buffers no').populateIoBuffers, false);
  fails('populate_io_buffers Yes', 'yes/no expected', 1, 'Yes');
  fails('populate_io_buffers 1', 'yes/no expected', 1, '1');
  fails('populate_io_buffers ""', 'yes/no expected', 1, '""');
  fails('populate_io_buffers', 'yes/no expected', 1, 'populate_io_buffers');
  fails('populate_io_buffers yes no', 'Unexpected tokens at end of line: no', 1, 'no');
});

test('top-level defaults', () => {
  const c = parse('');
  assert.equal(c.path, P);
  assert.equal(c.configDir, '/etc/lukko');
  assert.equal(c.populateIoBuffers, false);
  assert.equal(c.translationServer, undefined);
  assert.deepEqual(c.controls, []);
  assert.deepEqual(c.prometheusExporters, []);
  assert.equal(c.targetHosts.size, 0);
  assert.equal(c.zeroconfClusters.size, 0);
  assert.deepEqual(c.spawn, { allowUsers: [], allowGroups: [], systemdScopeOptional: false, resources: {} });
});

test('configDir is absolute, the CWD for a bare file name', () => {
  assert.equal(parseConfigText('', { path: 'lukko.conf' }).configDir, process.cwd());
  assert.equal(parseConfigText('', { path: 'etc/x/lukko.conf' }).configDir, join(process.cwd(), 'etc/x'));
});

test("a block's '{' must be the last token on the keyword's line", () => {
  fails('listener\n{\n', "'{' expected", 1, 'listener');
  fails('listener foo {\n', "'{' expected", 1, 'foo');
  fails('listener {x\n', "Unexpected tokens after '{': x", 1, 'x');
  fails('listener { }', "Unexpected tokens after '{': }", 1, '}');
  fails('zeroconf_cluster {\n', 'Value expected', 1, '{');
});

test('blocks do not nest', () => {
  fails('listener {\n control {\n', 'Unknown option', 2, 'control');
  fails('listener {\n {\n', 'Word expected', 2, '{');
});

test("a '}' outside a block is a syntax error; inside it must stand alone", () => {
  fails('}', 'Word expected', 1, '}');
  fails('listener {\n bind "*"\n} x', 'Unexpected tokens at end of line: x', 3, 'x');
  fails('listener {\n bind "*"\n} # done', 'Unexpected tokens at end of line: # done', 3, '# done');
});

test("block validation reports the '}' line", () => {
  fails('listener {\n  tag x\n\n}\n', 'Listener has no bind address', 4, '}');
});

test('an unclosed block names the file and line where it was opened', () => {
  assert.throws(() => parse('# x\nlistener {\n bind "*"\n'), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.equal(e.message, `${P}:2: Block not closed at end of file (near 'listener')`);
    assert.equal(e.line, 2);
    assert.deepEqual(e.chain, [`${P}:2`]);
    return true;
  });
});

test('an include without file access fails instead of touching the disk', () => {
  assert.throws(() => parse('@include "x.conf"'), {
    message: `${P}:1: Failed to open "/etc/lukko/x.conf": Function not implemented (near '"x.conf"')`,
  });
});

test('ConfigError without position has a plain message', () => {
  const e = new ConfigError('Something', { token: 't' });
  assert.equal(e.message, "Something (near 't')");
  assert.deepEqual(e.chain, []);
  assert.ok(e instanceof Error);
});

test('loadConfig reads the file and its includes from disk', () => {
  const dir = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/config');
  const c = loadConfig(join(dir, 'lukko.conf'));
  assert.equal(c.configDir, dir);
  assert.equal(c.listeners.length, 1);
  assert.equal(c.listeners[0]?.tag, 'main');
  assert.deepEqual(c.listeners[0]?.hostKeyFiles, [join(dir, 'host_ed25519_key')]);
  assert.equal(c.prometheusExporters[0]?.file, join(dir, 'conf.d/10-prometheus.conf'));
  assert.equal(formatAddress(c.prometheusExporters[0]!.bind), '127.0.0.1:9100');
  assert.equal(formatAddress(c.controls[0]!.bind), '@lukko-control');
});

test('loadConfig reports an unopenable main file without a line', () => {
  assert.equal(DEFAULT_CONFIG_PATH, '/etc/cm4all/lukko/lukko.conf');
  assert.throws(() => loadConfig('/nonexistent/lukko.conf'), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.equal(e.message, 'Failed to open "/nonexistent/lukko.conf": No such file or directory');
    assert.equal(e.file, '/nonexistent/lukko.conf');
    assert.equal(e.line, undefined);
    return true;
  });
});
