// Readers for "keyword VALUE" lines (value, then end of line) and the block parser contract.
import { resolve } from 'node:path';
import { parseAddress, type Address, type AddressOptions } from './address.ts';
import { ConfigError } from './errors.ts';
import type { LineCursor } from './lexer.ts';
import type { LineContext } from './reader.ts';

export interface BlockParser {
  /** The keyword that opened the block, named when the block is never closed. */
  readonly keyword: string;
  attribute(name: string, c: LineCursor, ctx: LineContext): void;
  /** Validation on the `}` line; also stores the result. */
  finish(ctx: LineContext): void;
}

export type AttributeHandler<T> = (target: T, c: LineCursor, ctx: LineContext) => void;

/** Dispatches through a Map so that names like `constructor` cannot hit Object.prototype. */
export function dispatch<T>(table: ReadonlyMap<string, AttributeHandler<T>>, name: string, target: T, c: LineCursor, ctx: LineContext): void {
  const handler = table.get(name);
  if (handler === undefined) throw unknownOption(name);
  handler(target, c, ctx);
}

export function unknownOption(name: string): ConfigError {
  return new ConfigError('Unknown option', { token: name });
}

export function readValue(c: LineCursor): string {
  const v = c.nextValue();
  c.expectEnd();
  return v;
}

/** Reads a value, reporting any lexical failure with the setting's own message. */
function valueOr(c: LineCursor, reason: string): string {
  try {
    return c.nextValue();
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(reason, { token: err.token });
    throw err;
  }
}

export function readBool(c: LineCursor): boolean {
  const v = valueOr(c, 'yes/no expected');
  if (v !== 'yes' && v !== 'no') throw c.failLast('yes/no expected');
  c.expectEnd();
  return v === 'yes';
}

// Unlike the original (strtoul), `-1` and `" 5"` are refused instead of wrapping or skipping
// blanks; values must fit the original's 32-bit unsigned fields.
export function parsePositiveInteger(v: string): number | undefined {
  if (!/^[0-9]+$/.test(v)) return undefined;
  const n = Number(v);
  return n > 0 && n <= 0xffffffff ? n : undefined;
}

export function readPositiveInteger(c: LineCursor): number {
  const n = parsePositiveInteger(valueOr(c, 'Positive integer expected'));
  if (n === undefined) throw c.failLast('Positive integer expected');
  c.expectEnd();
  return n;
}

/** A quoted path, resolved against the directory of the file that contains the line. */
export function readPath(c: LineCursor, ctx: LineContext): string {
  const p = c.nextPath();
  c.expectEnd();
  return resolve(ctx.dir, p);
}

export function readAddress(c: LineCursor, opts: AddressOptions): Address {
  const v = c.nextValue();
  c.expectEnd();
  return parseAddress(v, opts);
}

/** `mode` is octal and only makes sense for an AF_UNIX socket bound earlier in the block. */
export function readMode(c: LineCursor, bind: Address | undefined): number | undefined {
  if (bind?.kind !== 'unix') throw c.failLast("'mode' works only with local sockets");
  const v = c.nextValue();
  if (!/^[0-7]+$/.test(v)) throw c.failLast('Not a valid octal value');
  const mode = parseInt(v, 8);
  if (mode > 0o777) throw c.failLast('Not a valid mode');
  c.expectEnd();
  return mode === 0 ? undefined : mode;
}
