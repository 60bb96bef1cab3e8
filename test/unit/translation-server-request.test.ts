import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodePacket } from '../../src/translation/codec.ts';
import { TranslationCommand as C } from '../../src/translation/commands.ts';
import { buildLoginRequest } from '../../src/translation/login-request.ts';
import { MAX_REQUEST_BYTES, RequestError, frameRequest, parseLoginRequest } from '../../src/translation-server/request.ts';
import type { ParsedLoginRequest } from '../../src/translation-server/request.ts';

// The spec's request vectors (spec/translation-protocol.md §5).
const TV1 = Buffer.from('000001000000a4000300a80073736805000e00616c69636500000200', 'hex');
const TV2 = Buffer.from('000001000000a4000300a800737368060094007075626c696305000e00616c6963650600a60073336372657400000200', 'hex');
const TV3 = Buffer.from('000001000000a4000300a8007373680500940066726f6e7403000e00626f620000140100000200', 'hex');

function parse(bytes: Buffer): ParsedLoginRequest {
  const f = frameRequest(bytes);
  assert.equal(f.kind, 'complete', f.kind === 'malformed' ? f.error.message : f.kind);
  if (f.kind !== 'complete') assert.fail();
  assert.equal(f.size, bytes.length);
  return parseLoginRequest(f.packets);
}

/** The reason a request is refused, from framing or from parsing. */
function refusal(bytes: Buffer): string {
  const f = frameRequest(bytes);
  if (f.kind === 'malformed') return f.error.message;
  assert.equal(f.kind, 'complete');
  if (f.kind !== 'complete') assert.fail();
  try {
    parseLoginRequest(f.packets);
  } catch (e) {
    assert.ok(e instanceof RequestError);
    return e.message;
  }
  assert.fail('the request was accepted');
}

const pk = (command: number, payload: string | Buffer = ''): Buffer => encodePacket(command, typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload);
const request = (...middle: Buffer[]): Buffer => Buffer.concat([pk(C.BEGIN), ...middle, pk(C.END)]);
const LOGIN = pk(C.LOGIN);
const SSH = pk(C.SERVICE, 'ssh');
const ALICE = pk(C.USER, 'alice');

test('the spec vectors: account lookup, password with tag, PEEK', () => {
  assert.deepEqual(parse(TV1), { service: 'ssh', user: 'alice', peek: false });
  assert.deepEqual(parse(TV2), { service: 'ssh', listenerTag: 'public', user: 'alice', password: Buffer.from('s3cret'), peek: false });
  assert.deepEqual(parse(TV3), { service: 'ssh', listenerTag: 'front', user: 'bob', peek: true });
});

test('whatever buildLoginRequest builds parses back to the same fields', () => {
  const cases = [
    { service: 'ssh', user: 'john.doe@example.org' },
    { service: 'ssh', user: 'a', password: 'x'.repeat(256), listenerTag: 't'.repeat(256), peek: true },
    { service: 'ssh', user: 'u', password: Buffer.from([0xff, 0xfe, 0x01]) },
    { service: 'ssh', user: 'u', listenerTag: 'äöü' },
  ];
  for (const c of cases) {
    const r = parse(buildLoginRequest(c));
    assert.equal(r.user, c.user);
    assert.equal(r.service, 'ssh');
    assert.equal(r.listenerTag, c.listenerTag);
    assert.equal(r.peek, c.peek === true);
    assert.deepEqual(r.password, c.password === undefined ? undefined : Buffer.from(c.password));
  }
});

test('BEGIN may carry a version byte; the middle packets may come in any order', () => {
  assert.equal(parse(Buffer.concat([pk(C.BEGIN, '\x03'), LOGIN, SSH, ALICE, pk(C.END)])).protocolVersion, 3);
  assert.deepEqual(parse(request(ALICE, pk(C.PEEK), SSH, LOGIN)), { service: 'ssh', user: 'alice', peek: true });
  // Another service is a well-formed request (the server answers it with a rejection).
  assert.equal(parse(request(LOGIN, pk(C.SERVICE, 'sftp'), ALICE)).service, 'sftp');
});

test('framing is incremental: byte by byte it needs more until END', () => {
  for (let i = 0; i < TV2.length; i++) assert.deepEqual(frameRequest(TV2.subarray(0, i)), { kind: 'need-more' }, `at ${i}`);
  assert.equal(frameRequest(TV2).kind, 'complete');
});

test('pipelined requests: each frame says where the next one starts', () => {
  const both = Buffer.concat([TV1, TV3]);
  const first = frameRequest(both);
  assert.ok(first.kind === 'complete');
  assert.equal(first.size, TV1.length);
  const second = frameRequest(both.subarray(first.size));
  assert.ok(second.kind === 'complete');
  assert.equal(parseLoginRequest(second.packets).user, 'bob');
});

test('framing refuses early: no BEGIN, a second BEGIN, too large', () => {
  const early = (bytes: Buffer, re: RegExp): void => {
    const f = frameRequest(bytes);
    assert.equal(f.kind, 'malformed');
    if (f.kind === 'malformed') assert.match(f.error.message, re);
  };
  early(Buffer.from('GET / HTTP/1.1\r\n'), /starts with #8276, not BEGIN/);
  early(pk(C.LOGIN), /starts with LOGIN, not BEGIN/);
  early(Buffer.concat([pk(C.BEGIN), LOGIN, pk(C.BEGIN)]), /second BEGIN/);
  // A header that announces more than the limit is refused before its payload arrives.
  const header = Buffer.from([0xff, 0xff, C.USER, 0]);
  early(Buffer.concat([pk(C.BEGIN), header]), new RegExp(`larger than ${MAX_REQUEST_BYTES} bytes`));
  // Many small packets without END.
  early(Buffer.concat([pk(C.BEGIN), ...Array.from({ length: 1100 }, () => pk(C.PEEK))]), /larger than 4096/);
  early(Buffer.concat([pk(C.BEGIN), pk(C.USER, 'x'.repeat(5000))]), /larger than/);
  assert.equal(frameRequest(Buffer.concat([pk(C.BEGIN), pk(C.USER, 'x'.repeat(100))]), 50).kind, 'malformed');
});

test('parsing is strict: every packet once, nothing else, lukko\'s limits', () => {
  assert.match(refusal(request(SSH, ALICE)), /no LOGIN packet/);
  assert.match(refusal(request(LOGIN, ALICE)), /no SERVICE/);
  assert.match(refusal(request(LOGIN, SSH)), /no USER/);
  assert.match(refusal(request(LOGIN, SSH, ALICE, ALICE)), /USER appears twice/);
  assert.match(refusal(request(LOGIN, LOGIN, SSH, ALICE)), /LOGIN appears twice/);
  assert.match(refusal(request(LOGIN, SSH, ALICE, pk(C.HOST, 'x'))), /unexpected HOST in a LOGIN request/);
  assert.match(refusal(request(LOGIN, SSH, ALICE, pk(999))), /unexpected #999/);
  assert.match(refusal(request(LOGIN, SSH, ALICE, pk(C.STATUS, '\x94\x01'))), /unexpected STATUS/);
  assert.match(refusal(request(pk(C.LOGIN, 'x'), SSH, ALICE)), /LOGIN has a payload/);
  assert.match(refusal(request(LOGIN, SSH, ALICE, pk(C.PEEK, 'x'))), /PEEK has a payload/);
  assert.match(refusal(Buffer.concat([pk(C.BEGIN, '\x03\x03'), LOGIN, SSH, ALICE, pk(C.END)])), /BEGIN payload/);
  assert.match(refusal(Buffer.concat([pk(C.BEGIN), LOGIN, SSH, ALICE, pk(C.END, 'x')])), /END has a payload/);
  assert.match(refusal(request(LOGIN, pk(C.SERVICE), ALICE)), /empty SERVICE/);
  assert.match(refusal(request(LOGIN, SSH, pk(C.USER, 'bad name'))), /not a valid user name/);
  assert.match(refusal(request(LOGIN, SSH, pk(C.USER, 'a\0b'))), /NUL/);
  assert.match(refusal(request(LOGIN, SSH, pk(C.USER, 'x'.repeat(256)))), /longer than 255/);
  assert.match(refusal(request(LOGIN, SSH, ALICE, pk(C.PASSWORD))), /empty PASSWORD/);
  assert.match(refusal(request(LOGIN, SSH, ALICE, pk(C.PASSWORD, 'x'.repeat(257)))), /PASSWORD longer than 256/);
  assert.match(refusal(request(LOGIN, SSH, ALICE, pk(C.LISTENER_TAG))), /empty LISTENER_TAG/);
  assert.match(refusal(request(LOGIN, SSH, ALICE, pk(C.LISTENER_TAG, 'x'.repeat(257)))), /LISTENER_TAG longer than 256/);
  assert.match(refusal(request(LOGIN, SSH, ALICE, pk(C.LISTENER_TAG, '\xff'))), /not UTF-8/);
  assert.match(refusal(Buffer.concat([pk(C.BEGIN), pk(C.END)])), /no LOGIN/);
  assert.throws(() => parseLoginRequest([]), RequestError);
});
