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

/** Instances connected at once; more are refused (each is one SSH connection). */
export const MAX_INSTANCES = 65536;
/** Commands waiting for a slow instance beyond this are dropped for it. */
const MAX_COMMAND_BACKLOG = 64 * 1024;

interface Instance {
  socket: net.Socket;
  state: InstanceState;
}

export class ReportServer {
  private readonly registry: MetricsRegistry;
  private readonly log: Logger;
  private readonly servers: net.Server[] = [];
  private readonly instances = new Set<Instance>();
  /** Totals since this process started, for STATUS=. */
  instancesSeen = 0;
  /** Commands every instance gets as soon as it connects (the current VERBOSE level). */
  greeting: () => ReportCommand[] = () => [];

  constructor(o: { registry: MetricsRegistry; log: Logger }) {
    this.registry = o.registry;
    this.log = o.log;
    updateGauges(this.registry, []);
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
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.instances.delete(instance);
    });
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
    const closing = this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    for (const { socket } of this.instances) socket.destroy();
    await Promise.all(closing);
  }
}
