// sd_notify(3) through the sd-notify addon (libsystemd). Loaded only when systemd asked for
// notifications (NOTIFY_SOCKET set), so `lukko serve` children and tests pay nothing.
import { createRequire } from 'node:module';

interface SdNotify {
  ready(): void;
  sendStatus(text: string): void;
  sendState?(text: string): void;
  watchdog(): void;
}

let addon: SdNotify | null | undefined;

function load(): SdNotify | null {
  if (addon !== undefined) return addon;
  addon = null;
  if (!process.env.NOTIFY_SOCKET) return null;
  try {
    addon = createRequire(import.meta.url)('sd-notify') as SdNotify;
  } catch {
    addon = null; // notifications are a courtesy; a missing addon must not cost a login
  }
  return addon;
}

export function notifyReady(): void {
  load()?.ready();
}

// STATUS= is one line in `systemctl status`; keep it single-line and short.
export function notifyStatus(text: string): void {
  load()?.sendStatus(text.replace(/[\r\n]+/g, ' ').slice(0, 200));
}

/** WATCHDOG=1; false when there is nobody to tell (no NOTIFY_SOCKET, no addon). */
export function notifyWatchdog(): boolean {
  const a = load();
  a?.watchdog();
  return a !== null;
}
