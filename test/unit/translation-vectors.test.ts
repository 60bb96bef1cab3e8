// The spec's translation test vectors (spec/translation-protocol.md §5), loaded from the
// shared JSON so that the bytes here cannot drift from the spec's.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ResponseDecoder, decodePackets, encodePackets } from '../../src/translation/codec.ts';
import { TranslationError } from '../../src/translation/errors.ts';
import { buildLoginRequest } from '../../src/translation/login-request.ts';
import type { LoginRequest } from '../../src/translation/login-request.ts';
import {
  isExecAllowed, isPasswordless, isRejected, isSftpAllowed, isSftpOnly, parseLoginResponse,
} from '../../src/translation/response.ts';
import type { TranslationResponse } from '../../src/translation/response.ts';

const json = JSON.parse(readFileSync(new URL('../../../shared/testdata/protocol-vectors.json', import.meta.url), 'utf8')) as {
  translation: Record<string, { hex: string; description: string; expect?: string }>;
};
const tv = (name: string): Buffer => Buffer.from(json.translation[name]!.hex, 'hex');

const requests: Record<string, LoginRequest> = {
  TV1: { service: 'ssh', user: 'alice' },
  TV2: { service: 'ssh', listenerTag: 'public', user: 'alice', password: 's3cret' },
  TV3: { service: 'ssh', listenerTag: 'front', user: 'bob', peek: true },
};

test('the JSON holds the twelve translation vectors', () => {
  assert.deepEqual(Object.keys(json.translation).sort(), Array.from({ length: 12 }, (_, i) => `TV${i + 1}`).sort());
});

for (const [name, request] of Object.entries(requests)) {
  test(`${name}: the LOGIN request is built byte for byte`, () => {
    assert.equal(buildLoginRequest(request).toString('hex'), json.translation[name]!.hex);
  });

  test(`${name}: the request decodes into its packets and encodes back`, () => {
    const d = decodePackets(tv(name), { eof: true });
    assert.equal(d.kind, 'complete');
    if (d.kind !== 'complete') return;
    assert.deepEqual(encodePackets(d.packets), tv(name));
  });
}

function parseVector(name: string): TranslationResponse | TranslationError {
  const d = decodePackets(tv(name), { eof: true });
  assert.equal(d.kind, 'complete', `${name} frames as one response`);
  if (d.kind !== 'complete') throw new Error('unreachable');
  assert.deepEqual(encodePackets(d.packets), tv(name), `${name} re-encodes byte for byte`);
  return parseLoginResponse(d.packets);
}

function ok(name: string): TranslationResponse {
  const r = parseVector(name);
  if (r instanceof TranslationError) assert.fail(`${name}: ${r.message}`);
  return r;
}

for (let i = 4; i <= 12; i++) {
  const name = `TV${i}`;
  test(`${name}: decoding byte by byte gives the same packets as in one piece`, () => {
    const whole = decodePackets(tv(name), { eof: true });
    const decoder = new ResponseDecoder();
    const bytes = tv(name);
    for (let j = 0; j < bytes.length; j++) {
      const state = decoder.push(bytes.subarray(j, j + 1));
      assert.equal(state.kind, j === bytes.length - 1 ? 'complete' : 'need-more', `after byte ${j}`);
    }
    assert.deepEqual(decoder.end(), whole);
  });
}

test('TV4: user not found is a rejection with status 404 and the message', () => {
  const r = ok('TV4');
  assert.equal(r.protocolVersion, 3);
  assert.equal(r.status, 404);
  assert.equal(r.message, 'No such user');
  assert.equal(isRejected(r), true);
  assert.equal(r.topLevel, undefined);
});

test('TV5: password wrong is a rejection with status 403', () => {
  const r = ok('TV5');
  assert.equal(r.status, 403);
  assert.equal(r.message, undefined);
  assert.equal(isRejected(r), true);
});

test('TV6: minimal success: uid/gid 1000, home and shell, no version', () => {
  const r = ok('TV6');
  assert.equal(r.protocolVersion, undefined);
  assert.equal(isRejected(r), false);
  assert.deepEqual(r.topLevel?.uidGid, { uid: 1000, gid: 1000, groups: [] });
  assert.equal(r.topLevel?.home, '/home/alice');
  assert.equal(r.topLevel?.shell, '/bin/bash');
  assert.equal(isExecAllowed(r), true);
  assert.equal(isPasswordless(r), false);
  assert.deepEqual(r.topLevel?.isolation.packets, []);
});

test('TV7: groups, NO_NEW_PRIVS, umask, RLIMITS, SETENV and CHILD_TAG', () => {
  const t = ok('TV7').topLevel!;
  assert.deepEqual(t.uidGid, { uid: 1001, gid: 100, groups: [27] });
  assert.equal(t.home, '/home/carol');
  assert.equal(t.noNewPrivs, true);
  assert.equal(t.umask, 0o022);
  assert.deepEqual(t.rlimits, new Map([['NOFILE', { soft: 1024n, hard: 1024n }]]));
  assert.deepEqual(t.setenv, ['LANG=C.UTF-8']);
  assert.deepEqual(t.childTags, ['acct42']);
  assert.deepEqual(t.isolation.packets, []);
});

test('TV8: an SFTP-only account with its own sftp partition', () => {
  const r = ok('TV8');
  assert.equal(r.token, 'sftp-only');
  assert.equal(isSftpOnly(r), true);
  assert.equal(isExecAllowed(r), false);
  assert.equal(isSftpAllowed(r), true);
  assert.deepEqual(r.topLevel?.uidGid, { uid: 1000, gid: 1000, groups: [] });
  assert.equal(r.topLevel?.home, '/home/alice');
  assert.deepEqual(r.topLevel?.isolation.packets, []);
  const sftp = r.services.get('sftp');
  assert.ok(sftp);
  assert.deepEqual(sftp.uidGid, { uid: 1000, gid: 1000, groups: [] });
  assert.equal(sftp.home, '/home/alice');
  assert.equal(sftp.execute, '/usr/lib/openssh/sftp-server');
  assert.equal(sftp.isolation.mountRootTmpfs, true);
  assert.deepEqual(sftp.isolation.mounts, [
    { kind: 'home', packet: 'MOUNT_HOME', source: '/home/alice', target: '/home/alice', optional: false },
  ]);
  assert.deepEqual(sftp.isolation.packets, ['MOUNT_ROOT_TMPFS', 'MOUNT_HOME']);
  assert.deepEqual([...r.services.keys()], ['sftp']);
});

test('TV9: AUTHORIZED_KEYS and NO_HOME_AUTHORIZED_KEYS', () => {
  const r = ok('TV9');
  assert.equal(r.authorizedKeys, 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBrF6w7YJ6pgFoO6kXdlv/hA/hSUtAXoBUsDthENj8hK tv\n');
  assert.equal(Buffer.byteLength(r.authorizedKeys), 84);
  assert.equal(r.noHomeAuthorizedKeys, true);
});

test('TV10: NO_PASSWORD sftp: password-less, SFTP only', () => {
  const r = ok('TV10');
  assert.equal(r.noPassword, 'sftp');
  assert.equal(isPasswordless(r), true);
  assert.equal(isSftpOnly(r), true);
  assert.equal(isExecAllowed(r), false);
  assert.equal(isSftpAllowed(r), true);
});

test('TV11: PATH in a response is an unknown packet', () => {
  const r = parseVector('TV11');
  assert.ok(r instanceof TranslationError);
  assert.equal(r.rule, 'unknown');
  assert.equal(r.packet, 'PATH');
});

test('TV12: a success without HOME names no usable account', () => {
  const r = parseVector('TV12');
  assert.ok(r instanceof TranslationError);
  assert.equal(r.rule, 'invalid-account');
  assert.equal(r.packet, 'HOME');
});
