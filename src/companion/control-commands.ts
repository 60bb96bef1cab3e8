// What the control commands mean (spec/config-control-metrics.md §3.4), as pure functions over a
// decoded packet. Who may send which command (peer credentials, opted-in UDP sources) is decided
// by the companion, not here.

import { ControlCommandNumber, controlCommandName } from './control-codec.ts';
import type { ControlCommand, ControlCommandName } from './control-codec.ts';

export type PayloadResult<T> = ({ ok: true } & T) | { ok: false; error: string };

/** VERBOSE: the payload is exactly one byte, the new log level (0 = quiet, 1 = default). */
export function parseVerbosePayload(payload: Buffer): PayloadResult<{ level: number }> {
  if (payload.length !== 1) {
    return { ok: false, error: `VERBOSE payload must be 1 byte (length=${payload.length})` };
  }
  return { ok: true, level: payload[0]! };
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * TERMINATE_CHILDREN: the payload is the raw tag, without a NUL terminator and without trimming;
 * it must not be empty. It is compared exactly with the elements of a connection's CHILD_TAG
 * list, which is NUL-separated, so a tag containing NUL could never match and is refused here.
 * A tag that is not valid UTF-8 is refused too: lukko keeps CHILD_TAG values as strings, and a
 * lossy decoding could make two different byte strings compare equal.
 */
export function parseTerminateChildrenPayload(payload: Buffer): PayloadResult<{ tag: string }> {
  if (payload.length === 0) return { ok: false, error: 'TERMINATE_CHILDREN without a tag' };
  if (payload.includes(0)) return { ok: false, error: 'TERMINATE_CHILDREN tag contains a NUL byte' };
  let tag: string;
  try {
    tag = utf8.decode(payload);
  } catch {
    return { ok: false, error: 'TERMINATE_CHILDREN tag is not valid UTF-8' };
  }
  return { ok: true, tag };
}

/**
 * Whether a connection whose translation response carried `childTags` (the CHILD_TAG values, as
 * a list or as the original's NUL-separated string) is hit by TERMINATE_CHILDREN `tag`: one
 * element must equal it exactly. Empty elements never match (the tag is never empty).
 */
export function childTagsMatch(childTags: string | readonly string[], tag: string): boolean {
  if (tag === '') return false;
  const list = typeof childTags === 'string' ? childTags.split('\0') : childTags;
  return list.includes(tag);
}

/**
 * What one packet asks for:
 * - `verbose`, `disable-zeroconf`, `enable-zeroconf`, `terminate-children`: the commands issue 6
 *   names. DISABLE_/ENABLE_ZEROCONF ignore their payload, as the original does.
 * - `reload-state`: the original re-reads the per-listener Zeroconf state files on RELOAD_STATE
 *   (§6.2), the same as on SIGHUP; reported so the companion can do likewise.
 * - `invalid`: a command lukko acts on, with a payload it cannot use (VERBOSE not 1 byte, empty
 *   tag, ...). The original ignores these silently; the reason is here for logging and counting.
 * - `ignored`: NOP and every other number, known to the original or not.
 */
export type ControlAction =
  | { kind: 'verbose'; level: number }
  | { kind: 'disable-zeroconf' }
  | { kind: 'enable-zeroconf' }
  | { kind: 'terminate-children'; tag: string }
  | { kind: 'reload-state' }
  | { kind: 'invalid'; command: number; name: ControlCommandName; error: string }
  | { kind: 'ignored'; command: number; name: ControlCommandName | undefined };

export function interpretControlCommand({ command, payload }: ControlCommand): ControlAction {
  switch (command) {
    case ControlCommandNumber.VERBOSE: {
      const r = parseVerbosePayload(payload);
      return r.ok ? { kind: 'verbose', level: r.level } : { kind: 'invalid', command, name: 'VERBOSE', error: r.error };
    }
    case ControlCommandNumber.DISABLE_ZEROCONF:
      return { kind: 'disable-zeroconf' };
    case ControlCommandNumber.ENABLE_ZEROCONF:
      return { kind: 'enable-zeroconf' };
    case ControlCommandNumber.TERMINATE_CHILDREN: {
      const r = parseTerminateChildrenPayload(payload);
      return r.ok
        ? { kind: 'terminate-children', tag: r.tag }
        : { kind: 'invalid', command, name: 'TERMINATE_CHILDREN', error: r.error };
    }
    case ControlCommandNumber.RELOAD_STATE:
      return { kind: 'reload-state' };
    default:
      return { kind: 'ignored', command, name: controlCommandName(command) };
  }
}
