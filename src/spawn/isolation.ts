// Pure: a translation response's isolation (plus `home-read-only` from the key that let the
// user in) → the container a session's process runs in, and where host paths such as HOME
// appear inside it (spec/translation-protocol.md §3.4, §4.4).
import type { Isolation } from '../translation/execute-options.ts';
import type { SpawnIsolation, SpawnMount } from './description.ts';

function emptyIsolation(): SpawnIsolation {
  return { pidNamespace: false, ipcNamespace: false, cgroupNamespace: false, mountProc: false, mountDev: false, dirsReadable: false, mounts: [] };
}

/** `path` equals `dir` or lies below it. */
export function isUnder(path: string, dir: string): boolean {
  const d = dir.endsWith('/') ? dir.slice(0, -1) : dir;
  return path === d || path.startsWith(`${d}/`) || d === '';
}

/**
 * Where a host path appears in the container: through the last directory bind mount whose
 * source holds it (a later mount covers an earlier one), else unchanged when the container
 * keeps the host's tree, else nowhere (undefined). CHROOT then strips its directory.
 */
export function containerPath(hostPath: string, iso: SpawnIsolation | undefined): string | undefined {
  if (iso === undefined) return hostPath;
  let inside: string | undefined = iso.root === undefined ? hostPath : undefined;
  for (const m of iso.mounts) {
    if (m.kind !== 'bind' || m.inContainer || m.file) continue;
    if (isUnder(hostPath, m.source)) {
      const rest = hostPath.slice(m.source.replace(/\/$/, '').length);
      inside = (m.target.replace(/\/$/, '') + rest) || '/';
    }
  }
  if (inside !== undefined && iso.chroot !== undefined) {
    if (!isUnder(inside, iso.chroot)) return undefined;
    inside = inside.slice(iso.chroot.replace(/\/$/, '').length) || '/';
  }
  return inside;
}

function fromTranslation(iso: Isolation, uid: number, gid: number): SpawnIsolation {
  const s = emptyIsolation();
  if (iso.userNamespace) s.userNamespace = { uid: iso.mappedUid ?? uid, gid };
  s.pidNamespace = iso.pidNamespace?.kind === 'new';
  if (iso.networkNamespace) s.network = iso.networkNamespace.kind === 'new' ? { kind: 'new' } : { kind: 'named', name: iso.networkNamespace.name };
  s.ipcNamespace = iso.ipcNamespace;
  s.cgroupNamespace = iso.cgroupNamespace;
  if (iso.utsHostname !== undefined) s.hostname = iso.utsHostname;
  if (iso.mountRootTmpfs) s.root = { kind: 'tmpfs' };
  else if (iso.pivotRoot !== undefined) s.root = { kind: 'pivot', path: iso.pivotRoot };
  s.mountProc = iso.mountProc;
  s.mountDev = iso.mountDev;
  if (iso.mountTmpTmpfs !== undefined) s.tmp = { options: iso.mountTmpTmpfs, exec: iso.mountTmpTmpfsExec };
  s.dirsReadable = iso.tmpfsDirsReadable;
  for (const m of iso.mounts) {
    let out: SpawnMount;
    switch (m.kind) {
      case 'bind':
        out = { kind: 'bind', source: m.source, target: m.target, inContainer: m.sourceIn === 'container', writable: m.writable, exec: m.exec, file: m.file, optional: m.optional };
        break;
      case 'home':
        out = { kind: 'bind', source: m.source, target: m.target, inContainer: false, writable: true, exec: true, file: false, optional: m.optional };
        break;
      case 'tmpfs':
        out = { kind: 'tmpfs', target: m.target, writable: m.writable };
        break;
      case 'write-file':
        out = { kind: 'write-file', path: m.path, contents: m.contents, optional: m.optional };
        break;
      case 'symlink':
        out = { kind: 'symlink', target: m.target, linkPath: m.linkPath };
        break;
      case 'named-tmpfs':
        // Never enforced (login.ts refuses it); reaching here is a bug, so fail closed.
        throw new Error('MOUNT_NAMED_TMPFS cannot be enforced');
    }
    s.mounts.push(out);
  }
  if (iso.chroot !== undefined) s.chroot = iso.chroot;
  return s;
}

/**
 * `home-read-only`: every bind mount of the home or of something in it becomes read-only,
 * and where the home is still reachable through a writable mount that holds it (the host's
 * own tree, or a parent directory bound writable), a read-only bind of the home itself goes
 * right on top of that one, before any mount below it.
 */
function homeReadOnly(s: SpawnIsolation, home: string): void {
  const ro = (m: SpawnMount): SpawnMount => (m.kind === 'bind' && !m.inContainer && isUnder(m.source, home) ? { ...m, writable: false } : m);
  s.mounts = s.mounts.map(ro);
  let coverAt = s.root === undefined ? -1 : undefined; // -1: the host's tree, before all mounts
  s.mounts.forEach((m, i) => {
    if (m.kind === 'bind' && !m.inContainer && !m.file && isUnder(home, m.source) && m.source.replace(/\/$/, '') !== home.replace(/\/$/, '')) {
      coverAt = m.writable ? i : undefined;
    } else if (m.kind === 'bind' && !m.inContainer && !m.file && m.source.replace(/\/$/, '') === home.replace(/\/$/, '')) {
      coverAt = undefined; // the home's own bind, read-only by now, covers the rest
    }
  });
  if (coverAt === undefined) return;
  // A mount target is a path before CHROOT, so the chroot does not apply here.
  const { chroot: _chroot, ...beforeChroot } = s;
  const target = containerPath(home, { ...beforeChroot, mounts: s.mounts.slice(0, coverAt + 1) }) ?? home;
  s.mounts.splice(coverAt + 1, 0, { kind: 'bind', source: home, target, inContainer: false, writable: false, exec: true, file: false, optional: false });
}

/**
 * The process's container, or undefined when it runs in the host's namespaces as they are.
 * `uid`/`gid` are the account's (a user namespace maps them to MAPPED_UID_GID or itself).
 */
export function spawnIsolation(opts: { isolation?: Isolation; home: string; uid: number; gid: number; homeReadOnly: boolean }): SpawnIsolation | undefined {
  const s = opts.isolation !== undefined && opts.isolation.packets.length > 0 ? fromTranslation(opts.isolation, opts.uid, opts.gid) : undefined;
  if (!opts.homeReadOnly) return s;
  const r = s ?? emptyIsolation();
  homeReadOnly(r, opts.home);
  return r;
}
