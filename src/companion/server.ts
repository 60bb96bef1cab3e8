// The companion's report socket: one AF_UNIX stream per lukko instance, newline-delimited JSON
// events in (report-protocol.ts), commands out. Events become metrics (aggregate.ts).
import { chmodSync } from 'node:fs';
import net from 'node:net';
import type { Logger } from '../log/logger.ts';
import { applyEvent, newInstanceState, updateGauges } from './aggregate.ts';
import type { InstanceState } from './aggregate.ts';
import type { MetricsRegistry } from './metrics.ts';
import { LineSplitter, encodeLine, parseReportEvent } from './report-protocol.ts';
import type { ReportCommand } from './report-protocol.ts';
import { prepareUnixPath } from '../net/unix-socket.ts';
import { SourceDefences, sourceKey } from './source-defences.ts';

/** Instances connected at once; more are refused (each is one SSH connection). */
export const MAX_INSTANCES = 65536;
/** Commands waiting for a slow instance beyond this are dropped for it. */
const MAX_COMMAND_BACKLOG = 64 * 1024;

interface Instance {
  socket: net.Socket;
  state: InstanceState;
  /** Set once admitted under a listener with tarpit or max_connections_per_ip. */
  source?: string;
}

const SWEEP_MS = 60_000;

export class ReportServer {
  private readonly registry: MetricsRegistry;
  private readonly log: Logger;
  private readonly servers: net.Server[] = [];
  private readonly instances = new Set<Instance>();
  private readonly defences = new SourceDefences();
  /** The admitted instances of each source, to tell them all when its tarpit delay changes. */
  private readonly bySource = new Map<string, Set<Instance>>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly now: () => number;
  /** Totals since this process started, for STATUS=. */
  instancesSeen = 0;
  /** Commands every instance gets as soon as it connects (the current VERBOSE level). */
  greeting: () => ReportCommand[] = () => [];

  constructor(o: { registry: MetricsRegistry; log: Logger; now?: () => number }) {
    this.registry = o.registry;
    this.log = o.log;
    this.now = o.now ?? Date.now;
    updateGauges(this.registry, []);
    this.sweeper = setInterval(() => this.defences.sweep(this.now()), SWEEP_MS);
    this.sweeper.unref();
  }

  private newServer(): net.Server {
    const server = net.createServer({ allowHalfOpen: false, pauseOnConnect: false }, (s) => this.accept(s));
    server.maxConnections = MAX_INSTANCES;
    server.on('error', (e) => this.log.error({ err: e }, 'report socket failed'));
    this.servers.push(server);
    return server;
  }

  /** Binds `path` (`@name`: abstract), mode 0600: only root's instances may report. */
  async listen(path: string): Promise<void> {
    const abstract = path.startsWith('@');
    if (!abstract) await prepareUnixPath(path);
    const server = this.newServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ path: abstract ? `\0${path.slice(1)}` : path, backlog: 1024 }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    if (!abstract) chmodSync(path, 0o600);
  }

  /** Serves a listening socket systemd passed. */
  async listenFd(fd: number): Promise<void> {
    const server = this.newServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ fd }, () => {
        server.off('error', reject);
        resolve();
      });
    });
  }

  private accept(socket: net.Socket): void {
    const instance: Instance = { socket, state: newInstanceState() };
    this.instances.add(instance);
    this.instancesSeen++;
    for (const command of this.greeting()) {
      const line = encodeLine(command);
      if (line !== undefined) socket.write(line);
    }
    const splitter = new LineSplitter();
    socket.on('data', (data: Buffer) => {
      const { lines, overlong } = splitter.push(data);
      if (overlong) this.registry.inc('lukko_companion_reports_ignored', undefined, overlong);
      for (const line of lines) {
        if (line === '') continue;
        const r = parseReportEvent(line);
        if (!r.ok) {
          this.registry.inc('lukko_companion_reports_ignored');
          if (!r.ignored) this.log.debug({ error: r.error, pid: instance.state.pid }, 'bad report line');
          continue;
        }
        applyEvent(this.registry, instance.state, r.value);
        if (r.value.t === 'accepted') this.admit(instance, r.value);
        else if (r.value.t === 'charge') this.charge(instance, r.value.cost);
        else if (r.value.t === 'closed') this.release(instance);
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.instances.delete(instance);
      this.release(instance);
    });
  }

  private send(instance: Instance, command: ReportCommand): void {
    const line = encodeLine(command);
    const { socket } = instance;
    if (line === undefined || socket.destroyed || socket.writableLength > MAX_COMMAND_BACKLOG) return;
    socket.write(line);
  }

  // max_connections_per_ip and tarpit at accept (spec §5.2, §5.3). The instance waits for
  // this answer (briefly: it goes on without one), so it is sent whatever happens.
  private admit(instance: Instance, e: { ip?: string; listener?: string; tarpit?: boolean; max?: number }): void {
    if (!e.tarpit && !e.max) return;
    if (instance.source !== undefined || e.ip === undefined) {
      this.send(instance, { c: 'admit', delay: 0 });
      return;
    }
    const key = sourceKey(e.listener ?? '', e.ip);
    const a = this.defences.admit(key, { tarpit: !!e.tarpit, maxPerIp: e.max ?? 0 }, this.now());
    if (a.reject) {
      this.registry.inc('lukko_connections_rejected');
      this.log.info({ client: e.ip, listener: e.listener, max: e.max }, `Too many connections from ${e.ip}`);
      this.send(instance, { c: 'reject' });
      return;
    }
    instance.source = key;
    let peers = this.bySource.get(key);
    if (!peers) this.bySource.set(key, (peers = new Set()));
    peers.add(instance);
    if (a.delayMs > 0) {
      this.registry.inc('lukko_tarpit');
      this.log.info({ client: e.ip, listener: e.listener, delay: a.delayMs / 1000 }, `Connect from ${e.ip} tarpit ${a.delayMs / 1000}s`);
    }
    this.send(instance, { c: 'admit', delay: a.delayMs });
  }

  private charge(instance: Instance, cost: number): void {
    const key = instance.source;
    if (key === undefined) return;
    const before = this.defences.delay(key);
    const after = this.defences.charge(key, cost, this.now());
    if (after === before) return;
    for (const peer of this.bySource.get(key) ?? []) this.send(peer, { c: 'tarpit', delay: after });
  }

  private release(instance: Instance): void {
    const key = instance.source;
    if (key === undefined) return;
    instance.source = undefined;
    this.defences.release(key, this.now());
    const peers = this.bySource.get(key);
    peers?.delete(instance);
    if (peers?.size === 0) this.bySource.delete(key);
  }

  /** Sets the gauges from the instances connected now (before each scrape). */
  refreshGauges(): { active: number; children: number } {
    return updateGauges(
      this.registry,
      [...this.instances].map((i) => i.state),
    );
  }

  get connectedInstances(): number {
    return this.instances.size;
  }

  /** Sends `command` to every connected instance; returns how many it was written to. */
  broadcast(command: ReportCommand): number {
    const line = encodeLine(command);
    if (line === undefined) return 0;
    let n = 0;
    for (const { socket } of this.instances) {
      if (socket.destroyed || socket.writableLength > MAX_COMMAND_BACKLOG) continue;
      socket.write(line);
      n++;
    }
    return n;
  }

  /** Stops accepting and drops every instance's stream (their clients fail open). */
  async close(): Promise<void> {
    clearInterval(this.sweeper);
    const closing = this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    for (const { socket } of this.instances) socket.destroy();
    await Promise.all(closing);
  }
}
