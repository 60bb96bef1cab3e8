// `lukko companion`: the long-running side of lukko (lukko-companion.service). It collects
// the per-connection instances' reports into the original's metrics, serves them on the
// `prometheus_exporter` blocks, keeps its counters across restarts, and can send commands to
// every instance (docs/companion.md).
import type { Server } from 'node:http';
import { ConfigError, loadConfig } from '../config/index.ts';
import type { Config } from '../config/index.ts';
import { EXIT_CONFIG } from '../exit-codes.ts';
import { chooseLogMode, createLogger } from '../log/logger.ts';
import type { Logger } from '../log/logger.ts';
import { takeListenFds } from '../systemd/listen-fds.ts';
import type { ListenFd } from '../systemd/listen-fds.ts';
import { notifyReady, notifyStatus } from '../systemd/notify.ts';
import { CounterStore, DEFAULT_STATE_PATH } from './counter-store.ts';
import { listenExporter, listenExporterFd } from './exporter.ts';
import { MetricsRegistry } from './metrics.ts';
import { DEFAULT_REPORT_SOCKET } from './report-protocol.ts';
import type { ReportCommand } from './report-protocol.ts';
import { ReportServer } from './server.ts';
import { startWatchdog } from './watchdog.ts';

export { DEFAULT_REPORT_SOCKET, DEFAULT_STATE_PATH };

/** LISTEN_FDNAMES (FileDescriptorName= in a .socket unit) the companion understands. */
export const FD_NAME_REPORT = 'report';
export const FD_NAME_PROMETHEUS = 'prometheus';

const STATUS_INTERVAL_MS = 5000;

export interface CompanionOptions {
  readonly config: string;
  readonly state: string;
  readonly reportSocket: string;
  readonly logLevel: string;
  readonly saveIntervalMs?: number;
}

/** A running companion. */
export interface Companion {
  readonly registry: MetricsRegistry;
  readonly reports: ReportServer;
  /** Sends a command to every connected instance; returns how many got it. */
  broadcast(command: ReportCommand): number;
  render(): string;
  stop(): Promise<void>;
}

function fail(message: string, code: number): never {
  for (const line of message.split('\n')) process.stderr.write(`lukko companion: ${line}\n`);
  process.exit(code);
}

function statusText(c: Companion): string {
  const m = c.registry;
  const { active } = c.reports.refreshGauges();
  const failed = ['password', 'publickey', 'hostbased', 'unsupported', 'unknown'].reduce((n, method) => n + m.get('lukko_userauth_failed', { method }), 0);
  return `${active} connections now; ${m.get('lukko_connections_accepted')} accepted, ${failed} failed logins in total; ${c.reports.connectedInstances} instances reporting`;
}

export async function startCompanion(o: CompanionOptions, config: Config, log: Logger, fds: ListenFd[]): Promise<Companion> {
  const registry = new MetricsRegistry();
  const store = new CounterStore({ path: o.state, registry, log, ...(o.saveIntervalMs !== undefined ? { intervalMs: o.saveIntervalMs } : {}) });
  store.load();
  // A state file we cannot write would lose counts at the next restart: better to say so now.
  if (!store.save()) throw new Error(`cannot write the state file ${o.state}`);
  store.start();

  const reports = new ReportServer({ registry, log });
  const render = (): string => {
    reports.refreshGauges();
    return registry.render();
  };
  const http: Server[] = [];

  const reportFds = fds.filter((f) => f.name === FD_NAME_REPORT);
  const exporterFds = fds.filter((f) => f.name === FD_NAME_PROMETHEUS);
  for (const f of fds) {
    if (f.name !== FD_NAME_REPORT && f.name !== FD_NAME_PROMETHEUS) log.warn({ fd: f.fd, name: f.name }, `socket from systemd ignored: name it "${FD_NAME_REPORT}" or "${FD_NAME_PROMETHEUS}"`);
  }
  if (reportFds.length) {
    for (const f of reportFds) await reports.listenFd(f.fd);
  } else {
    await reports.listen(o.reportSocket);
  }
  if (exporterFds.length) {
    for (const f of exporterFds) http.push(await listenExporterFd(f.fd, { render, log }));
  } else {
    for (const e of config.prometheusExporters) http.push(await listenExporter(e, { render, log }));
  }

  let stopping: Promise<void> | undefined;
  const companion: Companion = {
    registry,
    reports,
    broadcast: (command) => reports.broadcast(command),
    render,
    stop: () => {
      stopping ??= (async () => {
        store.stop();
        for (const s of http) s.closeAllConnections();
        await Promise.all([reports.close(), ...http.map((s) => new Promise<void>((resolve) => s.close(() => resolve())))]);
      })();
      return stopping;
    },
  };
  log.info(
    {
      report: reportFds.length ? reportFds.map((f) => `fd ${f.fd}`) : o.reportSocket,
      exporters: exporterFds.length ? exporterFds.map((f) => `fd ${f.fd}`) : config.prometheusExporters.length,
      state: o.state,
    },
    'companion ready',
  );
  return companion;
}

export async function runCompanion(o: CompanionOptions): Promise<Companion> {
  const log = createLogger({ fd: 1, mode: chooseLogMode(1, process.env, !!process.stdout.isTTY), level: o.logLevel });
  const activation = takeListenFds();
  if (activation.kind === 'error') fail(activation.message, EXIT_CONFIG);
  let config: Config;
  try {
    config = loadConfig(o.config);
  } catch (e) {
    if (e instanceof ConfigError) fail(e.message, EXIT_CONFIG);
    throw e;
  }
  let companion: Companion;
  try {
    companion = await startCompanion(o, config, log, activation.kind === 'fds' ? activation.fds : []);
  } catch (e) {
    fail((e as Error).message, 1);
  }

  const stop = (signal: string): void => {
    log.info({ signal }, 'companion stopping');
    void companion.stop().then(() => process.exit(0));
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => log.info('SIGHUP: nothing to reload yet'));

  let last = '';
  const status = (): void => {
    const text = statusText(companion);
    if (text !== last) notifyStatus(text);
    last = text;
  };
  status();
  setInterval(status, STATUS_INTERVAL_MS).unref();
  const watchdog = startWatchdog();
  if (watchdog !== undefined) log.info({ intervalMs: watchdog }, 'watchdog pings on');
  notifyReady();
  return companion;
}
