// @set and ${name} expansion in its three quoting contexts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, parseConfigText, type Config } from '../../src/config/index.ts';

const P = '/etc/lukko/lukko.conf';
const parse = (text: string): Config => parseConfigText(text, { path: P });
const tagOf = (vars: string, tagLine: string): string | undefined =>
  parse(`${vars}\nlistener {\n bind "*"\n ${tagLine}\n}\n`).listeners[0]?.tag;

function fails(text: string, reason: string, line: number, token: string): void {
  assert.throws(() => parse(text), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.equal(e.message, `${P}:${line}: ${reason} (near '${token}')`);
    assert.equal(e.token, token);
    return true;
  });
}

test('outside quotes a variable becomes one single-quoted token', () => {
  assert.equal(tagOf('@set t = "a b"', 'tag ${t}'), 'a b');
  // The wrapping makes it a quoted value, so it cannot be a keyword.
  fails('@set kw = "populate_io_buffers"\n${kw} yes', 'Word expected', 2, "'populate_io_buffers'");
});

test('inside double quotes a variable is spliced verbatim', () => {
  assert.equal(tagOf('@set t = "a b"', 'tag "x-${t}-y"'), 'x-a b-y');
  assert.equal(tagOf('@set a = "1"\n@set b = "2"', 'tag "${a}${b}"'), '12');
});

test('inside single quotes nothing is expanded', () => {
  assert.equal(tagOf('@set t = "v"', "tag '${t}'"), '${t}');
  assert.equal(tagOf('', "tag '${nope'"), '${nope');
});

test('a lone $ stays', () => {
  assert.equal(tagOf('', 'tag "a$b"'), 'a$b');
  assert.equal(tagOf('', 'tag "$"'), '$');
  assert.equal(tagOf('@set t = "v"', 'tag "$${t}"'), '$v');
});

test('@set values may refer to earlier variables; later @set overwrites', () => {
  assert.equal(tagOf('@set a = "x"\n@set b = "${a}/y"', 'tag "${b}"'), 'x/y');
  assert.equal(tagOf('@set a = "1"\n@set a = "2"', 'tag ${a}'), '2');
  assert.equal(tagOf('@set a="tight"', 'tag ${a}'), 'tight');
  assert.equal(tagOf("@set a = 'single'", 'tag ${a}'), 'single');
});

test('@set values use path escapes', () => {
  assert.equal(tagOf('@set a = "q\\"uote"', 'tag ${a}'), 'q"uote');
  // Spliced verbatim into "...", the embedded quote ends the string early.
  fails('@set a = "q\\"uote"\ntranslation_server "${a}"', 'Unexpected tokens at end of line: uote"', 2, 'uote"');
  fails('@set a = "bad\\x"', "Quoted value expected after '='", 1, '"bad\\x"');
});

test('variables are global, also across includes', () => {
  const files: Record<string, string> = { '/etc/lukko/vars.conf': '@set port = "2022"\n' };
  const c = parseConfigText('@include "vars.conf"\nlistener {\n bind "*:${port}"\n}\n', {
    path: P,
    readFile: (p) => files[p] ?? '',
    listDir: () => [],
  });
  assert.equal(c.listeners[0]?.bind.kind === 'inet' && c.listeners[0].bind.port, 2022);
});

test('variables expand inside paths and addresses', () => {
  const c = parse('@set dir = "/srv/keys"\nlistener {\n bind "*"\n host_key_file "${dir}/k1"\n host_key_file ${dir}\n}');
  assert.deepEqual(c.listeners[0]?.hostKeyFiles, ['/srv/keys/k1', '/srv/keys']);
});

test('expansion errors', () => {
  fails('translation_server ${}', "Variable name expected after '${'", 1, '${}');
  fails('translation_server "${-x}"', "Variable name expected after '${'", 1, '${');
  fails('translation_server ${abc', "Missing '}' after variable name", 1, '${abc');
  fails('\ntranslation_server "${nope}"', 'No such variable: nope', 2, '${nope}');
});

test('@set syntax errors', () => {
  fails('@set', 'Variable name expected', 1, '@set');
  fails('@set = "x"', 'Variable name expected', 1, '=');
  fails('@set a "x"', "'=' expected", 1, '"x"');
  fails('@set a', "'=' expected", 1, 'a');
  fails('@set a = x', "Quoted value expected after '='", 1, 'x');
  fails('@set a =', "Quoted value expected after '='", 1, '=');
  fails('@set a = "x" y', 'Unexpected tokens at end of line: y', 1, 'y');
  fails('@setx a = "x"', 'Word expected', 1, '@setx');
});
