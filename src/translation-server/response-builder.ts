// Responses to LOGIN requests (spec/translation-protocol.md §3), as bytes. Pure.
//
// A success carries the account in the order lukko's parser (src/translation/response.ts)
// and the C++ original accept: response-wide packets first, then the account's own child
// options, then one SERVICE partition after another, each complete in itself (lukko's
// partitions inherit nothing, so UID_GID and HOME are repeated in every one).

import { TranslationCommand as C } from '../translation/commands.ts';
import { encodePacket, encodeStringPacket, encodeU16, encodeU32 } from '../translation/codec.ts';
import type { Account, ProcessSettings } from './user-db.ts';

/** The version byte the libcommon C++ server puts into BEGIN. */
export const PROTOCOL_VERSION = 3;

const BEGIN = encodePacket(C.BEGIN, Buffer.from([PROTOCOL_VERSION]));
const END = encodePacket(C.END);

/** A rejection: BEGIN, STATUS, MESSAGE, END. lukko refuses the login for any non-zero STATUS. */
export function buildRejection(status: number, message: string): Buffer {
  return Buffer.concat([BEGIN, encodePacket(C.STATUS, encodeU16(status)), encodeStringPacket(C.MESSAGE, message), END]);
}

export const NO_SUCH_USER = buildRejection(404, 'No such user');
export const WRONG_PASSWORD = buildRejection(403, 'Wrong password');
export const NO_PASSWORD_SET = buildRejection(403, 'No password set for this account');

const MOUNT_PACKET = {
  bind_mount: C.BIND_MOUNT,
  bind_mount_rw: C.BIND_MOUNT_RW,
  bind_mount_exec: C.BIND_MOUNT_EXEC,
  bind_mount_rw_exec: C.BIND_MOUNT_RW_EXEC,
  bind_mount_file: C.BIND_MOUNT_FILE,
  bind_mount_file_exec: C.BIND_MOUNT_FILE_EXEC,
} as const;

const nul = (a: string, b: string): Buffer => Buffer.from(`${a}\0${b}`, 'utf8');

/** The child-option packets of one process, in an order every ordering rule is happy with. */
export function processPackets(s: ProcessSettings): Buffer[] {
  const out: Buffer[] = [];
  const str = (command: number, value: string): void => void out.push(encodeStringPacket(command, value));
  const flag = (command: number, on: boolean): void => void (on && out.push(encodePacket(command)));

  out.push(encodePacket(C.UID_GID, encodeU32(s.uid, s.gid, ...s.groups)));
  str(C.HOME, s.home); // before MOUNT_HOME, which needs it
  if (s.shell !== undefined) str(C.SHELL, s.shell);
  if (s.execute !== undefined) str(C.EXECUTE, s.execute);
  if (s.chdir !== undefined) str(C.CHDIR, s.chdir);
  if (s.umask !== undefined) out.push(encodePacket(C.UMASK, encodeU16(s.umask)));
  if (s.rlimits !== undefined) str(C.RLIMITS, s.rlimits);
  flag(C.NO_NEW_PRIVS, s.noNewPrivs);
  for (const v of s.setenv) str(C.SETENV, v);
  for (const t of s.childTags) str(C.CHILD_TAG, t);

  flag(C.USER_NAMESPACE, s.userNamespace);
  if (s.mappedUid !== undefined) out.push(encodePacket(C.MAPPED_UID_GID, encodeU32(s.mappedUid))); // after UID_GID and USER_NAMESPACE
  flag(C.PID_NAMESPACE, s.pidNamespace);
  flag(C.NETWORK_NAMESPACE, s.networkNamespace);
  if (s.networkNamespaceName !== undefined) str(C.NETWORK_NAMESPACE_NAME, s.networkNamespaceName);
  flag(C.IPC_NAMESPACE, s.ipcNamespace);
  flag(C.CGROUP_NAMESPACE, s.cgroupNamespace);
  if (s.utsHostname !== undefined) str(C.UTS_NAMESPACE, s.utsHostname);
  flag(C.MOUNT_ROOT_TMPFS, s.mountRootTmpfs); // before MOUNT_DEV, which needs it
  if (s.pivotRoot !== undefined) str(C.PIVOT_ROOT, s.pivotRoot);
  flag(C.MOUNT_PROC, s.mountProc);
  flag(C.MOUNT_DEV, s.mountDev);
  if (s.mountHome !== undefined) str(C.MOUNT_HOME, s.mountHome);
  if (s.mountTmpTmpfs !== undefined) out.push(encodeStringPacket(C.MOUNT_TMP_TMPFS, s.mountTmpTmpfs));
  flag(C.MOUNT_TMP_TMPFS_EXEC, s.mountTmpTmpfsExec);
  for (const m of s.bindMounts) {
    out.push(encodePacket(MOUNT_PACKET[m.key], nul(m.source, m.target)));
    flag(C.OPTIONAL, m.optional); // right after the mount it marks
  }
  for (const m of s.otherMounts) {
    if (m.key === 'write_file') out.push(encodePacket(C.WRITE_FILE, nul(m.path, m.contents)));
    else if (m.key === 'symlink') out.push(encodePacket(C.SYMLINK, nul(m.target, m.linkPath)));
    else str(m.key === 'mount_tmpfs' ? C.MOUNT_TMPFS : C.MOUNT_EMPTY, m.target);
  }
  flag(C.TMPFS_DIRS_READABLE, s.tmpfsDirsReadable); // after the mounts it needs
  if (s.chroot !== undefined) str(C.CHROOT, s.chroot);
  if (s.cgroup !== undefined) str(C.CGROUP, s.cgroup);
  for (const v of s.cgroupSet) str(C.CGROUP_SET, v);
  return out;
}

/**
 * The success response for `account`: the same bytes for an account lookup (no PASSWORD)
 * and for a correct password. Throws RangeError when a value does not fit in a packet
 * (the user file's checks keep every value far below that).
 */
export function buildAccountResponse(account: Account): Buffer {
  const out: Buffer[] = [BEGIN];
  if (account.sftpOnly) out.push(encodeStringPacket(C.TOKEN, 'sftp-only'));
  if (account.noPassword !== undefined) out.push(encodeStringPacket(C.NO_PASSWORD, account.noPassword === 'sftp' ? 'sftp' : ''));
  if (account.authorizedKeys.length > 0) out.push(encodeStringPacket(C.AUTHORIZED_KEYS, account.authorizedKeys.map((k) => `${k}\n`).join('')));
  if (account.noHomeAuthorizedKeys) out.push(encodePacket(C.NO_HOME_AUTHORIZED_KEYS));
  out.push(...processPackets(account.settings));
  for (const partition of account.partitions) {
    out.push(encodeStringPacket(C.SERVICE, partition.name), ...processPackets(partition.settings));
  }
  out.push(END);
  return Buffer.concat(out);
}
