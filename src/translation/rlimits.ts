// The RLIMITS payload (spec/translation-protocol.md §3.4): a list of resource letters, each
// followed by a decimal number with an optional K/M/G/T suffix (powers of 1024) or by `!`
// for unlimited. `S` and `H` make the letters after them set only the soft or only the hard
// limit. Whitespace between items is ignored. Several RLIMITS packets add up, later values
// overwriting earlier ones per resource and per soft/hard.
//
// Values are bigint because rlim_t is 64 bits wide; like the original, a suffix that shifts
// a value beyond 64 bits wraps, and a number that does not fit in 64 bits is malformed.

export type RlimitResource =
  | 'CPU' | 'FSIZE' | 'DATA' | 'STACK' | 'CORE' | 'RSS' | 'NPROC'
  | 'NOFILE' | 'MEMLOCK' | 'AS' | 'SIGPENDING' | 'MSGQUEUE' | 'NICE' | 'RTPRIO';

/** RLIM_INFINITY on Linux: what `!` stands for. */
export const RLIM_INFINITY = (1n << 64n) - 1n;

/** An unset side keeps whatever the process inherits. */
export interface Rlimit {
  soft?: bigint;
  hard?: bigint;
}

export type Rlimits = Map<RlimitResource, Rlimit>;

const LETTERS: Readonly<Record<string, RlimitResource>> = {
  t: 'CPU', f: 'FSIZE', d: 'DATA', s: 'STACK', c: 'CORE', m: 'RSS', u: 'NPROC',
  n: 'NOFILE', l: 'MEMLOCK', v: 'AS', i: 'SIGPENDING', q: 'MSGQUEUE', e: 'NICE', r: 'RTPRIO',
};

const SHIFT: Readonly<Record<string, bigint>> = { K: 10n, M: 20n, G: 30n, T: 40n };

const MASK = RLIM_INFINITY;

/**
 * Adds one payload to `into`. Returns false when the payload is malformed; `into` may then
 * be partly updated, which does not matter because the whole response is refused.
 * A NUL is refused although the original would skip it as whitespace: no valid server
 * sends one, and strings with NUL are refused everywhere else in this layer.
 */
export function parseRlimits(payload: string, into: Rlimits): boolean {
  let which: 'both' | 'soft' | 'hard' = 'both';
  let i = 0;
  while (i < payload.length) {
    const ch = payload[i++]!;
    if (ch === 'S') { which = 'soft'; continue; }
    if (ch === 'H') { which = 'hard'; continue; }
    const resource = LETTERS[ch];
    if (resource === undefined) {
      // The original treats every byte up to 0x20 as whitespace.
      if (ch !== '\0' && ch.charCodeAt(0) <= 0x20) continue;
      return false;
    }
    if (i >= payload.length) return false;
    let value: bigint;
    if (payload[i] === '!') {
      value = RLIM_INFINITY;
      i++;
    } else {
      const digits = /^[0-9]+/.exec(payload.slice(i));
      if (digits === null) return false;
      value = BigInt(digits[0]);
      if (value > MASK) return false;
      i += digits[0].length;
      const shift = payload[i] === undefined ? undefined : SHIFT[payload[i]!];
      if (shift !== undefined) {
        value = (value << shift) & MASK;
        i++;
      }
    }
    const limit = into.get(resource) ?? {};
    if (which !== 'hard') limit.soft = value;
    if (which !== 'soft') limit.hard = value;
    into.set(resource, limit);
  }
  return true;
}
