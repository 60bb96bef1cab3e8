// control, prometheus_exporter, target_host and zeroconf_cluster blocks.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, formatAddress, parseConfigText, type Config } from '../../src/config/index.ts';

const P = '/etc/lukko/lukko.conf';
const parse = (text: string): Config => parseConfigText(text, { path: P });

function fails(text: string, reason: string, line: number, token: string): void {
  assert.throws(() => parse(text), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.equal(e.message, `${P}:${line}: ${reason} (near '${token}')`);
    assert.equal(e.token, token);
    return true;
  });
}

test('control: bind with default port 5478, interface, repeatable', () => {
  const c = parse('control {\n bind "*"\n interface lo\n}\ncontrol {\n bind "/run/lukko/control"\n}\n');
  assert.equal(c.controls.length, 2);
  assert.deepEqual(c.controls[0], { file: P, line: 1, bind: { kind: 'inet', host: '', port: 5478, wildcard: true }, interface: 'lo' });
  assert.equal(formatAddress(c.controls[1]!.bind), '/run/lukko/control');
  fails('control {\n interface lo\n}', 'Bind address is missing', 3, '}');
  fails('control {\n bind "ctl.example"\n}', 'Failed to resolve "ctl.example":"5478": Name or service not known', 2, 'ctl.example');
  fails('control {\n bind "*"\n interface\n}', 'Value expected', 3, 'interface');
});

test('control: no mode and nothing else', () => {
  fails('control {\n bind "/run/c"\n mode 0600\n}', 'Unknown option', 3, 'mode');
  fails('control {\n bind "*"\n v6only yes\n}', 'Unknown option', 3, 'v6only');
});

test('control: multicast_group, and an IPv4 group moves an IPv6 wildcard bind to 0.0.0.0', () => {
  const v4 = parse('control {\n multicast_group "224.0.0.42"\n bind "*:1234"\n}').controls[0]!;
  assert.deepEqual(v4.bind, { kind: 'inet', host: '0.0.0.0', port: 1234, wildcard: true });
  assert.equal(v4.multicastGroup?.kind === 'inet' && v4.multicastGroup.host, '224.0.0.42');
  const v4b = parse('control {\n bind "[::]"\n multicast_group "239.1.2.3:9"\n}').controls[0]!;
  assert.equal(formatAddress(v4b.bind), '0.0.0.0:5478');
  const v6 = parse('control {\n bind "*"\n multicast_group "ff02::1%eth0"\n}').controls[0]!;
  assert.equal(formatAddress(v6.bind), '[::]:5478');
  assert.deepEqual(v6.multicastGroup, { kind: 'inet', host: 'ff02::1', port: 5478, scope: 'eth0', wildcard: false });
  const fixed = parse('control {\n bind "192.0.2.1"\n multicast_group "224.0.0.1"\n}').controls[0]!;
  assert.equal(formatAddress(fixed.bind), '192.0.2.1:5478');
  fails('control {\n bind "*"\n multicast_group "192.0.2.1"\n}', 'Not a multicast address', 3, '"192.0.2.1"');
  fails('control {\n bind "*"\n multicast_group "/run/x"\n}', 'Not a multicast address', 3, '"/run/x"');
  fails('control {\n bind "*"\n multicast_group "*"\n}', 'Failed to resolve "*":"5478": Name or service not known', 3, '*');
});

test('control: allow_from (lukko extension) lists networks or addresses, UDP only', () => {
  const c = parse('control {\n bind "*"\n allow_from "192.0.2.0/24"\n allow_from 2001:db8::7\n}').controls[0]!;
  assert.deepEqual(c.allowFrom, ['192.0.2.0/24', '2001:db8::7']);
  assert.equal(parse('control {\n bind "*"\n}').controls[0]!.allowFrom, undefined);
  fails('control {\n bind "*"\n allow_from "192.0.2.1/24"\n}', 'Not a valid address or network', 3, '"192.0.2.1/24"');
  fails('control {\n bind "*"\n allow_from "ctl.example"\n}', 'Not a valid address or network', 3, '"ctl.example"');
  fails('control {\n bind "*"\n allow_from "fe80::1%eth0"\n}', 'Not a valid address or network', 3, '"fe80::1%eth0"');
  fails('control {\n bind "*"\n allow_from\n}', 'Value expected', 3, 'allow_from');
  fails('control {\n bind "@ctl"\n allow_from "127.0.0.1"\n}', "'allow_from' works only with UDP sockets", 4, '}');
});

test('prometheus_exporter: bind (default 9100), interface, mode, v6only, reuse_port', () => {
  const e = parse('prometheus_exporter {\n bind "*"\n interface eth0\n v6only yes\n reuse_port yes\n}').prometheusExporters[0]!;
  assert.deepEqual(e, {
    file: P,
    line: 1,
    bind: { kind: 'inet', host: '', port: 9100, wildcard: true },
    interface: 'eth0',
    v6only: true,
    reusePort: true,
    backlog: 16,
  });
  const d = parse('prometheus_exporter {\n bind "127.0.0.1"\n}').prometheusExporters[0]!;
  assert.equal(d.v6only, false);
  assert.equal(d.reusePort, false);
  assert.equal(parse('prometheus_exporter {\n bind "/run/m"\n mode 0640\n}').prometheusExporters[0]?.mode, 0o640);
  fails('prometheus_exporter {\n v6only no\n}', 'PrometheusExporter has no bind address', 3, '}');
  fails('prometheus_exporter {\n bind "*"\n mode 0640\n}', "'mode' works only with local sockets", 3, 'mode');
  fails('prometheus_exporter {\n bind "/run/m"\n mode 8\n}', 'Not a valid octal value', 3, '8');
  fails('prometheus_exporter {\n bind "*"\n v6only maybe\n}', 'yes/no expected', 3, 'maybe');
  fails('prometheus_exporter {\n bind "*"\n reuse_port\n}', 'yes/no expected', 3, 'reuse_port');
  fails('prometheus_exporter {\n bind "*"\n keepalive yes\n}', 'Unknown option', 3, 'keepalive');
  fails('prometheus_exporter {\n bind "*"\n interface "a b" c\n}', 'Unexpected tokens at end of line: c', 3, 'c');
});

test('target_host: address (default port 22), host keys, send_client_address', () => {
  const c = parse('target_host backend {\n address "192.0.2.5"\n host_key_file "backend.pub"\n host_key_file "/k2"\n send_client_address yes\n}');
  assert.deepEqual(c.targetHosts.get('backend'), {
    name: 'backend',
    file: P,
    line: 1,
    address: { kind: 'inet', host: '192.0.2.5', port: 22, wildcard: false },
    hostKeyFiles: ['/etc/lukko/backend.pub', '/k2'],
    sendClientAddress: true,
  });
  const byName = parse('target_host "[2001:db8::7]:2222" {\n host_key_file "k"\n}').targetHosts.get('[2001:db8::7]:2222');
  assert.equal(byName && formatAddress(byName.address), '[2001:db8::7]:2222');
  assert.equal(parse('target_host "192.0.2.1" {\n host_key_file "k"\n}').targetHosts.get('192.0.2.1')?.sendClientAddress, false);
});

test('target_host errors', () => {
  fails('target_host backend {\n host_key_file "k"\n}', 'Failed to resolve "backend":"22": Name or service not known', 3, 'backend');
  fails('target_host t {\n address "192.0.2.1"\n}', 'No host key configured', 3, '}');
  fails('target_host t {\n address "*"\n}', 'Failed to resolve "*":"22": Name or service not known', 2, '*');
  fails('target_host t {\n address "192.0.2.1"\n send_client_address 1\n}', 'yes/no expected', 3, '1');
  fails('target_host t {\n address "192.0.2.1"\n host_key_file k\n}', 'Quoted path expected', 3, 'k');
  fails('target_host t {\n address "192.0.2.1"\n port 22\n}', 'Unknown option', 3, 'port');
  const one = 'target_host t {\n address "192.0.2.1"\n host_key_file "k"\n}\n';
  fails(`${one}target_host t {\n`, 'Duplicate target_host name', 5, 't');
  fails('target_host {\n', 'Value expected', 1, '{');
  fails('target_host t\n', "'{' expected", 1, 't');
});

test('zeroconf_cluster: service, domain, interface, protocol, host keys, send_client_address', () => {
  const c = parse(
    'zeroconf_cluster backends {\n zeroconf_service lukko\n zeroconf_domain local\n zeroconf_interface eth0\n zeroconf_protocol inet\n host_key_file "keys/a.pub"\n send_client_address yes\n}',
  );
  assert.deepEqual(c.zeroconfClusters.get('backends'), {
    name: 'backends',
    file: P,
    line: 1,
    zeroconfService: 'lukko',
    zeroconfDomain: 'local',
    zeroconfInterface: 'eth0',
    zeroconfProtocol: 'inet',
    hostKeyFiles: ['/etc/lukko/keys/a.pub'],
    sendClientAddress: true,
  });
  const minimal = parse('zeroconf_cluster "x y" {\n zeroconf_service s\n host_key_file "k"\n}').zeroconfClusters.get('x y');
  assert.equal(minimal?.sendClientAddress, false);
  assert.equal(minimal?.zeroconfProtocol, undefined);
});

test('zeroconf_cluster errors', () => {
  fails('zeroconf_cluster c {\n host_key_file "k"\n}', 'Zeroconf service missing', 3, '}');
  fails('zeroconf_cluster c {\n zeroconf_service s\n}', 'No host key configured', 3, '}');
  const one = 'zeroconf_cluster c {\n zeroconf_service s\n host_key_file "k"\n}\n';
  fails(`${one}${one}`, 'Duplicate zeroconf_cluster name', 8, 'c');
  fails('zeroconf_cluster c {\n zeroconf_service s\n zeroconf_weight 1\n}', 'Unknown option', 3, 'zeroconf_weight');
  fails('zeroconf_cluster c {\n zeroconf_interface eth0\n}', 'Zeroconf interface without service', 2, 'zeroconf_interface');
  fails('zeroconf_cluster c {\n zeroconf_protocol inet\n}', 'Zeroconf protocol without service', 2, 'zeroconf_protocol');
  fails('zeroconf_cluster c {\n zeroconf_service s\n zeroconf_protocol tcp\n}', 'Unrecognized Zeroconf protocol', 3, 'tcp');
  fails('zeroconf_cluster c {\n zeroconf_service s\n zeroconf_service t\n}', 'Duplicate Zeroconf service', 3, 't');
  fails('zeroconf_cluster c {\n zeroconf_service s\n send_client_address yess\n}', 'yes/no expected', 3, 'yess');
  fails('zeroconf_cluster c {\n zeroconf_service s\n bind "*"\n}', 'Unknown option', 3, 'bind');
});
