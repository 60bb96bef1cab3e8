// Size values of the `spawn` memory settings.
import type { MemoryLimit, SwapLimit } from './schema.ts';

// Every unit is a power of 1024, whatever its spelling: "16 GB" means 16 GiB, as in the original.
const UNIT_SHIFT: Readonly<Record<string, number>> = { B: 0, k: 10, K: 10, M: 20, G: 30, T: 40 };

/** A byte count in bytes, undefined if malformed, or Infinity if it does not fit a safe integer. */
export function parseByteSize(text: string): number | undefined {
  const m = /^([0-9]+)[ \t]*(?:([BkKMGT])i?B?)?$/.exec(text);
  if (m === null) return undefined;
  const shift = UNIT_SHIFT[m[2] ?? 'B'] ?? 0;
  const bytes = Number(m[1]) * 2 ** shift;
  return Number.isSafeInteger(bytes) ? bytes : Infinity;
}

export type SizeResult<T> = { ok: true; value: T } | { ok: false; reason: string };

export function parseSwapLimit(text: string): SizeResult<SwapLimit> {
  if (text === 'infinity') return { ok: true, value: 'infinity' };
  const bytes = parseByteSize(text);
  if (bytes === undefined) return { ok: false, reason: 'Invalid byte size' };
  if (bytes === Infinity) return { ok: false, reason: 'Value is too large' };
  return { ok: true, value: { bytes } };
}

/** Like a swap limit, but `N%` (of physical memory) is allowed too. */
export function parseMemoryLimit(text: string): SizeResult<MemoryLimit> {
  const m = /^([0-9]+(?:\.[0-9]+)?)%$/.exec(text);
  if (m === null) return parseSwapLimit(text);
  const percent = Number(m[1]);
  if (percent > 100) return { ok: false, reason: 'Percentage out of range' };
  return { ok: true, value: { percent } };
}
