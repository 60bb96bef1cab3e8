// Publishes the listeners' Zeroconf services through the local Avahi daemon, one
// avahi-publish-service child per service (avahi-utils): while the child runs the service is
// announced, killing it withdraws the service. The child waits for avahi-daemon if it is not
// running yet and re-registers after a daemon restart (-f), and picks Avahi's alternative name
// on a collision. Two switches decide what is published (spec §6.2): the global one
// (DISABLE_/ENABLE_ZEROCONF) and each tagged listener's state file.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import type { Logger } from '../log/logger.ts';
import { listenerVisible, zeroconfInstanceName } from './zeroconf-service.ts';
import type { ZeroconfService } from './zeroconf-service.ts';

const RESPAWN_MIN_MS = 1000;
const RESPAWN_MAX_MS = 60_000;

export interface ZeroconfPublisherOptions {
  services: readonly ZeroconfService[];
  log: Logger;
  /** avahi-publish-service, or a stand-in for tests. */
  command?: string;
  stateDirs?: readonly string[];
  name?: string;
}

interface Entry {
  service: ZeroconfService;
  visible: boolean;
  child?: ChildProcess;
  respawnMs: number;
  respawnTimer?: NodeJS.Timeout;
  failing: boolean;
}

export class ZeroconfPublisher {
  private readonly o: ZeroconfPublisherOptions;
  private readonly entries: Entry[];
  private readonly name: string;
  private enabled = true;
  private closed = false;

  constructor(o: ZeroconfPublisherOptions) {
    this.o = o;
    this.name = o.name ?? zeroconfInstanceName();
    this.entries = o.services.map((service) => ({ service, visible: true, respawnMs: RESPAWN_MIN_MS, failing: false }));
    this.readState();
    this.reconcile();
  }

  get size(): number {
    return this.entries.length;
  }

  get isEnabled(): boolean {
    return this.enabled;
  }

  /** DISABLE_ZEROCONF / ENABLE_ZEROCONF. */
  setEnabled(enabled: boolean): void {
    if (this.enabled === enabled) return;
    this.enabled = enabled;
    this.o.log.info({ services: this.entries.length }, enabled ? 'Zeroconf enabled' : 'Zeroconf disabled');
    this.reconcile();
  }

  /** RELOAD_STATE and SIGHUP: re-read the per-listener state files. */
  reloadState(): void {
    this.readState();
    this.reconcile();
  }

  private readState(): void {
    for (const e of this.entries) {
      const visible = listenerVisible(e.service.tag, this.o.stateDirs);
      if (visible !== e.visible) this.o.log.info({ listener: e.service.where, tag: e.service.tag }, visible ? 'listener visible again' : 'listener hidden by its state file');
      e.visible = visible;
    }
  }

  private reconcile(): void {
    for (const e of this.entries) {
      const want = !this.closed && this.enabled && e.visible;
      if (want && !e.child && !e.respawnTimer) this.publish(e);
      if (!want) this.withdraw(e);
    }
  }

  private publish(e: Entry): void {
    const s = e.service;
    const command = this.o.command ?? 'avahi-publish-service';
    const args = ['-s', '-f', this.name, s.type, String(s.port), ...s.txt];
    // The children end with the companion: it kills them when it stops, and systemd kills the
    // whole control group if it dies. (util-linux setpriv --pdeathsig would cover a SIGKILL
    // outside systemd too, but it fails in the unit's sandbox: it insists on applying
    // capabilities, and the unit's bounding set is empty.)
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    e.child = child;
    // avahi-publish-service reports on stderr ("Established under name 'Lukko[1234]'", or the
    // alternative name after a collision); anything unexpected is worth a warning.
    const onOutput = (d: string): void => {
      for (const raw of d.split('\n')) {
        const line = raw.trim();
        if (line === '') continue;
        if (line.startsWith('Established under name')) {
          e.failing = false;
          e.respawnMs = RESPAWN_MIN_MS;
          this.o.log.info({ listener: s.where, type: s.type, port: s.port, txt: s.txt, avahi: line }, 'Zeroconf service published');
        } else if (line.startsWith('Got SIG')) {
          this.o.log.debug({ listener: s.where, avahi: line }, 'Zeroconf service withdrawn');
        } else {
          this.o.log.warn({ listener: s.where, avahi: line }, 'avahi-publish-service');
        }
      }
    };
    child.stdout!.setEncoding('utf8').on('data', onOutput);
    child.stderr!.setEncoding('utf8').on('data', onOutput);
    child.on('error', (err) => {
      if (!e.failing) this.o.log.error({ listener: s.where, err: err.message }, `cannot run ${command} (is avahi-utils installed?); Zeroconf publishing retried`);
      e.failing = true;
    });
    child.on('close', (code, signal) => {
      if (e.child !== child) return; // withdrawn on purpose
      e.child = undefined;
      if (this.closed) return;
      if (!e.failing) this.o.log.error({ listener: s.where, code, signal }, `avahi-publish-service ended; retrying in ${e.respawnMs} ms`);
      e.failing = true;
      e.respawnTimer = setTimeout(() => {
        e.respawnTimer = undefined;
        this.reconcile();
      }, e.respawnMs);
      e.respawnMs = Math.min(e.respawnMs * 2, RESPAWN_MAX_MS);
    });
  }

  private withdraw(e: Entry): void {
    if (e.respawnTimer) clearTimeout(e.respawnTimer);
    e.respawnTimer = undefined;
    const child = e.child;
    e.child = undefined;
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  }

  /** Withdraws everything and waits for the children to end. */
  async close(): Promise<void> {
    this.closed = true;
    const children = this.entries.map((e) => e.child).filter((c): c is ChildProcess => c !== undefined && c.exitCode === null && c.signalCode === null);
    const ended = children.map((c) => new Promise<void>((resolve) => c.once('close', () => resolve())));
    this.reconcile();
    await Promise.all(ended);
  }
}
