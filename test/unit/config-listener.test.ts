// `listener { ... }`: every attribute, defaults, the implicit listener, mode and Zeroconf rules.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, formatAddress, parseConfigText, type Config, type ListenerConfig } from '../../src/config/index.ts';

const P = '/etc/lukko/lukko.conf';
const parse = (text: string): Config => parseConfigText(text, { path: P });

/** A listener bound to `*` plus the given body lines, which start on line 3. */
function listener(body: string, prelude = ''): ListenerConfig {
  const c = parse(`${prelude}listener {\n bind "*"\n${body}\n}\n`);
  assert.equal(c.listeners.length, 1);
  return c.listeners[0]!;
}

function fails(text: string, reason: string, line: number, token: string): void {
  assert.throws(() => parse(text), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.equal(e.message, `${P}:${line}: ${reason} (near '${token}')`);
    assert.equal(e.line, line);
    assert.equal(e.token, token);
    return true;
  });
}

/** The body lines start on line 3 of the generated file. */
const bodyFails = (body: string, reason: string, token: string, line = 3): void =>
  fails(`listener {\n bind "*"\n${body}\n}\n`, reason, line, token);

test('implicit default listener when none is configured', () => {
  const c = parse('populate_io_buffers yes\n');
  assert.equal(c.listeners.length, 1);
  const l = c.listeners[0]!;
  assert.equal(l.implicit, true);
  assert.deepEqual(l.bind, { kind: 'inet', host: '::', port: 2200, wildcard: true });
  assert.equal(formatAddress(l.bind), '[::]:2200');
  assert.equal(l.keepalive, true);
  assert.equal(l.ackTimeout, 60);
  assert.equal(l.backlog, 1024);
  assert.equal(l.v6only, false);
  assert.equal(l.tarpit, false);
  assert.equal(l.maxConnectionsPerIp, 0);
  assert.equal(l.zeroconfService, undefined);
  assert.equal(l.file, P);
});

test('no implicit listener once one is configured', () => {
  const c = parse('listener {\n bind "127.0.0.1:22"\n}\nlistener {\n bind "/run/l"\n}\n');
  assert.deepEqual(c.listeners.map((l) => [l.implicit, formatAddress(l.bind), l.line]), [
    [false, '127.0.0.1:22', 1],
    [false, '/run/l', 4],
  ]);
});

test('explicit listener defaults: backlog 256, everything else off', () => {
  const l = listener('');
  assert.deepEqual(l, {
    file: P,
    line: 1,
    implicit: false,
    bind: { kind: 'inet', host: '', port: 2200, wildcard: true },
    mptcp: false,
    keepalive: false,
    v6only: false,
    reusePort: false,
    backlog: 256,
    tag: '',
    hostKeyFiles: [],
    authorizedHostKeyFiles: [],
    proxySkipOurOwn: false,
    maxConnectionsPerIp: 0,
    tarpit: false,
    verboseErrors: false,
    execRejectStderr: false,
    acceptClientAddress: false,
  });
});

test('bind: required, default port 2200, the last one wins', () => {
  fails('listener {\n tag x\n}', 'Listener has no bind address', 3, '}');
  assert.equal(formatAddress(listener(' bind "[::1]:2022"').bind), '[::1]:2022');
  bodyFails(' bind "localhost"', 'Failed to resolve "localhost":"2200": Name or service not known', 'localhost');
  bodyFails(' bind /run/x', 'Value expected', '/run/x');
  bodyFails(' bind', 'Value expected', 'bind');
});

test('interface', () => {
  assert.equal(listener(' interface eth0').interface, 'eth0');
  assert.equal(listener(' interface "br-lan.5"').interface, 'br-lan.5');
  bodyFails(' interface eth/0', 'Value expected', 'eth/0');
  bodyFails(' interface a b', 'Unexpected tokens at end of line: b', 'b');
});

test('mode: octal, at most 0777, only after an AF_UNIX bind', () => {
  const unix = (body: string): ListenerConfig => parse(`listener {\n bind "/run/lukko.sock"\n${body}\n}`).listeners[0]!;
  assert.equal(unix(' mode 0660').mode, 0o660);
  assert.equal(unix(' mode 777').mode, 0o777);
  assert.equal(unix(' mode 0').mode, undefined);
  assert.equal(parse('listener {\n bind "@abs"\n mode 600\n}').listeners[0]?.mode, 0o600);
  bodyFails(' mode 0660', "'mode' works only with local sockets", 'mode');
  fails('listener {\n mode 0660\n bind "/run/x"\n}', "'mode' works only with local sockets", 2, 'mode');
  fails('listener {\n bind "/run/x"\n mode 0789\n}', 'Not a valid octal value', 3, '0789');
  fails('listener {\n bind "/run/x"\n mode 0x1ff\n}', 'Not a valid octal value', 3, '0x1ff');
  fails('listener {\n bind "/run/x"\n mode 1777\n}', 'Not a valid mode', 3, '1777');
  fails('listener {\n bind "/run/x"\n mode 0660\n bind "*"\n}', "'mode' works only with local sockets", 5, '}');
});

const FLAGS: ReadonlyArray<[string, keyof ListenerConfig]> = [
  ['mptcp', 'mptcp'],
  ['keepalive', 'keepalive'],
  ['v6only', 'v6only'],
  ['reuse_port', 'reusePort'],
  ['proxy_skip_our_own', 'proxySkipOurOwn'],
  ['tarpit', 'tarpit'],
  ['verbose_errors', 'verboseErrors'],
  ['exec_reject_stderr', 'execRejectStderr'],
  ['accept_client_address', 'acceptClientAddress'],
];

test('boolean attributes', () => {
  for (const [keyword, field] of FLAGS) {
    assert.equal(listener(` ${keyword} yes`)[field], true, keyword);
    assert.equal(listener(` ${keyword} yes\n ${keyword} no`)[field], false, keyword);
    bodyFails(` ${keyword} on`, 'yes/no expected', 'on');
    bodyFails(` ${keyword}`, 'yes/no expected', keyword);
  }
});

test('ack_timeout: positive seconds that fit TCP_USER_TIMEOUT in milliseconds', () => {
  assert.equal(listener(' ack_timeout 30').ackTimeout, 30);
  assert.equal(listener(' ack_timeout 4294967').ackTimeout, 4294967);
  assert.equal(listener('').ackTimeout, undefined);
  bodyFails(' ack_timeout 0', 'Positive integer expected', '0');
  bodyFails(' ack_timeout -1', 'Positive integer expected', '-1');
  bodyFails(' ack_timeout " 5"', 'Positive integer expected', '" 5"');
  bodyFails(' ack_timeout 4294968', 'Value is too large', '4294968');
});

test('max_connections_per_ip: positive integer, 0 (the default) means unlimited', () => {
  assert.equal(listener(' max_connections_per_ip 8').maxConnectionsPerIp, 8);
  assert.equal(listener(' max_connections_per_ip "007"').maxConnectionsPerIp, 7);
  assert.equal(listener(' max_connections_per_ip 4294967295').maxConnectionsPerIp, 4294967295);
  bodyFails(' max_connections_per_ip 0', 'Positive integer expected', '0');
  bodyFails(' max_connections_per_ip -1', 'Positive integer expected', '-1');
  bodyFails(' max_connections_per_ip " 5"', 'Positive integer expected', '" 5"');
  bodyFails(' max_connections_per_ip 5x', 'Positive integer expected', '5x');
  bodyFails(' max_connections_per_ip 1.5', 'Positive integer expected', '1.5');
  bodyFails(' max_connections_per_ip 4294967296', 'Positive integer expected', '4294967296');
  bodyFails(' max_connections_per_ip', 'Positive integer expected', 'max_connections_per_ip');
});

test('tag: at most 256 bytes', () => {
  assert.equal(listener(' tag prod-1').tag, 'prod-1');
  assert.equal(listener(` tag ${'a'.repeat(256)}`).tag, 'a'.repeat(256));
  bodyFails(` tag ${'a'.repeat(257)}`, 'Value is too long', 'a'.repeat(257));
  bodyFails(` tag "${'ä'.repeat(129)}"`, 'Value is too long', `"${'ä'.repeat(129)}"`);
  bodyFails(' tag ""', 'Empty value not allowed', '""');
});

test('host_key_file and authorized_host_key_file: quoted, repeatable, resolved', () => {
  const l = listener(' host_key_file "k1"\n host_key_file \'/abs/k2\'\n authorized_host_key_file "../hosts"\n authorized_host_key_file "a\\nb"');
  assert.deepEqual(l.hostKeyFiles, ['/etc/lukko/k1', '/abs/k2']);
  assert.deepEqual(l.authorizedHostKeyFiles, ['/etc/hosts', '/etc/lukko/a\nb']);
  bodyFails(' host_key_file k1', 'Quoted path expected', 'k1');
  bodyFails(' host_key_file "k1', 'Quoted path expected', '"k1');
  bodyFails(' authorized_host_key_file /x', 'Quoted path expected', '/x');
  bodyFails(' authorized_host_key_file "\\t"', 'Quoted path expected', '"\\t"');
  bodyFails(' host_key_file "k" x', 'Unexpected tokens at end of line: x', 'x');
});

const TARGET = 'target_host t1 {\n address "192.0.2.10"\n host_key_file "t1.pub"\n}\n';
const CLUSTER = 'zeroconf_cluster c1 {\n zeroconf_service lukko\n host_key_file "c.pub"\n}\n';

test('proxy_to names an earlier target_host', () => {
  assert.equal(listener(' proxy_to t1', TARGET).proxyTo, 't1');
  bodyFails(' proxy_to t1', 'No such target_host', 't1');
  fails(`listener {\n bind "*"\n proxy_to t1\n}\n${TARGET}`, 'No such target_host', 3, 't1');
  fails(`${TARGET}listener {\n bind "*"\n proxy_to t1\n proxy_to t1\n}`, "Duplicate 'proxy_to'", 8, 't1');
  fails(`${TARGET}${CLUSTER}listener {\n bind "*"\n proxy_to_zeroconf c1\n proxy_to t1\n}`, "Duplicate 'proxy_to'", 12, 't1');
});

test('proxy_to_zeroconf names an earlier zeroconf_cluster', () => {
  assert.equal(listener(' proxy_to_zeroconf c1', CLUSTER).proxyToZeroconf, 'c1');
  bodyFails(' proxy_to_zeroconf c1', 'No such zeroconf_cluster', 'c1');
  fails(`${TARGET}${CLUSTER}listener {\n bind "*"\n proxy_to t1\n proxy_to_zeroconf c1\n}`, "Duplicate 'proxy_to_zeroconf'", 12, 'c1');
});

test('pond_server: numeric address, default port 5479', () => {
  assert.deepEqual(listener(' pond_server "192.0.2.9"').pondServer, { kind: 'inet', host: '192.0.2.9', port: 5479, wildcard: false });
  assert.equal(formatAddress(listener(' pond_server "[::1]:99"').pondServer!), '[::1]:99');
  bodyFails(' pond_server "pond.example"', 'Failed to resolve "pond.example":"5479": Name or service not known', 'pond.example');
});

test('zeroconf_service, zeroconf_domain: once each', () => {
  const l = listener(' zeroconf_service lukko\n zeroconf_domain local');
  assert.equal(l.zeroconfService, 'lukko');
  assert.equal(l.zeroconfDomain, 'local');
  assert.equal(listener(' zeroconf_domain local').zeroconfDomain, 'local');
  bodyFails(' zeroconf_service a\n zeroconf_service b', 'Duplicate Zeroconf service', 'b', 4);
  bodyFails(' zeroconf_domain a\n zeroconf_domain b', 'Duplicate Zeroconf domain', 'b', 4);
});

test('zeroconf_interface and zeroconf_protocol need the service first', () => {
  const l = listener(' zeroconf_service lukko\n zeroconf_interface eth1\n zeroconf_protocol inet6');
  assert.equal(l.zeroconfInterface, 'eth1');
  assert.equal(l.zeroconfProtocol, 'inet6');
  assert.equal(listener(' zeroconf_service s\n zeroconf_protocol inet').zeroconfProtocol, 'inet');
  bodyFails(' zeroconf_interface eth1\n zeroconf_service lukko', 'Zeroconf interface without service', 'zeroconf_interface');
  bodyFails(' zeroconf_protocol inet', 'Zeroconf protocol without service', 'zeroconf_protocol');
  bodyFails(' zeroconf_service s\n zeroconf_interface a\n zeroconf_interface b', 'Duplicate Zeroconf interface', 'b', 5);
  bodyFails(' zeroconf_service s\n zeroconf_protocol inet\n zeroconf_protocol inet', 'Duplicate Zeroconf protocol', 'inet', 5);
  bodyFails(' zeroconf_service s\n zeroconf_protocol ipv6', 'Unrecognized Zeroconf protocol', 'ipv6', 4);
});

test('zeroconf_weight: after the service, 0 < w <= 1e6, once', () => {
  assert.equal(listener(' zeroconf_service s\n zeroconf_weight 0.5').zeroconfWeight, 0.5);
  assert.equal(listener(' zeroconf_service s\n zeroconf_weight 1e6').zeroconfWeight, 1e6);
  assert.equal(listener(' zeroconf_service s\n zeroconf_weight 2').zeroconfWeight, 2);
  bodyFails(' zeroconf_weight 2', 'zeroconf_weight without zeroconf_service', 'zeroconf_weight');
  bodyFails(' zeroconf_service s\n zeroconf_weight 0', 'Bad zeroconf_weight value', '0', 4);
  bodyFails(' zeroconf_service s\n zeroconf_weight -1', 'Bad zeroconf_weight value', '-1', 4);
  bodyFails(' zeroconf_service s\n zeroconf_weight 1000001', 'Bad zeroconf_weight value', '1000001', 4);
  bodyFails(' zeroconf_service s\n zeroconf_weight heavy', 'Failed to parse number', 'heavy', 4);
  bodyFails(' zeroconf_service s\n zeroconf_weight 1.5.2', 'Failed to parse number', '1.5.2', 4);
  bodyFails(' zeroconf_service s\n zeroconf_weight 1\n zeroconf_weight 2', 'Duplicate zeroconf_weight', '2', 5);
});

test('unknown listener attributes', () => {
  bodyFails(' backlog 10', 'Unknown option', 'backlog');
  bodyFails(' send_client_address yes', 'Unknown option', 'send_client_address');
  bodyFails(' Bind "*"', 'Unknown option', 'Bind');
});
