// sd_listen_fds(3) for Node: systemd passes sockets from fd 3 on and says how many in
// LISTEN_FDS, for which process in LISTEN_PID, and their names in LISTEN_FDNAMES. The npm
// package systemd-socket neither checks LISTEN_PID nor reads the names (docs/design.md).

export const SD_LISTEN_FDS_START = 3;

export interface ListenFd {
  fd: number;
  name: string;
}

export type ListenFdsResult =
  | { kind: 'none' } // not socket-activated
  | { kind: 'fds'; fds: ListenFd[] }
  | { kind: 'error'; message: string };

/** Pure: what the environment says, for process `pid`. */
export function parseListenFds(env: Record<string, string | undefined>, pid: number): ListenFdsResult {
  const count = env.LISTEN_FDS;
  if (count === undefined) return { kind: 'none' };
  if (!/^[0-9]+$/.test(count)) return { kind: 'error', message: `LISTEN_FDS is not a number: "${count}"` };
  const listenPid = env.LISTEN_PID;
  // Without LISTEN_PID the variables may have been inherited from a parent that was meant.
  if (listenPid === undefined || listenPid !== String(pid)) {
    return { kind: 'error', message: `LISTEN_PID (${listenPid ?? 'unset'}) is not this process (${pid})` };
  }
  const n = Number(count);
  if (n === 0) return { kind: 'none' };
  const names = env.LISTEN_FDNAMES === undefined ? [] : env.LISTEN_FDNAMES.split(':');
  const fds: ListenFd[] = [];
  for (let i = 0; i < n; i++) fds.push({ fd: SD_LISTEN_FDS_START + i, name: names[i] ?? 'unknown' });
  return { kind: 'fds', fds };
}

/** Reads and removes the variables, so that no child process ever inherits them. */
export function takeListenFds(env: NodeJS.ProcessEnv = process.env, pid = process.pid): ListenFdsResult {
  const result = parseListenFds(env, pid);
  delete env.LISTEN_FDS;
  delete env.LISTEN_PID;
  delete env.LISTEN_FDNAMES;
  return result;
}
