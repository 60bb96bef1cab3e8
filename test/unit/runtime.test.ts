// The runtime lukko depends on: Node 24, ssh2's native crypto binding, and our ssh2 patches.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { VERSION } from '../../src/version.ts';

const require = createRequire(import.meta.url);

test('runs on the pinned Node.js 24', () => {
  assert.match(process.version, /^v24\./);
});

test("ssh2's native crypto binding is active (without it throughput halves)", () => {
  const crypto = require('ssh2/lib/protocol/crypto.js') as { bindingAvailable: boolean };
  assert.equal(crypto.bindingAvailable, true);
});

test('every ssh2 patch is in place after install', () => {
  const root = require.resolve('ssh2/package.json').replace(/package\.json$/, '');
  const protocol = readFileSync(root + 'lib/protocol/Protocol.js', 'utf8');
  assert.match(protocol, /ecdsa-sha2-nistp521,'\s*\+ 'rsa-sha2-512,rsa-sha2-256'/);
  assert.match(protocol, /disconnect\(reason, desc\)/);
  const server = readFileSync(root + 'lib/server.js', 'utf8');
  assert.match(server, /sha1Pos = -1;/);
  assert.match(server, /const reject = \(code, desc\) =>/);
  assert.match(server, /openssh_authAgent\(cb\) \{ \/\* lukko: agent forwarding/);
  assert.match(server, /case 'auth-agent@openssh\.com': \/\* lukko: agent forwarding/);
  const misc = readFileSync(root + 'lib/protocol/handlers.misc.js', 'utf8');
  assert.match(misc, /bufferParser\.init\(modesBinary, 0\)/);
  assert.match(misc, /\[value\]: key/);
  const kex = readFileSync(root + 'lib/protocol/kex.js', 'utf8');
  assert.match(kex, /const guessedKex = remote\.kex\[0\]/);
});

test('the version matches package.json', () => {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  assert.equal(VERSION, pkg.version);
});

test('native addons built for this runtime load: node-pty, sd-notify', () => {
  assert.equal(typeof (require('node-pty') as { spawn: unknown }).spawn, 'function');
  assert.equal(typeof (require('sd-notify') as { sendStatus: unknown }).sendStatus, 'function');
});

test('ssh2 resumes both stdout and stderr after a window adjust (flow-control patch)', () => {
  const root = require.resolve('ssh2/package.json').replace(/package\.json$/, '');
  const server = readFileSync(root + 'lib/server.js', 'utf8');
  assert.match(server, /resume stdout and stderr, once each/);
  const crypto = readFileSync(root + 'lib/protocol/crypto.js', 'utf8');
  assert.match(crypto, /binding active/);
});
