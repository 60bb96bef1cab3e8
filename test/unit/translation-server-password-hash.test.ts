import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  DEFAULT_PARAMS, KEY_BYTES, PasswordHashError, SALT_BYTES, decodeBase64, dummyHash, encodeBase64, formatPasswordHash,
  hashPassword, parseParams, parsePasswordHash, verifyPassword,
} from '../../src/translation-server/password-hash.ts';

/** Cheap parameters, so that most tests do not spend 70 ms per hash. */
const FAST = { ln: 10, r: 8, p: 1 };

test('hash and verify: the right password matches, others do not', async () => {
  const text = await hashPassword('s3cret', FAST);
  assert.match(text, /^\$scrypt\$ln=10,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
  const hash = parsePasswordHash(text);
  assert.equal(hash.salt.length, SALT_BYTES);
  assert.equal(hash.key.length, KEY_BYTES);
  assert.equal(await verifyPassword(hash, Buffer.from('s3cret')), true);
  assert.equal(await verifyPassword(hash, Buffer.from('s3cret ')), false);
  assert.equal(await verifyPassword(hash, Buffer.from('S3cret')), false);
  assert.equal(formatPasswordHash(hash), text);
  // A new random salt every time.
  assert.notEqual(await hashPassword('s3cret', FAST), text);
});

test('passwords are bytes: UTF-8 text and the same bytes agree', async () => {
  const hash = parsePasswordHash(await hashPassword('pässwörd', FAST));
  assert.equal(await verifyPassword(hash, Buffer.from('pässwörd', 'utf8')), true);
  assert.equal(await verifyPassword(hash, Buffer.from('pässwörd', 'latin1')), false);
});

test('the default cost: ln=15,r=6,p=1, tens of milliseconds per verification', async () => {
  assert.deepEqual(DEFAULT_PARAMS, { ln: 15, r: 6, p: 1 });
  const hash = parsePasswordHash(await hashPassword('x'));
  assert.deepEqual(hash.params, DEFAULT_PARAMS);
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    await verifyPassword(hash, Buffer.from('x'));
    times.push(performance.now() - t0);
  }
  const median = times.sort((a, b) => a - b)[1]!;
  console.log(`# one verification with ${JSON.stringify(DEFAULT_PARAMS)}: ${median.toFixed(1)} ms`);
  assert.ok(median > 10 && median < 400, `${median} ms`);
});

test('a dummy hash matches nothing and costs as much as a real one', async () => {
  const d = dummyHash(FAST);
  assert.deepEqual(d.params, FAST);
  assert.equal(await verifyPassword(d, Buffer.from('')), false);
  assert.equal(await verifyPassword(d, Buffer.from('anything')), false);
  assert.notDeepEqual(dummyHash(FAST).salt, d.salt);
});

test('plain text and foreign hash formats are refused, saying what they are', () => {
  const refuse = (text: string, re: RegExp): void => {
    assert.throws(() => parsePasswordHash(text), (e: unknown) => e instanceof PasswordHashError && re.test(e.message), text);
  };
  refuse('hunter2', /plain-text password.*hash-password/);
  refuse('secret$with$dollars', /plain-text/);
  refuse('$6$salt$abcdefghijklmnop', /SHA-512-crypt.*not supported/);
  refuse('$y$j9T$salt$hash', /yescrypt/);
  refuse('$2b$12$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234', /bcrypt/);
  refuse('$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA', /Argon2/);
  refuse('$1$abc$def', /MD5/);
  refuse('$foo$bar', /unknown hash format/);
});

test('malformed scrypt hashes are refused', async () => {
  const good = await hashPassword('x', FAST);
  const [, , params, salt, key] = good.split('$');
  const bad = (text: string, re: RegExp): void => {
    assert.throws(() => parsePasswordHash(text), (e: unknown) => e instanceof PasswordHashError && re.test(e.message), text);
  };
  bad(`$scrypt$${params}$${salt}`, /\$scrypt\$ln=N/);
  bad(`$scrypt$${params}$${salt}$${key}$extra`, /\$scrypt\$ln=N/);
  bad(`$scrypt$ln=10,r=8$${salt}$${key}`, /need ln, r and p/);
  bad(`$scrypt$ln=10,r=8,p=1,x=2$${salt}$${key}`, /not ln=, r= or p=/);
  bad(`$scrypt$ln=10,ln=11,r=8,p=1$${salt}$${key}`, /twice/);
  bad(`$scrypt$ln=010,r=8,p=1$${salt}$${key}`, /not ln=/);
  bad(`$scrypt$ln=25,r=8,p=1$${salt}$${key}`, /outside 1\.\.24/);
  bad(`$scrypt$ln=20,r=64,p=1$${salt}$${key}`, /MiB, more than 256 MiB/);
  bad(`$scrypt$${params}$${salt}==$${key}`, /not base64/);
  bad(`$scrypt$${params}$${salt}$${key!.slice(0, -1)}!`, /not base64/);
  bad(`$scrypt$${params}$${encodeBase64(Buffer.alloc(4))}$${key}`, /salt of 4 bytes/);
  bad(`$scrypt$${params}$${salt}$${encodeBase64(Buffer.alloc(8))}`, /key of 8 bytes/);
});

test('parameters: any order, each once; base64 must be canonical', () => {
  assert.deepEqual(parseParams('p=1,ln=12,r=8'), { ln: 12, r: 8, p: 1 });
  assert.throws(() => parseParams('ln=12,r=8'), PasswordHashError);
  assert.throws(() => parseParams(''), PasswordHashError);
  assert.deepEqual(decodeBase64(encodeBase64(Buffer.from([1, 2, 3, 4]))), Buffer.from([1, 2, 3, 4]));
  assert.equal(decodeBase64('AQIDBA=='), null); // padding is not written
  assert.equal(decodeBase64('AQIDBB'), null); // non-zero padding bits
  assert.equal(decodeBase64('A'), null);
});
