import type { Rlimits } from '../translation/rlimits.ts';

// The spawn description (design.md step 7): everything needed to start one user process,
// as plain data. Sessions build it from Account + Policy + request; the spawner makes the
// process with exactly this, or refuses. Later issues add isolation fields here; a field
// the spawner cannot enforce must make it refuse, never be dropped.

export interface PtySpec {
  term: string;
  cols: number;
  rows: number;
  width: number;
  height: number;
  modes: Record<string, number>;
}

export interface SpawnDescription {
  file: string; // executed with execvp(3)
  argv0: string; // e.g. "-bash" for a login shell
  args: string[];
  env: [string, string][]; // in order; names unique
  cwd: string;
  uid: number;
  gid: number;
  groups: number[] | 'nss'; // 'nss': initgroups(3) for `user`
  user: string;
  pty?: PtySpec;
  /** umask(2) for the process; absent: inherited (022 from the service). */
  umask?: number;
  /** setrlimit(2) per resource; an unset side (soft or hard) keeps the inherited value. */
  rlimits?: Rlimits;
  /** PR_SET_NO_NEW_PRIVS before exec: setuid binaries cannot raise privileges. */
  noNewPrivs?: boolean;
  /**
   * A passwd(5) line for an account NSS does not know (a translation server's): the process
   * sees it in its own /etc/passwd, so programs that look themselves up work.
   */
  passwdEntry?: string;
}
