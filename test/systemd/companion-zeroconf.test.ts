// Zeroconf under a real systemd with a real Avahi: the harness rootfs gets avahi-daemon,
// avahi-utils (avahi-browse, and avahi-publish-service, which the companion runs) and socat
// (to send AF_UNIX datagrams from inside the container). lukko-companion.service, sandboxed as
// shipped, announces the listener with zeroconf_service; DISABLE_ZEROCONF and ENABLE_ZEROCONF
// sent as real datagrams to its control socket withdraw and republish it, a listener's state
// file hides it on RELOAD_STATE, a multicast control group joined on lo obeys allow_from, and
// a control socket can come from a systemd .socket unit (FileDescriptorName=control).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CONFIG_PATH, Harness, ROOT, UNIT_DIR, waitFor } from '../helpers/harness.ts';

const h = new Harness({ name: 'lukko-companion-zeroconf' });
// Baked into this test's rootfs (cached separately, keyed by the package list).
h.env.HARNESS_EXTRA_PKGS = 'avahi-daemon,avahi-utils,socat';
const UNIT = 'lukko-companion.service';
const CONTROL = '/run/lukko/control.socket';

const CONFIG = `listener {
  bind "*:22"
  zeroconf_service lukko
  zeroconf_weight 0.5
  tag web
}
listener {
  bind "*:2222"
}
control {
  bind "${CONTROL}"
}
`;

/** One datagram from root inside the container (printf's octal escapes survive any byte). */
async function send(path: string, hex: string): Promise<void> {
  const octal = (Buffer.from(hex, 'hex').toJSON().data as number[]).map((b) => `\\${b.toString(8).padStart(3, '0')}`).join('');
  await h.exec(['sh', '-c', `printf '${octal}' | socat -u - UNIX-SENDTO:${path}`]);
}

interface Resolved {
  iface: string;
  protocol: string;
  name: string;
  type: string;
  port: number;
  txt: string[];
}

/** `avahi-browse -rtp _lukko._tcp`: the resolved ("=") entries. */
async function browse(): Promise<Resolved[]> {
  const out = (await h.exec(['avahi-browse', '-rtp', '_lukko._tcp'], { timeoutMs: 20_000 })).stdout;
  return out
    .split('\n')
    .filter((l) => l.startsWith('=;'))
    .map((l) => {
      const f = l.split(';');
      return {
        iface: f[1]!,
        protocol: f[2]!,
        name: f[3]!.replace(/\\(\d{3})/g, (_, d: string) => String.fromCharCode(Number(d))),
        type: f[4]!,
        port: Number(f[8]),
        txt: [...(f[9] ?? '').matchAll(/"([^"]*)"/g)].map((m) => m[1]!),
      };
    });
}

const published = (): Promise<Resolved[]> => waitFor('the service in avahi-browse', async () => {
  const r = await browse();
  return r.length ? r : undefined;
}, 20_000, 300);
const withdrawn = (): Promise<true> => waitFor('the service to leave avahi-browse', async () => ((await browse()).length === 0 ? true : undefined), 20_000, 300);

async function mainPid(): Promise<string> {
  return (await h.show(UNIT, ['MainPID'])).MainPID!;
}

before(async () => {
  await h.boot();
  await h.writeFile(`${UNIT_DIR}/${UNIT}`, readFileSync(join(ROOT, 'units', UNIT), 'utf8'));
  await h.writeFile(CONFIG_PATH, CONFIG);
  await h.systemctl(['daemon-reload']);
  await h.systemctl(['start', 'avahi-daemon.service']);
});
after(() => h.stop());

test('the sandboxed companion publishes through Avahi; control datagrams withdraw and republish', async () => {
  await h.systemctl(['start', UNIT]);
  const pid = await mainPid();
  const [s] = await published();
  assert.equal(s!.name, `Lukko[${pid}]`);
  assert.equal(s!.type, '_lukko._tcp');
  assert.equal(s!.port, 22);
  const arch = (await h.exec(['dpkg', '--print-architecture'])).stdout.trim();
  assert.deepEqual(s!.txt.sort(), [`arch=${arch}`, 'weight=0.5']);
  // The listener without zeroconf_service is not announced.
  assert.equal((await browse()).filter((r) => r.port === 2222).length, 0);

  await send(CONTROL, '6304610100000009'); // V3 DISABLE_ZEROCONF
  await withdrawn();
  await send(CONTROL, '630461010000000a'); // V4 ENABLE_ZEROCONF
  const [again] = await published();
  assert.equal(again!.name, `Lukko[${pid}]`);

  // The listener's state file (spec §6.2) hides it, read again on RELOAD_STATE (19).
  await h.writeFile('/run/cm4all/state/lukko/listener/web/zeroconf', '0\n');
  await send(CONTROL, '6304610100000013');
  await withdrawn();
  await h.writeFile('/run/cm4all/state/lukko/listener/web/zeroconf', '1\n');
  await send(CONTROL, '6304610100000013');
  await published();

  const log = await h.journal(['-u', UNIT, '-o', 'cat']);
  assert.match(log, /"from":"uid 0 pid \d+","msg":"control DISABLE_ZEROCONF"/);
  assert.match(log, /Zeroconf service published/);

  // Stopping the companion withdraws the service (its avahi-publish-service children end).
  await h.systemctl(['stop', UNIT]);
  await withdrawn();
  const failed = await h.failed();
  assert.deepEqual(failed.filter((u) => u.unit.startsWith('lukko')), []);
});

test('multicast control: a group joined on lo, trusted only with allow_from', async () => {
  // Two blocks on the same group: 5478 trusts loopback senders, 5479 trusts no UDP sender.
  await h.writeFile(
    CONFIG_PATH,
    CONFIG.replace(/control \{[^}]*\}\n/, '') +
      'control {\n  bind "*:5478"\n  multicast_group "239.1.2.3"\n  interface lo\n  allow_from "127.0.0.0/8"\n}\n' +
      'control {\n  bind "*:5479"\n  multicast_group "239.1.2.3"\n  interface lo\n}\n' +
      'prometheus_exporter {\n  bind "127.0.0.1:9100"\n}\n',
  );
  await h.systemctl(['start', UNIT]);
  await published();
  const multicast = async (port: number, hex: string): Promise<void> => {
    const octal = (Buffer.from(hex, 'hex').toJSON().data as number[]).map((b) => `\\${b.toString(8).padStart(3, '0')}`).join('');
    await h.exec(['sh', '-c', `printf '${octal}' | socat -u - UDP4-DATAGRAM:239.1.2.3:${port},ip-multicast-if=127.0.0.1`]);
  };
  const untrusted = async (): Promise<number> => {
    const body = (await h.exec(['/usr/lib/lukko/node/bin/node', '-e', "fetch('http://127.0.0.1:9100/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))"])).stdout;
    const line = body.split('\n').find((l) => l.startsWith('lukko_companion_control_rejected{reason="untrusted"} '));
    return Number(line?.split(' ')[1]);
  };
  await multicast(5479, '6304610100000009');
  await waitFor('the refusal to be counted', async () => ((await untrusted()) === 1 ? true : undefined));
  assert.equal((await browse()).length, 1, 'still published after the untrusted DISABLE_ZEROCONF');
  await multicast(5478, '6304610100000009');
  await withdrawn();
  await multicast(5478, '630461010000000a');
  await published();
  const log = await h.journal(['-u', UNIT, '-o', 'cat']);
  assert.match(log, /"from":"127\.0\.0\.1:\d+","commands":\["disable-zeroconf"\],"why":"UDP senders need allow_from in the control block"/);
  await h.systemctl(['stop', UNIT]);
});

test('a control socket from a systemd .socket unit (FileDescriptorName=control)', async () => {
  await h.writeFile(
    `${UNIT_DIR}/lukko-companion-control.socket`,
    '[Socket]\nListenDatagram=/run/lukko-control.socket\nFileDescriptorName=control\nPassCredentials=yes\nSocketMode=0600\nService=lukko-companion.service\n\n[Install]\nWantedBy=sockets.target\n',
  );
  await h.writeFile(CONFIG_PATH, CONFIG.replace(/control \{[^}]*\}\n/, ''));
  await h.systemctl(['daemon-reload']);
  await h.systemctl(['start', 'lukko-companion-control.socket']);
  await h.systemctl(['start', UNIT]);
  await published();
  await send('/run/lukko-control.socket', '6304610100000009');
  await withdrawn();
  await send('/run/lukko-control.socket', '630461010000000a');
  await published();
  const log = await h.journal(['-u', UNIT, '-o', 'cat']);
  assert.match(log, /"control":\["fd \d+"\]/);
  await h.systemctl(['stop', UNIT, 'lukko-companion-control.socket']);
});
