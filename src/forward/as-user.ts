// Runs a synchronous piece of code with the account's effective identity, so that what it
// creates or opens in the file system is checked and owned as the user's own: Unix sockets
// for streamlocal forwarding and the agent socket. The per-connection process is root
// otherwise; connecting to /run/docker.sock as root on a user's behalf would bypass every
// permission on the way.
//
// Node's net calls bind(2) and connect(2) for Unix sockets synchronously inside listen() and
// connect(), so the switch back happens before any other JavaScript runs. glibc applies
// seteuid/setegid/setgroups to every thread of the process.
import type { Account } from '../auth/account.ts';

export function asUser<T>(account: Account, fn: () => T): T {
  const uid = process.geteuid?.();
  if (uid !== 0) {
    if (uid !== account.uid) throw new Error(`cannot act as uid ${account.uid}: lukko is not running as root`);
    return fn();
  }
  const savedGroups = process.getgroups!();
  // process.initgroups exists on POSIX but is missing from @types/node
  if (account.groups === 'nss') (process as unknown as { initgroups(u: string, g: number): void }).initgroups(account.name, account.gid);
  else process.setgroups!([account.gid, ...account.groups]);
  process.setegid!(account.gid);
  process.seteuid!(account.uid);
  try {
    return fn();
  } finally {
    process.seteuid!(0);
    process.setegid!(0);
    process.setgroups!(savedGroups);
  }
}
