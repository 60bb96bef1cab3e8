import type { Rlimits } from '../translation/rlimits.ts';

// The spawn description (design.md step 7): everything needed to start one user process,
// as plain data. Sessions build it from Account + Policy + request; the spawner makes the
// process with exactly this, or refuses. A field the spawner cannot enforce must make it
// refuse, never be dropped.

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
  /** Namespaces, mounts, chroot. */
  isolation?: SpawnIsolation;
  /**
   * `file` is a host path opened before any mount changes and run from there, so a jail
   * needs no copy of it (an sftp-server, an rsync or git partition's program).
   */
  execFromHost?: boolean;
}

/** One mount inside the process's mount namespace, in the order they are made. */
export type SpawnMount =
  | {
    kind: 'bind';
    /** Host path, or a path in the new root with `inContainer`. */
    source: string;
    target: string;
    inContainer: boolean;
    writable: boolean;
    exec: boolean;
    /** A single regular file. */
    file: boolean;
    /** A missing source skips the mount instead of refusing the process. */
    optional: boolean;
  }
  | { kind: 'tmpfs'; target: string; writable: boolean }
  | { kind: 'write-file'; path: string; contents: string; optional: boolean }
  | { kind: 'symlink'; target: string; linkPath: string };

/**
 * The container a process runs in (docs/design.md, "Session isolation"). Absent: the
 * host's namespaces, as the server itself sees them.
 */
export interface SpawnIsolation {
  /** A user namespace in which the process has these ids (mapped to `uid`/`gid`). */
  userNamespace?: { uid: number; gid: number };
  pidNamespace: boolean;
  /** A new network namespace with only `lo`, or an `ip netns` one by name. */
  network?: { kind: 'new' } | { kind: 'named'; name: string };
  ipcNamespace: boolean;
  cgroupNamespace: boolean;
  /** A UTS namespace with this host name. */
  hostname?: string;
  /** A new `/`: an empty tmpfs (read-only once set up) or a host directory. */
  root?: { kind: 'tmpfs' } | { kind: 'pivot'; path: string };
  mountProc: boolean;
  mountDev: boolean;
  /** tmpfs on /tmp with these options ('' for the defaults). */
  tmp?: { options: string; exec: boolean };
  /** Directories lukko creates in a tmpfs root are 0755 instead of 0711. */
  dirsReadable: boolean;
  mounts: SpawnMount[];
  chroot?: string;
}
