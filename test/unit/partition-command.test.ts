import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parsePartitionCommand, splitBackslashEscaped, unquoteShellWord } from '../../src/session/partition-command.ts';

test('rsync --server: split on spaces, backslash escapes kept literal', () => {
  assert.deepEqual(parsePartitionCommand('rsync --server -logDtpre.iLsfxCIvu . my\\ dir/'), {
    service: 'rsync',
    args: ['--server', '-logDtpre.iLsfxCIvu', '.', 'my dir/'],
  });
  assert.equal(parsePartitionCommand('rsync --serverx'), undefined);
  assert.equal(parsePartitionCommand('rsync -av . /x'), undefined);
});

test("git-*-pack '<path>': the path unquoted, nothing a shell would interpret", () => {
  assert.deepEqual(parsePartitionCommand("git-upload-pack 'repo.git'"), { service: 'git-upload-pack', args: ['repo.git'] });
  assert.deepEqual(parsePartitionCommand("git-receive-pack '~/it'\\''s.git'"), { service: 'git-receive-pack', args: ["~/it's.git"] });
  assert.equal(parsePartitionCommand("git-upload-pack 'a'; rm -rf /"), undefined);
  assert.equal(parsePartitionCommand('git-upload-pack $(id)'), undefined);
  assert.equal(parsePartitionCommand("git-upload-pack 'unterminated"), undefined);
  assert.equal(parsePartitionCommand('git-upload-pack '), undefined);
  assert.equal(parsePartitionCommand('git upload-pack x'), undefined);
});

test('the splitters on their own', () => {
  assert.deepEqual(splitBackslashEscaped('a  b\\\\c'), ['a', 'b\\c']);
  assert.equal(splitBackslashEscaped('trailing\\'), undefined);
  assert.equal(unquoteShellWord("'a b'c"), 'a bc');
  assert.equal(unquoteShellWord('a b'), undefined);
});
