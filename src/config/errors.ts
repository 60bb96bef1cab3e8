// One error type for the whole parser. Low-level helpers throw it "unlocated" (only the reason and
// the offending token); the reader then re-throws it with the file, line and include chain, which
// only the reader knows.

export interface ConfigErrorOptions {
  file?: string;
  line?: number;
  token?: string;
  chain?: readonly string[];
}

export class ConfigError extends Error {
  /** The bare message text, as the original Lukko words it (e.g. `Unknown option`). */
  readonly reason: string;
  file?: string;
  line?: number;
  token?: string;
  /** Include chain, outermost first, e.g. `["/etc/a.conf:16", "/etc/conf.d/b.conf:3"]`. */
  chain: string[];

  constructor(reason: string, opts: ConfigErrorOptions = {}) {
    super(formatMessage(reason, opts));
    this.name = 'ConfigError';
    this.reason = reason;
    this.file = opts.file;
    this.line = opts.line;
    this.token = opts.token;
    this.chain = opts.chain ? [...opts.chain] : [];
  }

  get located(): boolean {
    return this.file !== undefined;
  }
}

function formatMessage(reason: string, opts: ConfigErrorOptions): string {
  const where = opts.file !== undefined && opts.line !== undefined ? `${opts.file}:${opts.line}: ` : '';
  const near = opts.token !== undefined && opts.token !== '' ? ` (near '${opts.token}')` : '';
  return where + reason + near;
}

export interface Location {
  file: string;
  line: number;
  chain: readonly string[];
}

/** Re-creates an unlocated error at a position; a located one (from a nested include) is kept. */
export function locate(err: ConfigError, at: Location): ConfigError {
  if (err.located) return err;
  const located = new ConfigError(err.reason, { ...at, token: err.token });
  located.stack = err.stack;
  return located;
}

// The original prints strerror() texts; Node only gives us the errno code, so translate the ones a
// config reader can plausibly hit.
const ERRNO_TEXT: Readonly<Record<string, string>> = {
  ENOENT: 'No such file or directory',
  ENOTDIR: 'Not a directory',
  EACCES: 'Permission denied',
  EPERM: 'Operation not permitted',
  EISDIR: 'Is a directory',
  ELOOP: 'Too many levels of symbolic links',
  ENAMETOOLONG: 'File name too long',
  EMFILE: 'Too many open files',
  EIO: 'Input/output error',
  ENOSYS: 'Function not implemented',
};

export function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') {
    return err.code;
  }
  return undefined;
}

export function errnoText(err: unknown): string {
  const code = errnoCode(err);
  if (code !== undefined) return ERRNO_TEXT[code] ?? code;
  return err instanceof Error ? err.message : String(err);
}
