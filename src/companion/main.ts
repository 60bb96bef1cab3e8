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
import { ControlReceiver } from './control-receiver.ts';
import { ControlService } from './control-service.ts';
import type { SenderPolicy } from './control-permission.ts';
import { ZeroconfPublisher } from './zeroconf-publisher.ts';
import { planZeroconf } from './zeroconf-service.ts';

export { DEFAULT_REPORT_SOCKET, DEFAULT_STATE_PATH };

/** LISTEN_FDNAMES (FileDescriptorName= in a .socket unit) the companion understands. */
export const FD_NAME_REPORT = 'report';
export const FD_NAME_PROMETHEUS = 'prometheus';
export const FD_NAME_CONTROL = 'control';
const FD_NAMES = [FD_NAME_REPORT, FD_NAME_PROMETHEUS, FD_NAME_CONTROL];

const STATUS_INTERVAL_MS = 5000;

export interface CompanionOptions {
  readonly config: string;
  readonly state: string;
  readonly reportSocket: string;
  readonly logLevel: string;
  readonly saveIntervalMs?: number;
  /** avahi-publish-service, or a stand-in (tests). */
  readonly avahiPublish?: string;
}

/** A running companion. */
export interface Companion {
  readonly registry: MetricsRegistry;
  readonly reports: ReportServer;
  readonly control: ControlService;
  readonly zeroconf: ZeroconfPublisher | undefined;
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
  const controlFds = fds.filter((f) => f.name === FD_NAME_CONTROL);
  for (const f of fds) {
    if (!FD_NAMES.includes(f.name)) log.warn({ fd: f.fd, name: f.name }, `socket from systemd ignored: name it ${FD_NAMES.map((n) => `"${n}"`).join(', ')}`);
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

  // Zeroconf: a listener that cannot be published as lukko.conf says is logged, not fatal,
  // so that a Zeroconf detail never costs the metrics and the control socket.
  const zc = planZeroconf(config.listeners);
  for (const e of zc.errors) log.error(e);
  for (const w of zc.warnings) log.warn(w);
  let zeroconf: ZeroconfPublisher | undefined;

  // Sockets from systemd are not tied to a block: every block's allow_from applies to them.
  const ownUid = process.geteuid?.() ?? 0;
  const policies: SenderPolicy[] = controlFds.length
    ? [{ ownUid, allowFrom: config.controls.flatMap((c) => c.allowFrom ?? []) }]
    : config.controls.map((c) => ({ ownUid, allowFrom: c.allowFrom ?? [] }));
  const control = new ControlService({
    log,
    registry,
    policies,
    targets: {
      broadcast: (command) => reports.broadcast(command),
      setZeroconf: (on: boolean) => zeroconf?.setEnabled(on),
      reloadState: () => zeroconf?.reloadState(),
    },
  });
  reports.greeting = () => control.greeting();
  let receiver: ControlReceiver | undefined;
  if (controlFds.length || config.controls.length) {
    receiver = await ControlReceiver.start({
      blocks: config.controls,
      fds: controlFds.map((f) => f.fd),
      log,
      onDatagram: (d) => control.handle(d),
    });
  }
  // Announced only once everything else is up: a failed start announces nothing.
  if (zc.services.length) zeroconf = new ZeroconfPublisher({ services: zc.services, log, ...(o.avahiPublish !== undefined ? { command: o.avahiPublish } : {}) });

  let stopping: Promise<void> | undefined;
  const companion: Companion = {
    registry,
    reports,
    control,
    zeroconf,
    broadcast: (command) => reports.broadcast(command),
    render,
    stop: () => {
      stopping ??= (async () => {
        store.stop();
        control.close();
        for (const s of http) s.closeAllConnections();
        await Promise.all([
          reports.close(),
          receiver?.close(),
          zeroconf?.close(),
          ...http.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))),
        ]);
      })();
      return stopping;
    },
  };
  log.info(
    {
      report: reportFds.length ? reportFds.map((f) => `fd ${f.fd}`) : o.reportSocket,
      exporters: exporterFds.length ? exporterFds.map((f) => `fd ${f.fd}`) : config.prometheusExporters.length,
      control: controlFds.length ? controlFds.map((f) => `fd ${f.fd}`) : config.controls.length,
      zeroconf: zc.services.length,
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
  // As in the original, SIGHUP re-reads the per-listener Zeroconf state files only.
  process.on('SIGHUP', () => {
    log.info('SIGHUP: re-reading the Zeroconf state files');
    companion.zeroconf?.reloadState();
  });

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
