// `prometheus_exporter { ... }`: the HTTP metrics socket.
import type { Address } from './address.ts';
import { ConfigError, type Location } from './errors.ts';
import type { LineCursor } from './lexer.ts';
import type { LineContext } from './reader.ts';
import { DEFAULT_PROMETHEUS_PORT, type Config, type PrometheusExporterConfig } from './schema.ts';
import { dispatch, readAddress, readBool, readMode, readValue, type AttributeHandler, type BlockParser } from './settings.ts';

type ExporterDraft = Omit<PrometheusExporterConfig, 'bind'> & { bind?: Address };

const ATTRIBUTES = new Map<string, AttributeHandler<ExporterDraft>>([
  ['bind', (d, c) => {
    d.bind = readAddress(c, { defaultPort: DEFAULT_PROMETHEUS_PORT, allowWildcard: true });
  }],
  ['interface', (d, c) => {
    d.interface = readValue(c);
  }],
  ['mode', (d, c) => {
    d.mode = readMode(c, d.bind);
  }],
  ['v6only', (d, c) => {
    d.v6only = readBool(c);
  }],
  ['reuse_port', (d, c) => {
    d.reusePort = readBool(c);
  }],
]);

export class PrometheusExporterBlock implements BlockParser {
  readonly keyword = 'prometheus_exporter';
  private readonly config: Config;
  private readonly draft: ExporterDraft;

  constructor(config: Config, origin: Location) {
    this.config = config;
    // Backlog is fixed (not configurable) in the original.
    this.draft = { file: origin.file, line: origin.line, v6only: false, reusePort: false, backlog: 16 };
  }

  attribute(name: string, c: LineCursor, ctx: LineContext): void {
    dispatch(ATTRIBUTES, name, this.draft, c, ctx);
  }

  finish(): void {
    const { bind } = this.draft;
    if (bind === undefined) throw new ConfigError('PrometheusExporter has no bind address');
    if (this.draft.mode !== undefined && bind.kind !== 'unix') throw new ConfigError("'mode' works only with local sockets");
    this.config.prometheusExporters.push({ ...this.draft, bind });
  }
}
