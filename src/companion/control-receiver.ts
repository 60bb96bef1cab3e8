// Runs lukko-control-recv (the C helper owning the control sockets, see its header comment)
// and turns its stdout into ReceivedDatagram callbacks. The helper is restarted if it dies;
// it ends by itself when the companion does (its stdin closes).
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import type { ControlConfig } from '../config/index.ts';
import type { Logger } from '../log/logger.ts';
import { builtHelper } from '../spawn/helper-path.ts';
import { HelperFrameSplitter } from './control-frames.ts';
import type { ReceivedDatagram } from './control-frames.ts';

const RESTART_MIN_MS = 1000;
const RESTART_MAX_MS = 30_000;
const START_TIMEOUT_MS = 10_000;

/** dist/companion/lukko-control-recv. */
export function controlHelperPath(): string {
  const path = builtHelper('companion', 'lukko-control-recv');
  if (path === undefined) throw new Error('lukko-control-recv helper not found (run npm run build)');
  return path;
}

/** Pure: the helper's arguments for one `control` block. */
export function controlBlockArgs(c: ControlConfig): string[] {
  const b = c.bind;
  if (b.kind === 'unix') return [b.abstract ? '--abstract' : '--unix', b.path];
  // `*` (host '') binds the IPv6 wildcard, dual-stack, as the original does.
  const args = ['--udp', b.host === '' ? '::' : b.host + (b.scope !== undefined ? `%${b.scope}` : ''), String(b.port)];
  if (c.interface !== undefined) args.push('--interface', c.interface);
  const g = c.multicastGroup;
  if (g?.kind === 'inet') args.push('--group', g.host + (g.scope !== undefined ? `%${g.scope}` : ''));
  return args;
}

export interface ControlReceiverOptions {
  /** `control` blocks to bind; ignored when `fds` is not empty. */
  blocks: readonly ControlConfig[];
  /** Datagram sockets from systemd (FileDescriptorName=control), in the companion. */
  fds: readonly number[];
  log: Logger;
  onDatagram(d: ReceivedDatagram): void;
  helper?: string;
}

export class ControlReceiver {
  private readonly o: ControlReceiverOptions;
  private readonly helper: string;
  private readonly args: string[];
  private readonly stdio: ('pipe' | number)[];
  private child: ChildProcess | undefined;
  private closed = false;
  private everReady = false;
  private restartMs = RESTART_MIN_MS;
  private restartTimer: NodeJS.Timeout | undefined;
  /** Sockets the helper serves, for logs. */
  readonly sockets: number;

  private constructor(o: ControlReceiverOptions) {
    this.o = o;
    this.helper = o.helper ?? controlHelperPath();
    this.stdio = ['pipe', 'pipe', 'pipe'];
    this.args = [];
    if (o.fds.length) {
      // The helper sees them from fd 3 on, whatever their numbers here.
      o.fds.forEach((fd, i) => {
        this.stdio.push(fd);
        this.args.push('--fd', String(3 + i));
      });
    } else {
      for (const b of o.blocks) this.args.push(...controlBlockArgs(b));
    }
    this.sockets = o.fds.length || o.blocks.length;
  }

  /** Binds everything; rejects with the helper's own words if a socket cannot be set up. */
  static async start(o: ControlReceiverOptions): Promise<ControlReceiver> {
    const r = new ControlReceiver(o);
    await r.run();
    return r;
  }

  private run(): Promise<void> {
    return new Promise((resolve, reject) => {
      const child = spawn(this.helper, this.args, { stdio: this.stdio });
      this.child = child;
      let ready = false;
      let stderr = '';
      const timer = setTimeout(() => {
        if (!ready) child.kill('SIGKILL');
      }, START_TIMEOUT_MS);
      const splitter = new HelperFrameSplitter();
      child.stdout!.on('data', (chunk: Buffer) => {
        let frames;
        try {
          frames = splitter.push(chunk);
        } catch (e) {
          this.o.log.error({ err: e }, 'control helper stream corrupt; restarting it');
          child.kill('SIGKILL');
          return;
        }
        for (const f of frames) {
          if (f.kind === 'ready') {
            ready = true;
            this.everReady = true;
            clearTimeout(timer);
            this.restartMs = RESTART_MIN_MS;
            resolve();
          } else {
            this.o.onDatagram(f);
          }
        }
      });
      child.stderr!.setEncoding('utf8').on('data', (d: string) => {
        if (!ready) stderr += d;
        else for (const line of d.split('\n')) if (line.trim() !== '') this.o.log.warn({ helper: line.trim() }, 'control helper');
      });
      child.stdin!.on('error', () => {});
      child.on('error', (e) => {
        clearTimeout(timer);
        if (!ready) reject(new Error(`cannot run ${this.helper}: ${e.message}`));
      });
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        if (this.child === child) this.child = undefined;
        if (!ready) {
          reject(new Error(stderr.trim() || `control helper exited (${code ?? signal}) before its sockets were ready`));
          // A failed first start ends the companion; a failed restart is tried again.
          if (!this.everReady) return;
        }
        if (this.closed) return;
        this.o.log.error({ code, signal }, `control helper ended; restarting it in ${this.restartMs} ms`);
        this.restartTimer = setTimeout(() => {
          this.restartTimer = undefined;
          if (this.closed) return;
          this.run().catch((e: Error) => this.o.log.error({ err: e.message }, 'control helper did not restart'));
        }, this.restartMs);
        this.restartMs = Math.min(this.restartMs * 2, RESTART_MAX_MS);
      });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  }
}
