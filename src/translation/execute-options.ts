// How one process must be run, as a translation response describes it: the top level of a
// response, or one SERVICE partition (spec/translation-protocol.md §3.1, §3.3-3.4).
//
// This is the seam to the spawn description. The fields outside `isolation` are the ones a
// plain spawner can apply (credentials, paths, environment, umask, limits). Everything in
// `isolation` is a security setting the spawner must enforce or, until it can, refuse:
// `isolation.packets` names every such packet received, so a refusal can say which one.

import type { TranslationCommandName } from './commands.ts';
import type { Rlimits } from './rlimits.ts';

export interface UidGid {
  uid: number;
  gid: number;
  /**
   * Supplementary groups. The original ends the list at the first 0 (its "unset" marker),
   * so groups after a 0 are dropped here as they are there.
   */
  groups: number[];
}

/** Where a bind-mount source is looked up: the host's mount namespace or the new container. */
export type MountSourceIn = 'host' | 'container';

export type Mount =
  | {
    kind: 'bind';
    packet: 'BIND_MOUNT' | 'BIND_MOUNT_RW' | 'BIND_MOUNT_EXEC' | 'BIND_MOUNT_RW_EXEC' | 'BIND_MOUNT_FILE' | 'BIND_MOUNT_FILE_EXEC';
    source: string; // absolute
    sourceIn: MountSourceIn;
    target: string;
    writable: boolean;
    exec: boolean;
    file: boolean; // a single regular file instead of a directory
    optional: boolean; // OPTIONAL: a missing source is not an error
  }
  | { kind: 'home'; packet: 'MOUNT_HOME'; source: string; target: string; optional: boolean } // HOME, writable + exec
  | { kind: 'tmpfs'; packet: 'MOUNT_TMPFS' | 'MOUNT_EMPTY'; target: string; writable: boolean; optional: boolean }
  | { kind: 'named-tmpfs'; packet: 'MOUNT_NAMED_TMPFS'; name: string; target: string; optional: boolean }
  | { kind: 'write-file'; packet: 'WRITE_FILE'; path: string; contents: string; optional: boolean }
  | { kind: 'symlink'; packet: 'SYMLINK'; target: string; linkPath: string; optional: boolean };

export interface Isolation {
  /** Every isolation packet received for these options, in order (repeats kept). */
  packets: TranslationCommandName[];

  userNamespace: boolean;
  pidNamespace?: { kind: 'new' } | { kind: 'named'; name: string };
  networkNamespace?: { kind: 'new' } | { kind: 'named'; name: string };
  ipcNamespace: boolean;
  cgroupNamespace: boolean;
  utsHostname?: string;

  pivotRoot?: string;
  mountRootTmpfs: boolean;
  mountProc: boolean;
  mountDev: boolean;
  /** MOUNT_TMP_TMPFS: tmpfs options for /tmp, '' for the defaults. */
  mountTmpTmpfs?: string;
  mountTmpTmpfsExec: boolean;
  tmpfsDirsReadable: boolean;
  /** MOUNT_LISTEN_STREAM: raw payload, `path\0…`. */
  mountListenStream?: Buffer;
  mounts: Mount[];
  chroot?: string;

  cgroup?: string;
  cgroupSet: { name: string; value: string }[];
  cgroupXattr: { name: string; value: string }[];

  realUidGid?: { uid: number; gid?: number };
  mappedUid?: number;
  mappedRealUid?: number;
  maxInotify?: { instances: number; watches: number };

  stderrPath?: { path: string; jailed: boolean };
  stderrNull: boolean;
  stderrPond: boolean;
  sigkill: boolean;
  forbidUserNs: boolean;
  forbidMulticast: boolean;
  forbidBind: boolean;
  allowPtrace: boolean;
  capSysResource: boolean;
}

export interface ExecuteOptions {
  uidGid?: UidGid;
  /** Host path: $HOME, default cwd, base of ~/.ssh/authorized_keys. */
  home?: string;
  shell?: string;
  /** EXECUTE: the program (absolute host path). */
  execute?: string;
  /** APPEND: arguments after EXECUTE. The original parses them but none of its spawn paths uses them. */
  args: string[];
  /** PROCESS_NAME: argv[0] of the spawned program. */
  processName?: string;
  chdir?: string;
  /** SETENV and PAIR, `NAME=VALUE`, in the order received. */
  setenv: string[];
  umask?: number;
  rlimits?: Rlimits;
  noNewPrivs: boolean;
  /** CHILD_TAG values in order (the original joins them with NUL). */
  childTags: string[];
  isolation: Isolation;
}

export function emptyExecuteOptions(): ExecuteOptions {
  return {
    args: [],
    setenv: [],
    noNewPrivs: false,
    childTags: [],
    isolation: {
      packets: [],
      userNamespace: false,
      ipcNamespace: false,
      cgroupNamespace: false,
      mountRootTmpfs: false,
      mountProc: false,
      mountDev: false,
      mountTmpTmpfsExec: false,
      tmpfsDirsReadable: false,
      mounts: [],
      cgroupSet: [],
      cgroupXattr: [],
      stderrNull: false,
      stderrPond: false,
      sigkill: false,
      forbidUserNs: false,
      forbidMulticast: false,
      forbidBind: false,
      allowPtrace: false,
      capSysResource: false,
    },
  };
}
