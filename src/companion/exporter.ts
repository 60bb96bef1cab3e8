// The HTTP side of `prometheus_exporter` blocks: `GET /metrics` (and HEAD) answers the metrics
// in the text format; any other path is 404, any other method 405. The original answers every
// request with the metrics without reading it; a real router costs nothing here and keeps
// stray requests (browsers asking for /favicon.ico) out of the answers.
import { chmodSync } from 'node:fs';
import http from 'node:http';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { formatAddress } from '../config/index.ts';
import type { PrometheusExporterConfig } from '../config/index.ts';
import type { Logger } from '../log/logger.ts';
import { PROMETHEUS_CONTENT_TYPE } from './metrics.ts';
import { prepareUnixPath } from '../net/unix-socket.ts';

export class ExporterError extends Error {}

export interface ExporterOptions {
  /** Renders the body at each request. */
  render: () => string;
  log: Logger;
}

function handler(o: ExporterOptions): http.RequestListener {
  return (req, res) => {
    const path = (req.url ?? '').split('?')[0];
    res.setHeader('connection', 'close');
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: try /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
      return;
    }
    let body: string;
    try {
      body = o.render();
    } catch (e) {
      o.log.error({ err: e }, 'cannot render metrics');
      res.writeHead(500).end();
      return;
    }
    res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE, 'content-length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
}

function newServer(o: ExporterOptions): Server {
  const server = http.createServer({ requestTimeout: 10_000, headersTimeout: 10_000, keepAliveTimeout: 0 }, handler(o));
  server.maxHeadersCount = 50;
  server.on('clientError', (_e: Error, socket: Socket) => socket.destroy());
  return server;
}

function listenPromise(server: Server, args: Parameters<Server['listen']>[0]): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error): void => reject(e);
    server.once('error', onError);
    server.listen(args, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** Binds one `prometheus_exporter` block as the configuration says. */
export async function listenExporter(config: PrometheusExporterConfig, o: ExporterOptions): Promise<Server> {
  const where = formatAddress(config.bind);
  if (config.interface !== undefined) {
    // SO_BINDTODEVICE is out of Node's reach; binding on every interface instead would show
    // the metrics to networks the operator meant to keep out.
    throw new ExporterError(`prometheus_exporter ${where} (${config.file}:${config.line}): 'interface' is not supported; bind to the interface's address instead`);
  }
  const server = newServer(o);
  try {
    const b = config.bind;
    if (b.kind === 'unix') {
      const path = b.abstract ? `\0${b.path}` : b.path;
      if (!b.abstract) await prepareUnixPath(b.path);
      await listenPromise(server, { path, backlog: config.backlog });
      if (!b.abstract && config.mode !== undefined && config.mode !== 0) chmodSync(b.path, config.mode);
    } else {
      const host = b.host === '' ? '::' : `${b.host}${b.scope !== undefined ? `%${b.scope}` : ''}`;
      await listenPromise(server, { host, port: b.port, backlog: config.backlog, ipv6Only: config.v6only, reusePort: config.reusePort });
    }
  } catch (e) {
    server.close();
    if (e instanceof ExporterError) throw e;
    throw new ExporterError(`prometheus_exporter ${where}: ${(e as Error).message}`);
  }
  o.log.info({ exporter: where }, 'prometheus exporter listening');
  return server;
}

/** Serves metrics on a listening socket systemd passed. */
export async function listenExporterFd(fd: number, o: ExporterOptions): Promise<Server> {
  const server = newServer(o);
  await listenPromise(server, { fd });
  return server;
}
