// What the client types, written into a pty's master side with backpressure.
//
// node-pty's own write() queues without limit and, when the terminal's buffer is full (a
// program that does not read its input), retries on every turn of the event loop: a client
// pasting into `sleep 600` would grow the instance without bound and spin a core. This
// Writable holds a chunk until the kernel takes it, so channel.pipe() pauses the channel,
// ssh2 stops topping up the client's window, and the client stops sending. When the kernel
// says EAGAIN it retries after a short, growing delay instead of spinning.
//
// Writes are synchronous (the master fd is non-blocking, so they never wait): an fd number
// is only written while `open()` says the pty still holds it, and the check and the write
// happen in one turn, so input can never land in a file that reused the number.
import { writeSync } from 'node:fs';
import { Writable } from 'node:stream';

/** Input queued for the terminal above which the channel is paused. */
const HIGH_WATER = 64 * 1024;
const MAX_RETRY_MS = 50;

export class PtyInput extends Writable {
  private readonly fd: number;
  private readonly open: () => boolean;
  private retryMs = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(fd: number, open: () => boolean) {
    super({ highWaterMark: HIGH_WATER });
    this.fd = fd;
    this.open = open;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    this.push(chunk, 0, done);
  }

  private push(chunk: Buffer, offset: number, done: (err?: Error | null) => void): void {
    this.timer = undefined;
    while (offset < chunk.length) {
      // the program and its terminal are gone: what it never read is dropped, as a pty would
      if (this.destroyed || !this.open()) return done();
      try {
        offset += writeSync(this.fd, chunk, offset);
        this.retryMs = 0;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') return done(); // EIO: the slave side is closed
        this.retryMs = Math.min(MAX_RETRY_MS, this.retryMs * 2 || 1);
        this.timer = setTimeout(() => this.push(chunk, offset, done), this.retryMs);
        return;
      }
    }
    done();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    clearTimeout(this.timer);
    done(err);
  }
}
