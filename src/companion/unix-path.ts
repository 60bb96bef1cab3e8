// Before binding an AF_UNIX path: a stale socket left by a crash is removed (as the original
// does), but a socket someone still listens on is not stolen, and a file that is not a socket
// is never removed.
import { lstatSync, unlinkSync } from 'node:fs';
import net from 'node:net';

export class UnixPathError extends Error {}

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

export async function prepareUnixPath(path: string): Promise<void> {
  let st;
  try {
    st = lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (!st.isSocket()) throw new UnixPathError(`${path} exists and is not a socket`);
  if (await answers(path)) throw new UnixPathError(`${path}: another process is listening on it`);
  unlinkSync(path);
}
