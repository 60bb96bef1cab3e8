// WATCHDOG=1 for a service with WatchdogSec=: systemd sets WATCHDOG_USEC (and WATCHDOG_PID)
// and expects a ping at least that often; we ping at half the interval. The pings come from
// the event loop, so a loop stuck for longer than WatchdogSec= gets the service restarted.
import { notifyWatchdog } from '../systemd/notify.ts';

/** Pure: the ping interval in ms that the environment asks for, or undefined. */
export function watchdogIntervalMs(env: Record<string, string | undefined>, pid: number): number | undefined {
  const usec = env.WATCHDOG_USEC;
  if (usec === undefined || !/^[0-9]+$/.test(usec) || Number(usec) === 0) return undefined;
  if (env.WATCHDOG_PID !== undefined && env.WATCHDOG_PID !== String(pid)) return undefined;
  return Math.max(1, Math.floor(Number(usec) / 2000));
}

/** Starts the pings if systemd asked for them; returns the interval, or undefined. */
export function startWatchdog(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const ms = watchdogIntervalMs(env, process.pid);
  if (ms === undefined || !env.NOTIFY_SOCKET || !notifyWatchdog()) return undefined;
  setInterval(notifyWatchdog, ms).unref();
  return ms;
}
