// `lukko units`: listener blocks → the lukko.socket drop-in (renderSocketDropIn), and the
// listener combinations one socket unit cannot carry.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import ini from 'ini';
import { parseConfigText } from '../../src/config/index.ts';
import type { Config } from '../../src/config/index.ts';
import { DROP_IN_PATH, UnitRenderError, renderSocketDropIn, writeSocketDropIn } from '../../src/systemd/render-units.ts';

const P = '/etc/cm4all/lukko/lukko.conf';
const parse = (text: string): Config => parseConfigText(text, { path: P });
const listener = (...lines: string[]): string => `listener {\n${lines.map((l) => `  ${l}\n`).join('')}}\n`;

/** The [Socket] assignments in file order, comments dropped: [key, value][]. */
function assignments(text: string): [string, string][] {
  return text
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith('['))
    .map((l) => {
      const i = l.indexOf('=');
      return [l.slice(0, i), l.slice(i + 1)];
    });
}
const values = (text: string, key: string): string[] => assignments(text).filter(([k]) => k === key).map(([, v]) => v);
const single = (text: string, key: string): string | undefined => {
  const v = values(text, key);
  assert.ok(v.length <= 1, `${key} assigned ${v.length} times`);
  return v[0];
};

function rejects(text: string, ...patterns: RegExp[]): void {
  assert.throws(() => renderSocketDropIn(parse(text)), (e: unknown) => {
    assert.ok(e instanceof UnitRenderError);
    for (const p of patterns) assert.ok(e.problems.some((m) => p.test(m)), `no problem matches ${p}: ${e.problems.join(' | ')}`);
    return true;
  });
}

test('every bind becomes a ListenStream=, after one empty assignment that drops port 22', () => {
  const { text } = renderSocketDropIn(
    parse(listener('bind "*:2222"') + listener('bind "192.0.2.1:22"') + listener('bind "[2001:db8::7]:22"') + listener('bind "0.0.0.0:2200"') + listener('bind "/run/lukko/ssh.sock"') + listener('bind "@lukko"')),
  );
  assert.match(text, /^\[Socket\]$/m);
  assert.deepEqual(values(text, 'ListenStream'), ['', '2222', '192.0.2.1:22', '[2001:db8::7]:22', '0.0.0.0:2200', '/run/lukko/ssh.sock', '@lukko']);
  // The empty assignment comes first, or the unit's own ListenStream=22 would stay.
  assert.deepEqual(assignments(text)[0], ['ListenStream', '']);
});

test('the file reads back as [Socket] with ini (the settings that occur once)', () => {
  const { text } = renderSocketDropIn(parse(listener('bind "*:22"', 'keepalive yes', 'reuse_port yes')));
  const parsed = ini.parse(text) as { Socket?: Record<string, unknown> };
  assert.equal(parsed.Socket?.KeepAlive, 'yes');
  assert.equal(parsed.Socket?.ReusePort, 'yes');
  assert.equal(parsed.Socket?.BindIPv6Only, 'both');
  assert.equal(parsed.Socket?.Backlog, undefined, 'systemd\'s default (4096) is longer than lukko\'s 256');
});

test('% in a socket path is escaped from systemd\'s specifiers', () => {
  const { text } = renderSocketDropIn(parse(listener('bind "/run/100%.sock"')));
  assert.deepEqual(values(text, 'ListenStream'), ['', '/run/100%%.sock']);
});

test('interface, mode, v6only, reuse_port, keepalive, max_connections_per_ip, backlog, mptcp', () => {
  const tcp = renderSocketDropIn(parse(listener('bind "*:22"', 'interface eth1', 'v6only yes', 'reuse_port yes', 'keepalive yes', 'max_connections_per_ip 8', 'mptcp yes'))).text;
  assert.equal(single(tcp, 'BindToDevice'), 'eth1');
  assert.equal(single(tcp, 'BindIPv6Only'), 'ipv6-only');
  assert.equal(single(tcp, 'ReusePort'), 'yes');
  assert.equal(single(tcp, 'KeepAlive'), 'yes');
  assert.equal(single(tcp, 'MaxConnectionsPerSource'), '8');
  assert.equal(single(tcp, 'Backlog'), undefined);
  assert.equal(single(tcp, 'SocketProtocol'), 'mptcp');
  assert.equal(single(tcp, 'SocketMode'), undefined);
  assert.equal(single(tcp, 'FreeBind'), undefined, 'a wildcard needs no FreeBind=');

  const unix = renderSocketDropIn(parse(listener('bind "/run/lukko.sock"', 'mode 0660'))).text;
  assert.equal(single(unix, 'SocketMode'), '0660');
  assert.equal(single(unix, 'BindIPv6Only'), undefined);
  // No mode: lukko leaves it to the umask; systemd's default 0666 would open it to everyone.
  const umask = renderSocketDropIn(parse(listener('bind "/run/lukko.sock"')));
  assert.equal(single(umask.text, 'SocketMode'), '0755');
  assert.ok(umask.notes.some((n) => /umask/.test(n)));
});

test('off by default: nothing rendered that lukko.socket already says better', () => {
  const { text, notes } = renderSocketDropIn(parse(listener('bind "*:22"')));
  assert.equal(single(text, 'BindIPv6Only'), 'both');
  for (const key of ['ReusePort', 'KeepAlive', 'MaxConnectionsPerSource', 'BindToDevice', 'SocketProtocol', 'FreeBind']) assert.equal(single(text, key), undefined, key);
  // The unit's own keepalive stays on, and the output says so.
  assert.ok(notes.some((n) => /keepalive is off .* KeepAlive=yes .* applies to every connection/.test(n)));
});

test('a specific address gets FreeBind=yes, said in a note', () => {
  const { text, notes } = renderSocketDropIn(parse(listener('bind "192.0.2.1:22"')));
  assert.equal(single(text, 'FreeBind'), 'yes');
  assert.equal(single(text, 'BindIPv6Only'), undefined, 'no IPv6 wildcard, nothing to decide');
  assert.ok(notes.some((n) => /FreeBind=yes/.test(n)));
});

test('the implicit listener ([::]:2200) is rendered, with a note that the port is not 22', () => {
  const { text, notes } = renderSocketDropIn(parse('populate_io_buffers no\n'));
  assert.deepEqual(values(text, 'ListenStream'), ['', '[::]:2200']);
  assert.equal(single(text, 'Backlog'), undefined);
  assert.equal(single(text, 'KeepAlive'), 'yes');
  assert.ok(notes.some((n) => /no listener block/.test(n) && /2200/.test(n)));
  assert.ok(notes.some((n) => /ack_timeout 60 .*TCP_USER_TIMEOUT/.test(n)));
});

test('what systemd cannot express is listed in the notes and as comments in the file', () => {
  const { text, notes } = renderSocketDropIn(
    parse(listener('bind "*:22"', 'ack_timeout 30', 'tag "front"', 'tarpit yes', 'verbose_errors yes', 'zeroconf_service "lukko"', 'pond_server "192.0.2.9"')),
  );
  const has = (re: RegExp): void => assert.ok(notes.some((n) => re.test(n)), `no note matches ${re}:\n${notes.join('\n')}`);
  has(/ack_timeout 30 \(TCP_USER_TIMEOUT\) has no \[Socket\] setting/);
  has(/lukko applies verbose_errors itself, per connection/);
  has(/: tag need no socket setting; they take effect only with a translation server/);
  has(/zeroconf_service "lukko" is not announced by the socket unit: lukko-companion.service announces it/);
  has(/^tarpit: held by lukko-companion\.service/);
  has(/ignored by lukko: .*pond_server/);
  // Every note is in the file too, as comment lines below the settings.
  const comments = text.split('\n').filter((l) => l.startsWith('#')).join(' ').replace(/#\s+/g, ' ');
  for (const n of notes) assert.ok(comments.includes(n.split(' ').slice(0, 6).join(' ')), `note not in the file: ${n}`);
  assert.ok(text.split('\n').every((l) => l.length <= 100), 'comment lines are wrapped');
});

test('max_connections_per_ip renders, with the difference to systemd\'s limit spelled out', () => {
  const { text, notes } = renderSocketDropIn(parse(listener('bind "*:22"', 'max_connections_per_ip 4') + listener('bind "*:2222"', 'max_connections_per_ip 4')));
  assert.equal(single(text, 'MaxConnectionsPerSource'), '4');
  assert.ok(notes.some((n) => /a backstop: lukko-companion\.service enforces/.test(n) && /over all addresses/.test(n)));
});

test('a backlog renders only when it makes the queue longer than systemd\'s default; the largest wins', () => {
  // lukko.conf has no backlog keyword: the listener's built-in value, set here via the schema
  const short = renderSocketDropIn(parse(listener('bind "*:22"')));
  assert.equal(single(short.text, 'Backlog'), undefined);
  assert.ok(short.notes.some((n) => /keeps systemd's default Backlog=/.test(n)));
  const config = parse(listener('bind "*:22"') + listener('bind "*:2222"'));
  config.listeners[0]!.backlog = 8192;
  config.listeners[1]!.backlog = 16384;
  const { text, notes } = renderSocketDropIn(config);
  assert.equal(single(text, 'Backlog'), '16384');
  assert.ok(notes.some((n) => /backlog/.test(n)));
});

test('listeners that disagree on a socket-wide setting cannot share lukko.socket', () => {
  rejects(listener('bind "*:22"', 'interface eth0') + listener('bind "*:2222"'), /^interface differs .*eth0.*\(none\)/);
  rejects(listener('bind "*:22"', 'v6only yes') + listener('bind "*:2222"'), /^v6only differs/);
  rejects(listener('bind "*:22"', 'reuse_port yes') + listener('bind "*:2222"'), /^reuse_port differs/);
  rejects(listener('bind "*:22"', 'max_connections_per_ip 3') + listener('bind "*:2222"'), /^max_connections_per_ip differs .*3.*unlimited/);
  rejects(listener('bind "*:22"', 'mptcp yes') + listener('bind "*:2222"'), /^mptcp differs/);
  rejects(listener('bind "/run/a.sock"', 'mode 0600') + listener('bind "/run/b.sock"', 'mode 0666'), /^mode differs .*0600.*0666/);
  rejects(listener('bind "*:22"') + listener('bind "*:22"'), /binds the same address as/);
  // The problems name each listener by file:line, and say what to do.
  rejects(listener('bind "*:22"', 'interface eth0') + listener('bind "*:2222"'), /\/etc\/cm4all\/lukko\/lukko\.conf:1\): eth0/, /harmonise/);
});

test('v6only matters only for the IPv6 wildcard: specific addresses may differ', () => {
  const { text } = renderSocketDropIn(parse(listener('bind "*:22"') + listener('bind "[2001:db8::7]:2222"', 'v6only yes') + listener('bind "192.0.2.1:2222"')));
  assert.equal(single(text, 'BindIPv6Only'), 'both');
});

test('mode is compared between AF_UNIX listeners only', () => {
  const { text } = renderSocketDropIn(parse(listener('bind "*:22"') + listener('bind "/run/lukko.sock"', 'mode 0600')));
  assert.equal(single(text, 'SocketMode'), '0600');
});

test('writeSocketDropIn puts the file at lukko.socket.d/50-lukko-conf.conf below the unit directory', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lukko-units-'));
  try {
    const path = writeSocketDropIn(dir, 'x\n');
    assert.equal(path, join(dir, DROP_IN_PATH));
    assert.equal(DROP_IN_PATH, 'lukko.socket.d/50-lukko-conf.conf');
    assert.equal(readFileSync(path, 'utf8'), 'x\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('lukko units: stdout by default, --output writes the drop-in, disagreement exits 78', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lukko-units-cli-'));
  const main = new URL('../../src/cli/main.ts', import.meta.url).pathname;
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  delete env.NODE_TEST_CONTEXT;
  const lukko = (...args: string[]) => spawnSync(process.execPath, [main, ...args], { encoding: 'utf8', env });
  try {
    const conf = join(dir, 'lukko.conf');
    writeFileSync(conf, listener('bind "127.0.0.1:2022"', 'ack_timeout 5'));
    const out = lukko('units', '--config', conf);
    assert.equal(out.status, 0, out.stderr);
    assert.deepEqual(values(out.stdout, 'ListenStream'), ['', '127.0.0.1:2022']);
    assert.match(out.stderr, /^lukko units: note: .*ack_timeout 5/m);

    const written = lukko('units', '--config', conf, '--output', join(dir, 'units'));
    assert.equal(written.status, 0, written.stderr);
    assert.equal(written.stdout, '');
    assert.equal(readFileSync(join(dir, 'units', DROP_IN_PATH), 'utf8'), out.stdout);
    assert.match(written.stderr, /wrote .*50-lukko-conf\.conf; now run: systemctl daemon-reload && systemctl restart lukko\.socket/);

    writeFileSync(conf, listener('bind "*:22"', 'interface eth0') + listener('bind "*:2222"'));
    const bad = lukko('units', '--config', conf);
    assert.equal(bad.status, 78);
    assert.equal(bad.stdout, '');
    assert.match(bad.stderr, /lukko units: interface differs/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
