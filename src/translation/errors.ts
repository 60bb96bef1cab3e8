// Why a translation response was refused. Every refusal ends the login the same way
// (DISCONNECT 7 "Configuration server failed"); the rule and the packet name exist for the
// log line, so an operator can see which part of the server's answer was wrong.

export type TranslationRule =
  | 'no-begin' // the first packet was not BEGIN
  | 'double-begin' // a second BEGIN
  | 'excessive-data' // bytes after END
  | 'hung-up' // the input ended before END
  | 'too-large' // the response exceeded the size limit
  | 'malformed' // a payload of the wrong length, format or character set
  | 'duplicate' // a packet that may appear once per response or per options appeared again
  | 'misplaced' // a packet that needs another one before it, or one the original calls misplaced
  | 'conflict' // two packets that exclude each other (NETWORK_NAMESPACE and its _NAME)
  | 'request-packet' // a packet that only belongs in a request
  | 'deprecated' // DOMAIN, DELEGATE
  | 'unknown' // a packet the original's parser does not accept in lukko's build
  | 'too-many' // more PROBE_SUFFIX packets than the original has room for
  | 'incomplete' // PROBE_PATH_SUFFIXES without any PROBE_SUFFIX
  | 'invalid-account' // a success without usable top-level uid, gid or HOME
  | 'unreachable' // connecting or writing the request failed
  | 'timeout' // no complete response in time (the original waits without limit)
  | 'unenforceable'; // the response asks for isolation this release cannot enforce

export class TranslationError extends Error {
  readonly rule: TranslationRule;
  /** The protocol name (or `#number`) of the offending packet, when one packet is to blame. */
  readonly packet: string | undefined;

  constructor(rule: TranslationRule, message: string, packet?: string) {
    super(message);
    this.name = 'TranslationError';
    this.rule = rule;
    this.packet = packet;
  }
}
