// Reading authorized_keys files as root without being fooled by the user who owns them:
// the file must stay beneath the home directory (no symlink out of it), be a regular file
// under 1 MiB (a FIFO or /dev/zero cannot hang or flood the server: the open is
// non-blocking), and, as OpenSSH's StrictModes, neither the file nor ~/.ssh nor the home
// directory may be writable by anyone but the user and root.
import { closeSync, constants, fstatSync, openSync, readSync, realpathSync, statSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { dirname, join, sep } from 'node:path';

export const MAX_KEYS_FILE = 1024 * 1024;

export type KeysFile = { ok: true; path: string; text: string } | { ok: false; path: string; reason: string; missing?: boolean };

function ownerProblem(st: Stats, uid: number, what: string): string | undefined {
  if (st.uid !== uid && st.uid !== 0) return `${what} is owned by uid ${st.uid}`;
  if ((st.mode & 0o022) !== 0) return `${what} is writable by group or others (mode ${(st.mode & 0o777).toString(8)})`;
  return undefined;
}

function readLimited(path: string, check?: (st: Stats) => string | undefined): KeysFile {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY | constants.O_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { ok: false, path, reason: code ?? String(e), missing: code === 'ENOENT' };
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return { ok: false, path, reason: 'not a regular file' };
    if (st.size >= MAX_KEYS_FILE) return { ok: false, path, reason: `larger than ${MAX_KEYS_FILE} bytes` };
    const problem = check?.(st);
    if (problem) return { ok: false, path, reason: problem };
    const buf = Buffer.alloc(st.size);
    let n = 0;
    while (n < buf.length) {
      const r = readSync(fd, buf, n, buf.length - n, n);
      if (r === 0) break;
      n += r;
    }
    return { ok: true, path, text: buf.subarray(0, n).toString('utf8') };
  } finally {
    closeSync(fd);
  }
}

/** The configuration directory's authorized_keys: valid for every account. */
export function readGlobalKeysFile(configDir: string): KeysFile {
  return readLimited(join(configDir, 'authorized_keys'));
}

/** ~/.ssh/authorized_keys of an account. */
export function readHomeKeysFile(home: string, uid: number): KeysFile {
  const wanted = join(home, '.ssh', 'authorized_keys');
  let realHome: string;
  let real: string;
  try {
    realHome = realpathSync(home);
    real = realpathSync(wanted);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { ok: false, path: wanted, reason: code ?? String(e), missing: code === 'ENOENT' };
  }
  if (!real.startsWith(realHome + sep)) return { ok: false, path: wanted, reason: `resolves outside the home directory (${real})` };
  try {
    const homeProblem = ownerProblem(statSync(realHome), uid, 'home directory');
    if (homeProblem) return { ok: false, path: wanted, reason: homeProblem };
    const sshDir = dirname(real);
    const dirProblem = ownerProblem(statSync(sshDir), uid, sshDir);
    if (dirProblem) return { ok: false, path: wanted, reason: dirProblem };
  } catch (e) {
    return { ok: false, path: wanted, reason: String((e as Error).message) };
  }
  return readLimited(real, (st) => ownerProblem(st, uid, 'file'));
}
