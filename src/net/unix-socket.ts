// AF_UNIX addresses as lukko.conf and the command lines write them, shared by the
// translation client and server and the companion.
import { lstatSync, unlinkSync } from 'node:fs';
import net from 'node:net';

/** `@name` is an abstract socket (a leading NUL for Node); anything else a path. */
export function localSocketPath(address: string): string {
  return address.startsWith('@') ? `\0${address.slice(1)}` : address;
}

export class UnixPathError extends Error {
  readonly reason: 'not-a-socket' | 'in-use';

  constructor(reason: 'not-a-socket' | 'in-use', message: string) {
    super(message);
    this.reason = reason;
  }
}

function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createConnection({ path });
    const done = (v: boolean): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(true), 1000); // a listener too busy to accept is alive
    s.once('connect', () => done(true));
    s.once('error', (e: NodeJS.ErrnoException) => done(e.code !== 'ECONNREFUSED' && e.code !== 'ENOENT'));
  });
}

/**
 * Before binding an AF_UNIX path: a stale socket left by a crash is removed (as the original
 * does), but a socket someone still listens on is not stolen, and a file that is not a socket
 * is never removed.
 */
export async function prepareUnixPath(path: string): Promise<void> {
  let st;
  try {
    st = lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (!st.isSocket()) throw new UnixPathError('not-a-socket', `${path} exists and is not a socket`);
  if (await answers(path)) throw new UnixPathError('in-use', `${path}: another process is listening on it`);
  unlinkSync(path);
}
