// Top-level keyword dispatch and the pure entry point `parseConfigText`.
import { dirname, resolve } from 'node:path';
import { ControlBlock } from './control.ts';
import { ConfigError, type Location } from './errors.ts';
import type { LineCursor } from './lexer.ts';
import { ListenerBlock } from './listener.ts';
import { PrometheusExporterBlock } from './prometheus.ts';
import { ConfigReader, type FileAccess, type LineContext, type LineSink } from './reader.ts';
import { implicitListener, newConfig, type Config } from './schema.ts';
import { readBool, readValue, unknownOption, type BlockParser } from './settings.ts';
import { SpawnBlock } from './spawn.ts';
import { TargetHostBlock } from './target-host.ts';
import { ZeroconfClusterBlock } from './zeroconf.ts';

export interface ParseOptions {
  /** Path of the main file: names it in errors and anchors relative paths. */
  path: string;
  readFile?: (path: string) => string;
  listDir?: (dir: string) => string[];
}

interface OpenBlock {
  parser: BlockParser;
  opened: Location;
}

class ConfigParser implements LineSink {
  readonly config: Config;
  private block: OpenBlock | undefined;

  constructor(config: Config) {
    this.config = config;
  }

  inBlock(): boolean {
    return this.block !== undefined;
  }

  closeBlock(_c: LineCursor, ctx: LineContext): void {
    const block = this.block;
    this.block = undefined;
    block?.parser.finish(ctx);
  }

  line(c: LineCursor, ctx: LineContext): void {
    const word = c.nextWord();
    // Blocks do not nest: inside one, `listener {` is just an unknown attribute.
    if (this.block !== undefined) this.block.parser.attribute(word, c, ctx);
    else this.topLevel(word, c, ctx);
  }

  private topLevel(word: string, c: LineCursor, ctx: LineContext): void {
    const config = this.config;
    switch (word) {
      case 'listener':
        return this.open(c, ctx, () => new ListenerBlock(config, ctx));
      case 'control':
        return this.open(c, ctx, () => new ControlBlock(config, ctx));
      case 'prometheus_exporter':
        return this.open(c, ctx, () => new PrometheusExporterBlock(config, ctx));
      case 'spawn':
        return this.open(c, ctx, () => new SpawnBlock(config));
      case 'zeroconf_cluster': {
        const name = c.nextValue();
        return this.open(c, ctx, () => new ZeroconfClusterBlock(config, name, ctx));
      }
      case 'target_host': {
        const name = c.nextValue();
        return this.open(c, ctx, () => new TargetHostBlock(config, name, ctx));
      }
      case 'translation_server':
        // The documented "must start with / or @" rule is not enforced, as in the original.
        config.translationServer = readValue(c);
        return;
      case 'populate_io_buffers':
        config.populateIoBuffers = readBool(c);
        return;
      default:
        throw unknownOption(word);
    }
  }

  private open(c: LineCursor, ctx: LineContext, create: () => BlockParser): void {
    c.expectOpenBrace();
    this.block = { parser: create(), opened: { file: ctx.file, line: ctx.line, chain: ctx.chain } };
  }

  /** Block state crosses include boundaries, so an unclosed block is only known at the very end. */
  end(): Config {
    if (this.block !== undefined) {
      const { parser, opened } = this.block;
      // The original reports this without any position; lukko names where the block was opened.
      throw new ConfigError('Block not closed at end of file', { ...opened, token: parser.keyword });
    }
    if (this.config.listeners.length === 0) this.config.listeners.push(implicitListener(this.config.path));
    return this.config;
  }
}

function unavailable(): never {
  throw Object.assign(new Error('no file access configured'), { code: 'ENOSYS' });
}

/**
 * Parses the text of the main config file. The file system is reached only through `readFile` and
 * `listDir` (for includes); without them an include fails with "Function not implemented".
 */
export function parseConfigText(text: string, opts: ParseOptions): Config {
  const files: FileAccess = { readFile: opts.readFile ?? unavailable, listDir: opts.listDir ?? unavailable };
  const parser = new ConfigParser(newConfig(opts.path, resolve(dirname(opts.path))));
  new ConfigReader(files, parser).feed(opts.path, text);
  return parser.end();
}
