// Moving a tunnel's bytes between an SSH channel and a socket without buffering without bound.
//
// Three things can hold a tunnel back, and each must stop the side that feeds it:
//  - the local socket is slow (its write() returns false): stop reading the channel; ssh2
//    then stops topping up the client's window once its 2 MiB read buffer is full;
//  - the client's window is used up (the channel's write() returns false): stop reading the
//    socket until the channel drains;
//  - the client does not read the connection itself, while its window says it may (any
//    window up to 4 GiB is legal, so a client can grant far more than it reads): ssh2 writes
//    every packet into the connection's socket whatever its state, so that queue is watched
//    here too, and sockets stop being read while it is above TRANSPORT_HIGH_WATER.
import type { Duplex, Readable, Writable } from 'node:stream';

/** Bytes queued on the SSH connection's socket above which tunnels stop reading. */
export const TRANSPORT_HIGH_WATER = 1024 * 1024;

/** The SSH connection's socket, seen by every tunnel of the connection. */
export class TransportGate {
  private readonly transport: { writableLength: number; on(e: 'drain' | 'close', f: () => void): unknown };
  private readonly waiting = new Set<() => void>();

  constructor(transport: { writableLength: number; on(e: 'drain' | 'close', f: () => void): unknown }) {
    this.transport = transport;
    const wake = (): void => {
      const all = [...this.waiting];
      this.waiting.clear();
      for (const f of all) f();
    };
    transport.on('drain', wake);
    transport.on('close', wake);
  }

  blocked(): boolean {
    return this.transport.writableLength > TRANSPORT_HIGH_WATER;
  }

  /** Calls `f` once when the socket has drained (a Node socket emits 'drain' at empty). */
  whenDrained(f: () => void): void {
    this.waiting.add(f);
  }
}

/**
 * Copies `from` into `to`, pausing `from` while `to` is full or the gate is shut, and ends
 * `to` when `from` ends (a half-close travels on: EOF on the channel, FIN on the socket),
 * unless `end` is false (a session's output: exit-status goes out before EOF).
 */
export function pump(from: Readable, to: Writable, gate?: TransportGate, end = true): void {
  let full = false;
  const resume = (): void => {
    if (full || from.destroyed) return;
    if (gate?.blocked()) return gate.whenDrained(resume);
    from.resume();
  };
  from.on('data', (d: Buffer) => {
    if (!to.writable) return;
    if (!to.write(d) && !full) {
      full = true;
      to.once('drain', () => {
        full = false;
        resume();
      });
    }
    if (full) from.pause();
    else if (gate?.blocked()) {
      from.pause();
      gate.whenDrained(resume);
    }
  });
  if (end) from.on('end', () => to.end());
}

/**
 * Joins a channel and a socket. A failure on either side ends both at once. Otherwise
 * whichever side closes first lets what is still queued for the other go out: the socket's
 * last bytes are written before it is shut; what waits for the client's window follows
 * before ssh2 sends EOF and CLOSE. `done` runs once both are closed, so a tunnel keeps its
 * place in the channel limit while anything of it is left.
 */
export function splice(channel: Duplex, socket: Duplex, done: () => void, gate?: TransportGate): void {
  let channelClosed = false;
  let socketClosed = false;
  let over = false;
  const settle = (): void => {
    if (over || !channelClosed || !socketClosed) return;
    over = true;
    done();
  };
  const fail = (): void => {
    socket.destroy();
    channel.destroy();
  };
  channel.on('error', fail);
  socket.on('error', fail);
  channel.on('close', () => {
    channelClosed = true;
    if (socket.writableFinished) socket.destroy();
    else if (!socket.destroyed) {
      socket.once('finish', () => socket.destroy());
      socket.end();
    }
    settle();
  });
  socket.on('close', () => {
    socketClosed = true;
    if (!channel.writableEnded) channel.end();
    settle();
  });
  pump(channel, socket);
  pump(socket, channel, gate);
}

/** The DISCONNECT text for a client that sent beyond its window, as OpenSSH says it. */
export const WINDOW_OVERRUN = 'peer ignored channel window';

/**
 * A client must not send more than the window it was granted (RFC 4254 5.2). ssh2 drops data
 * that arrives when the window is exactly 0, but data overshooting a smaller window is
 * queued and the window goes negative, so a client that ignores the window could make this
 * process buffer without bound behind a slow socket. At the first such byte `overrun` is
 * called (once; the caller ends the connection: a client that does this is broken or
 * hostile, and only that stops it from sending more) and nothing more of the channel is
 * queued.
 */
export function refuseWindowOverrun(channel: Duplex, overrun: () => void): void {
  const c = channel as unknown as { incoming?: { window: number }; push(chunk: unknown, encoding?: BufferEncoding): boolean };
  const push = c.push.bind(channel);
  let over = false;
  c.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
    if (chunk !== null && c.incoming !== undefined && c.incoming.window < 0) {
      if (!over) {
        over = true;
        overrun();
      }
      return false;
    }
    return push(chunk, encoding);
  };
}
