import assert from 'node:assert/strict';
import { mkdtempSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { chooseLogMode, createLogger, prettyLine } from '../../src/log/logger.ts';

test('under systemd: JSON with a syslog priority prefix journald understands', () => {
  const file = join(mkdtempSync(join(tmpdir(), 'lukko-log-')), 'out');
  const fd = openSync(file, 'w');
  const log = createLogger({ fd, mode: 'journal' });
  log.info({ user: 'alice' }, 'accepted');
  log.warn('careful');
  log.error('broken');
  const lines = readFileSync(file, 'utf8').trim().split('\n');
  assert.match(lines[0]!, /^<6>\{.*"user":"alice".*"msg":"accepted"\}$/);
  assert.match(lines[1]!, /^<4>\{/);
  assert.match(lines[2]!, /^<3>\{/);
  assert.doesNotMatch(lines[0]!, /"time"/); // journald stamps lines itself
});

test('mode: journal under systemd, readable in a terminal, JSON otherwise', () => {
  assert.equal(chooseLogMode(1, { JOURNAL_STREAM: '8:123' }, true), 'journal');
  assert.equal(chooseLogMode(1, {}, true), 'pretty');
  assert.equal(chooseLogMode(1, {}, false), 'json');
  assert.equal(chooseLogMode(-1, {}, false), 'none');
});

test('readable lines carry level, message and fields', () => {
  const line = prettyLine('{"level":40,"time":0,"pid":7,"msg":"hello","user":"bob","n":2}');
  assert.match(line, /WARN \[7\] hello user=bob n=2/);
});
