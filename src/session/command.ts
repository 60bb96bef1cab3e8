// Pure: Account + Policy + a session request → SpawnDescription. No I/O here, so every rule
// about forced commands, argv[0] and the environment is tested without a process.
import { basename } from 'node:path';
import type { Account } from '../auth/account.ts';
import type { Policy } from '../auth/policy.ts';
import type { PtySpec, SpawnDescription, SpawnIsolation } from '../spawn/description.ts';
import { containerPath, spawnIsolation } from '../spawn/isolation.ts';

export type SessionRequest =
  | { kind: 'shell' }
  | { kind: 'exec'; command: string }
  | { kind: 'subsystem'; name: string; command: string } // command: how the subsystem is run
  // A program a translation server set up (an sftp partition's EXECUTE, rsync, git), run
  // directly: `command` is what the client asked for, for logs and SSH_ORIGINAL_COMMAND.
  | { kind: 'program'; name: string; file: string; args: string[]; command: string };

export interface Peer {
  remoteIp: string;
  remotePort: number;
  localIp: string;
  localPort: number;
}

export const DEFAULT_PATH = '/usr/local/bin:/usr/bin:/bin';
export const ROOT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

// Client `env` requests accepted, as OpenSSH's Debian default `AcceptEnv LANG LC_*`: the
// rest (LD_PRELOAD, PATH, BASH_ENV …) could change what a forced command does.
export function acceptedClientEnv(name: string): boolean {
  return name === 'LANG' || /^LC_[A-Z_]+$/.test(name);
}

/** IPv4-mapped IPv6 addresses are shown as IPv4, as OpenSSH does. */
export function plainIp(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

// Set by lukko from what it knows for certain; a translation server's SETENV cannot replace
// them (in the original they come first, and the first of two duplicates is what getenv sees).
const SERVER_VARIABLES = new Set(['USER', 'LOGNAME', 'SHELL', 'SSH_CLIENT', 'SSH_CONNECTION', 'SSH_ORIGINAL_COMMAND', 'SSH_TTY', 'SSH_AUTH_SOCK', 'TERM']);

export function buildEnvironment(opts: {
  account: Account;
  peer: Peer;
  clientEnv: [string, string][];
  pty?: PtySpec;
  originalCommand?: string;
  agentSocket?: string;
  /** HOME as the process sees it (in its container); null: it has none there. */
  home?: string | null;
}): [string, string][] {
  const { account, peer } = opts;
  const env = new Map<string, string>();
  env.set('USER', account.name);
  env.set('LOGNAME', account.name);
  const home = opts.home === undefined ? account.home : opts.home;
  if (home !== null) env.set('HOME', home);
  env.set('SHELL', account.shell);
  env.set('PATH', account.uid === 0 ? ROOT_PATH : DEFAULT_PATH);
  env.set('MAIL', `/var/mail/${account.name}`);
  for (const [k, v] of opts.clientEnv) if (acceptedClientEnv(k)) env.set(k, v);
  // The translation server's variables win over defaults and the client's LANG/LC_*.
  for (const pair of account.spawn?.setenv ?? []) {
    const eq = pair.indexOf('=');
    const name = pair.slice(0, eq);
    if (eq > 0 && !SERVER_VARIABLES.has(name)) env.set(name, pair.slice(eq + 1));
  }
  // After the client's variables, so none of these can be overridden.
  if (opts.pty) env.set('TERM', opts.pty.term || 'dumb');
  const rip = plainIp(peer.remoteIp);
  env.set('SSH_CLIENT', `${rip} ${peer.remotePort} ${peer.localPort}`);
  env.set('SSH_CONNECTION', `${rip} ${peer.remotePort} ${plainIp(peer.localIp)} ${peer.localPort}`);
  if (opts.originalCommand !== undefined) env.set('SSH_ORIGINAL_COMMAND', opts.originalCommand);
  if (opts.agentSocket !== undefined) env.set('SSH_AUTH_SOCK', opts.agentSocket);
  // SSH_TTY is set by lukko-exec, which is the first to know the pty's name.
  return [...env];
}

/**
 * The passwd(5) line of a translated account, as the process sees itself (in a user
 * namespace, its ids there; in a container, its home there); none when a field cannot be
 * written as one.
 */
export function passwdEntry(account: Account, iso?: SpawnIsolation): { passwdEntry?: string } {
  const ids = iso?.userNamespace ?? { uid: account.uid, gid: account.gid };
  const home = containerPath(account.home, iso) ?? '/';
  const fields = [account.name, 'x', String(ids.uid), String(ids.gid), '', home, account.shell];
  return fields.some((f) => /[:\n\0]/.test(f)) ? {} : { passwdEntry: fields.join(':') };
}

/**
 * What runs. As OpenSSH: a command (forced or requested) runs as `<shell> -c <command>`
 * with argv[0] the shell's base name; a shell request runs the login shell with argv[0]
 * "-<name>"; a forced command replaces exec, shell and subsystem alike, and
 * SSH_ORIGINAL_COMMAND carries what the client asked for (absent for a shell request).
 */
export function describeSession(opts: {
  account: Account;
  policy: Policy;
  request: SessionRequest;
  peer: Peer;
  clientEnv: [string, string][];
  pty?: PtySpec;
  agentSocket?: string;
}): SpawnDescription {
  const { account, policy, request } = opts;
  const spawn = account.spawn;
  const shell = account.shell;
  const name = basename(shell);
  let command: string | undefined;
  let originalCommand: string | undefined;
  if (policy.forcedCommand !== undefined) {
    command = policy.forcedCommand;
    if (request.kind !== 'shell') originalCommand = request.command;
  } else if (request.kind !== 'shell') {
    command = request.command;
  }
  const isolation = spawnIsolation({ isolation: spawn?.isolation, home: account.home, uid: account.uid, gid: account.gid, homeReadOnly: policy.homeReadOnly });
  // In a container, HOME and the working directory are where the home appears there; a
  // new root without the home in it has neither (the original's rule).
  const home = containerPath(account.home, isolation);
  const env = buildEnvironment({ account, peer: opts.peer, clientEnv: opts.clientEnv, pty: opts.pty, originalCommand, home: home ?? null, ...(opts.agentSocket ? { agentSocket: opts.agentSocket } : {}) });
  const base: Omit<SpawnDescription, 'file' | 'argv0' | 'args'> = {
    env,
    cwd: spawn?.chdir ?? home ?? '/',
    uid: account.uid,
    gid: account.gid,
    groups: account.groups,
    user: account.name,
    ...(opts.pty ? { pty: opts.pty } : {}),
    ...(spawn?.umask !== undefined ? { umask: spawn.umask } : {}),
    ...(spawn?.rlimits !== undefined ? { rlimits: spawn.rlimits } : {}),
    ...(spawn?.noNewPrivs ? { noNewPrivs: true } : {}),
    ...(account.source === 'translation' ? passwdEntry(account, isolation) : {}),
    ...(isolation ? { isolation } : {}),
  };
  const argv0 = (fallback: string): string => spawn?.processName ?? fallback;
  // Programs lukko or the translation server name by host path run from the host, so a
  // jail needs no copy of them (lukko-exec --exec-host).
  if (request.kind === 'program' && policy.forcedCommand === undefined) {
    return { ...base, file: request.file, argv0: argv0(basename(request.file)), args: request.args, execFromHost: true };
  }
  // A jail (a new root or CHROOT) has no shell to run the sftp-server by, nor the server.
  const jailed = isolation?.root !== undefined || isolation?.chroot !== undefined;
  if (request.kind === 'subsystem' && policy.forcedCommand === undefined && jailed) {
    return { ...base, file: request.command, argv0: argv0(basename(request.command)), args: [], execFromHost: true };
  }
  if (command === undefined) return { ...base, file: shell, argv0: argv0(`-${name}`), args: [] };
  // A top-level EXECUTE replaces the program an exec request runs, not its arguments (as
  // in the original, where it is an edge case nobody should rely on).
  const file = request.kind === 'exec' && spawn?.execute !== undefined ? spawn.execute : shell;
  return { ...base, file, argv0: argv0(name), args: ['-c', command] };
}
