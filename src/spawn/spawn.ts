// Makes a user process from a SpawnDescription, through lukko-exec (see lukko-exec.c for
// why a helper at all). Pipes for plain sessions, a pty from node-pty for terminals. Each
// process leads its own process group, so ending a session reaches what it started.
import { spawn as spawnChild } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { RLIM_INFINITY, type Rlimits } from '../translation/rlimits.ts';
import type { SpawnDescription, SpawnIsolation } from './description.ts';
import { builtHelper } from './helper-path.ts';
import { PtyInput } from './pty-input.ts';
import { termiosArgs } from './termios.ts';

export class SpawnRefused extends Error {}

export interface ExitInfo {
  code: number | null;
  signal: string | null; // without "SIG", as RFC 4254 6.10 wants it
  coreDumped: boolean;
}

export interface UserProcess {
  pid: number;
  /** The process's input: its stdin pipe, or the pty's master side (with backpressure). */
  stdin: Writable;
  /** Its output: the stdout pipe, or the pty's master side (stdout and stderr in one). */
  stdout: Readable;
  /** Its stderr pipe; none with a pty. */
  stderr?: Readable;
  // Called once the process has exited and its output is fully read.
  onExit(cb: (info: ExitInfo) => void): void;
  // group: the whole process group (ending a session); else only the process (a client's signal).
  kill(signal: NodeJS.Signals, group?: boolean): void;
  resize(cols: number, rows: number): void;
}

/** dist/spawn/lukko-exec (LUKKO_EXEC overrides). */
export function lukkoExecPath(): string {
  const path = builtHelper('spawn', 'lukko-exec', process.env.LUKKO_EXEC);
  if (path === undefined) throw new SpawnRefused('lukko-exec helper not found (run npm run build)');
  return path;
}

const SIGNAL_NAMES = new Map<number, string>(
  Object.entries(osConstants.signals).map(([name, num]) => [num, name.replace(/^SIG/, '')]),
);

let ttyGid: number | undefined;
function ttyGroup(): number {
  if (ttyGid !== undefined) return ttyGid;
  const line = readFileSync('/etc/group', 'utf8').split('\n').find((l) => l.startsWith('tty:'));
  ttyGid = line ? Number(line.split(':')[2]) : 5;
  return ttyGid;
}

function rlimitValue(resource: string, v: bigint | undefined): string {
  if (v === undefined) return '-'; // keep what the process inherits
  if (v < 0n || v > RLIM_INFINITY) throw new SpawnRefused(`rlimit ${resource}: ${v} out of range`);
  return v === RLIM_INFINITY ? 'inf' : v.toString();
}

/** `--rlimit RES=SOFT:HARD` per resource, sorted by name so the command line is deterministic. */
function rlimitArgs(rlimits: Rlimits): string[] {
  const a: string[] = [];
  for (const resource of [...rlimits.keys()].sort()) {
    const { soft, hard } = rlimits.get(resource)!;
    if (soft === undefined && hard === undefined) continue; // nothing to change
    a.push('--rlimit', `${resource}=${rlimitValue(resource, soft)}:${rlimitValue(resource, hard)}`);
  }
  return a;
}

/** A value lukko-exec takes as one argv element: C strings end at NUL. */
function cString(what: string, v: string): string {
  if (v.includes('\0')) throw new SpawnRefused(`${what}: contains NUL`);
  return v;
}

function absolutePath(what: string, v: string): string {
  if (!v.startsWith('/')) throw new SpawnRefused(`${what}: ${JSON.stringify(v)} is not absolute`);
  return cString(what, v);
}

/** The isolation part of the lukko-exec command line. Needs root: namespaces and mounts. */
export function isolationArgs(iso: SpawnIsolation, desc: Pick<SpawnDescription, 'uid'>): string[] {
  const a: string[] = [];
  if (iso.userNamespace) {
    const { uid, gid } = iso.userNamespace;
    if (uid === 0 || desc.uid === 0) throw new SpawnRefused('a user namespace for root is not offered');
    a.push('--userns', `${uid}:${gid}`);
  }
  if (iso.pidNamespace) a.push('--pid-ns');
  if (iso.network?.kind === 'new') a.push('--net-ns');
  if (iso.network?.kind === 'named') {
    if (!/^[A-Za-z0-9_-]+$/.test(iso.network.name)) throw new SpawnRefused(`bad network namespace name ${JSON.stringify(iso.network.name)}`);
    a.push('--netns-name', iso.network.name);
  }
  if (iso.ipcNamespace) a.push('--ipc-ns');
  if (iso.cgroupNamespace) a.push('--cgroup-ns');
  if (iso.hostname !== undefined) a.push('--hostname', cString('hostname', iso.hostname));
  if (iso.root?.kind === 'tmpfs') a.push('--root-tmpfs');
  if (iso.root?.kind === 'pivot') a.push('--pivot-root', absolutePath('PIVOT_ROOT', iso.root.path));
  if (iso.mountProc) a.push('--mount-proc');
  if (iso.mountDev) a.push('--mount-dev');
  if (iso.tmp) {
    if (!/^[A-Za-z0-9_=,.:+-]*$/.test(iso.tmp.options)) throw new SpawnRefused(`bad /tmp tmpfs options ${JSON.stringify(iso.tmp.options)}`);
    a.push('--tmp', iso.tmp.options);
    if (iso.tmp.exec) a.push('--tmp-exec');
  }
  if (iso.dirsReadable) a.push('--dirs-readable');
  for (const m of iso.mounts) {
    switch (m.kind) {
      case 'bind': {
        const flags = [m.writable && 'rw', m.exec && 'exec', m.file && 'file', m.optional && 'optional', m.inContainer && 'container'].filter(Boolean);
        a.push('--bind', flags.length ? flags.join(',') : '-', absolutePath('bind source', m.source), absolutePath('bind target', m.target));
        break;
      }
      case 'tmpfs':
        a.push('--tmpfs', m.writable ? 'rw' : 'ro', absolutePath('tmpfs', m.target));
        break;
      case 'write-file':
        a.push('--write-file', m.optional ? 'optional' : '-', absolutePath('WRITE_FILE', m.path), cString('WRITE_FILE', m.contents));
        break;
      case 'symlink':
        if (m.target === '') throw new SpawnRefused('SYMLINK: empty target');
        a.push('--symlink', cString('SYMLINK', m.target), absolutePath('SYMLINK', m.linkPath));
        break;
    }
  }
  if (iso.chroot !== undefined) a.push('--chroot', absolutePath('CHROOT', iso.chroot));
  return a;
}

/**
 * Pure: the lukko-exec command line for a description, as `[helper args..., '--', file, args...]`.
 * umask, rlimits and noNewPrivs apply without root as well (lowering a limit, setting the
 * umask and no_new_privs need no privilege; lukko-exec refuses what it cannot do).
 * Throws SpawnRefused for a value lukko-exec could not be given.
 */
export function execArgs(desc: SpawnDescription, opts: { asRoot: boolean; ttyGid?: number }): string[] {
  const a: string[] = [];
  if (opts.asRoot) {
    a.push('--uid', String(desc.uid), '--gid', String(desc.gid));
    if (desc.groups === 'nss') a.push('--init-groups', desc.user);
    else a.push('--groups', desc.groups.join(','));
  }
  if (opts.asRoot && desc.passwdEntry !== undefined) a.push('--passwd-line', desc.passwdEntry);
  a.push('--chdir', desc.cwd, '--argv0', desc.argv0);
  if (desc.pty) {
    a.push('--tty', String(opts.ttyGid ?? 5));
    a.push(...termiosArgs(desc.pty.modes));
  }
  if (desc.umask !== undefined) {
    if (!Number.isInteger(desc.umask) || desc.umask < 0 || desc.umask > 0o777) throw new SpawnRefused(`bad umask ${desc.umask}`);
    a.push('--umask', desc.umask.toString(8).padStart(4, '0'));
  }
  if (desc.rlimits) a.push(...rlimitArgs(desc.rlimits));
  if (desc.noNewPrivs) a.push('--no-new-privs');
  if (desc.isolation) {
    if (!opts.asRoot) throw new SpawnRefused('namespaces and mounts need lukko to run as root');
    a.push(...isolationArgs(desc.isolation, desc));
  }
  if (desc.execFromHost) a.push('--exec-host');
  a.push('--', desc.file, ...desc.args);
  return a;
}

function checkIdentity(desc: SpawnDescription): boolean {
  const asRoot = process.getuid?.() === 0;
  // Without root we cannot change identity; only the server's own user can log in
  // (`npm start` as a developer). Anything else fails closed.
  if (!asRoot && desc.uid !== process.getuid?.()) {
    throw new SpawnRefused(`cannot run as uid ${desc.uid}: lukko is not running as root`);
  }
  return asRoot;
}

export async function spawnUserProcess(desc: SpawnDescription): Promise<UserProcess> {
  const asRoot = checkIdentity(desc);
  const helper = lukkoExecPath();
  const env = Object.fromEntries(desc.env);
  if (desc.pty) {
    const args = execArgs(desc, { asRoot, ttyGid: ttyGroup() });
    const pty = await import('node-pty');
    const p = pty.spawn(helper, args, {
      name: desc.pty.term,
      cols: desc.pty.cols || 80,
      rows: desc.pty.rows || 24,
      cwd: '/',
      env,
      encoding: null, // Buffers: a terminal is a byte stream, not UTF-8
    });
    let exitCb: ((i: ExitInfo) => void) | undefined;
    let exited: ExitInfo | undefined;
    p.onExit(({ exitCode, signal }) => {
      exited = { code: signal ? null : exitCode, signal: signal ? (SIGNAL_NAMES.get(signal) ?? 'KILL') : null, coreDumped: false };
      exitCb?.(exited);
    });
    // The master side as node-pty reads it (its data events and pause() are this stream's);
    // node-pty closes the fd when it destroys the stream (pinned node-pty 1.1.0).
    const { fd, _socket: master } = p as unknown as { fd: number; _socket?: Readable };
    if (!master || typeof fd !== 'number') throw new Error('node-pty: no master fd to write to');
    return {
      pid: p.pid,
      stdin: new PtyInput(fd, () => !master.destroyed),
      stdout: master,
      onExit(cb) {
        exitCb = cb;
        if (exited) cb(exited);
      },
      kill(signal, group = true) {
        try {
          process.kill(group ? -p.pid : p.pid, signal); // forkpty made it a session (and group) leader
        } catch {
          /* already gone */
        }
      },
      resize(cols, rows) {
        try {
          p.resize(cols || 80, rows || 24);
        } catch {
          /* the pty may be closing */
        }
      },
    };
  }
  const args = execArgs(desc, { asRoot });
  const child = spawnChild(helper, args, {
    cwd: '/',
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true, // own session and process group: kill(-pid) reaches its children
  });
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  let exitCb: ((i: ExitInfo) => void) | undefined;
  let exited: ExitInfo | undefined;
  child.once('close', (code, signal) => {
    exited = { code, signal: signal ? signal.replace(/^SIG/, '') : null, coreDumped: false };
    exitCb?.(exited);
  });
  return {
    pid: child.pid!,
    stdin: child.stdin!,
    stdout: child.stdout!,
    stderr: child.stderr!,
    onExit(cb) {
      exitCb = cb;
      if (exited) cb(exited);
    },
    kill(signal, group = true) {
      try {
        process.kill(group ? -child.pid! : child.pid!, signal);
      } catch {
        /* already gone */
      }
    },
    resize() {},
  };
}
