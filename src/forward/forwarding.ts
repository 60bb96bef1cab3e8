// Port and socket forwarding for one connection (RFC 4254 7, OpenSSH's streamlocal and agent
// extensions), decided by the connection's Policy:
//
//   direct-tcpip        ssh -L / -W      permitopen
//   direct-streamlocal  ssh -L x:/path   opened as the user
//   tcpip-forward       ssh -R           permitlisten; loopback only (GatewayPorts no)
//   streamlocal-forward ssh -R /path:x   created as the user
//   auth-agent          ssh -A           a socket in a 0700 directory of the user's
//
// Every refusal is a channel-open or global-request failure with a log line naming the rule;
// the connection goes on. Data flows through connection/flow-control.ts's splice: a slow side, in either
// direction, holds the other back instead of making this process buffer.
import { mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import type { Connection as SshClient, ServerChannel } from 'ssh2';
import type { Account } from '../auth/account.ts';
import { DISCONNECT_PROTOCOL_ERROR } from '../auth/authenticator.ts';
import type { Policy } from '../auth/policy.ts';
import { permitListenAllows, permitOpenAllows } from '../auth/policy.ts';
import type { Duplex } from 'node:stream';
import type { Logger } from '../log/logger.ts';
import { TRANSLATION_ORIGIN } from '../translation/login.ts';
import { asUser } from './as-user.ts';
import { NetnsForwarding } from './netns.ts';
import type { TransportGate } from '../connection/flow-control.ts';
import { WINDOW_OVERRUN, refuseWindowOverrun, splice } from '../connection/flow-control.ts';

export const MAX_PENDING_GLOBAL_REQUESTS = 16;
export const MAX_FORWARD_CHANNELS = 256;
export const MAX_LISTENERS = 32;

// RFC 4254 5.1
const ADMINISTRATIVELY_PROHIBITED = 1;
const CONNECT_FAILED = 2;
const RESOURCE_SHORTAGE = 4;

/** The rule policy.ts names when port forwarding is off altogether. */
const PORT_FORWARDING_DISABLED = 'port forwarding disabled';

type Reject = ((code?: number, text?: string) => void) | undefined;
type Accept = (() => ServerChannel | undefined) | undefined;

/**
 * Who switched a facility off, for the refusal's log line: the key option that decided it
 * (`…/authorized_keys:3 restrict`, `… no-port-forwarding`) or the translation server's reason.
 */
export function switchedOffBy(policy: Policy, flag: 'port-forwarding' | 'agent-forwarding'): string {
  const who = policy.origins.filter(
    (o) => o.endsWith(' restrict') || o.endsWith(` no-${flag}`) || (o.startsWith(`${TRANSLATION_ORIGIN}:`) && (flag === 'port-forwarding' || !o.endsWith('NETWORK_NAMESPACE'))),
  );
  return `${flag} off by ${who.length > 0 ? who.join('; ') : 'policy'}`;
}

/** GatewayPorts no: whatever the client asks for, the listener is on loopback. */
export function loopbackFor(bindAddr: string): string {
  return bindAddr === '::1' || bindAddr === '[::1]' ? '::1' : '127.0.0.1';
}

interface AgentOpener {
  openssh_authAgent(cb: (err: Error | undefined, channel: ServerChannel) => void): void;
}

interface Listening {
  server: { close(): unknown };
  key: string;
  path?: string;
}

export interface ForwardingHost {
  log: Logger;
  account: Account;
  policy: Policy;
  client: SshClient;
  /** The SSH connection's socket gate: tunnels stop reading while too much waits on it. */
  gate?: TransportGate;
  /** Ends the whole connection (a client breaking flow control). */
  disconnect?: (reason: number, text: string) => void;
}

export class Forwarding {
  private channels = 0;
  private pendingRequests = 0;
  private readonly listeners = new Map<string, Listening>();
  private agent: { server: net.Server; dir: string; path: string } | undefined;
  private readonly host: ForwardingHost;
  /** The account's network namespace, where its TCP forwards live instead of the host's. */
  private readonly netns: NetnsForwarding | 'new' | undefined;
  private readonly gate: TransportGate | undefined;

  constructor(host: ForwardingHost) {
    this.host = host;
    this.gate = host.gate;
    const ns = host.account.spawn?.isolation?.networkNamespace;
    this.netns = ns?.kind === 'named'
      ? new NetnsForwarding({
          ...host,
          name: ns.name,
          openChannel: () => this.openChannel(),
          closedChannel: this.closedChannel,
          splice: (channel, socket, done) => this.join(channel, socket, `netns ${ns.name}`, done),
          maxChannels: MAX_FORWARD_CHANNELS,
        })
      : ns?.kind;
  }

  // A per-session NETWORK_NAMESPACE exists only while a session runs and holds nothing but
  // lo, so there is nothing a forward could reach or serve in it; the host's network is not
  // the account's. The translation login already switches forwarding off for it; this holds
  // even if a policy ever let it through.
  private static readonly NEW_NETNS_RULE = 'NETWORK_NAMESPACE (a per-session network namespace has nothing to forward to)';

  private refuse(reject: Reject, what: string, why: string, code = ADMINISTRATIVELY_PROHIBITED): void {
    if (why === PORT_FORWARDING_DISABLED) why = switchedOffBy(this.host.policy, 'port-forwarding');
    this.host.log.info({ forward: what, reason: why }, 'forwarding refused');
    reject?.(code, why);
  }

  private openChannel(): boolean {
    if (this.channels >= MAX_FORWARD_CHANNELS) return false;
    this.channels++;
    return true;
  }

  /** A connection to one of our listeners (or the agent socket) that cannot become a channel. */
  private dropIncoming(socket: net.Socket, what: string, why: string): void {
    this.host.log.info({ forward: what, reason: why }, 'forwarded connection dropped');
    socket.destroy();
  }

  private closedChannel = (): void => {
    this.channels--;
  };

  /** Runs a tunnel between a channel and a socket until both are closed. */
  private join(channel: Duplex, socket: Duplex, what: string, done: () => void = this.closedChannel): void {
    refuseWindowOverrun(channel, () => {
      this.host.log.warn({ forward: what, reason: 'client sent data beyond the window' }, 'disconnecting');
      socket.destroy();
      channel.destroy();
      this.host.disconnect?.(DISCONNECT_PROTOCOL_ERROR, WINDOW_OVERRUN);
    });
    splice(channel, socket, done, this.gate);
  }

  /** direct-tcpip: ssh -L, ssh -W, ProxyJump. */
  directTcpip(accept: Accept, reject: Reject, info: { destIP: string; destPort: number; srcIP: string; srcPort: number }): void {
    const what = `direct-tcpip ${info.destIP}:${info.destPort}`;
    if (this.netns === 'new') return this.refuse(reject, what, Forwarding.NEW_NETNS_RULE);
    const decision = permitOpenAllows(this.host.policy, info.destIP, info.destPort);
    if (!decision.allowed) return this.refuse(reject, what, decision.rule ?? 'not permitted');
    if (!this.openChannel()) return this.refuse(reject, what, 'too many forwarded channels', RESOURCE_SHORTAGE);
    if (this.netns) {
      return this.netns.connect(info.destIP, info.destPort, () => {
        const channel = accept?.();
        if (!channel) this.closedChannel();
        else this.host.log.debug({ forward: what, rule: decision.rule }, 'forwarding');
        return channel;
      }, (why) => {
        this.closedChannel();
        this.refuse(reject, what, why, CONNECT_FAILED);
      });
    }
    const socket = net.connect({ host: info.destIP, port: info.destPort });
    socket.setNoDelay(true);
    socket.once('connect', () => {
      const channel = accept?.();
      if (!channel) return socket.destroy();
      this.host.log.debug({ forward: what, rule: decision.rule }, 'forwarding');
      this.join(channel, socket, what);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      if (socket.connecting || !socket.remoteAddress) {
        this.closedChannel();
        this.refuse(reject, what, `connect failed: ${err.code ?? err.message}`, CONNECT_FAILED);
      }
    });
  }

  /** direct-streamlocal@openssh.com: ssh -L port:/path/to.sock, connected as the user. */
  directStreamlocal(accept: Accept, reject: Reject, info: { socketPath: string }): void {
    const what = `direct-streamlocal ${info.socketPath}`;
    const { policy } = this.host;
    if (!policy.portForwarding) return this.refuse(reject, what, PORT_FORWARDING_DISABLED);
    // permitopen names host:port destinations; a key restricted by it gets no socket paths
    // at all (stricter than OpenSSH, which ignores permitopen for Unix sockets).
    if (policy.permitOpen.length > 0) return this.refuse(reject, what, 'permitopen restricts forwarding to TCP destinations');
    // A file system path only: a name starting with NUL is an abstract socket, which has no
    // permissions and belongs to the network namespace lukko runs in (the host's, even for an
    // account that lives in a namespace of its own).
    if (!info.socketPath.startsWith('/') || info.socketPath.includes('\0')) return this.refuse(reject, what, 'not an absolute path');
    if (!this.openChannel()) return this.refuse(reject, what, 'too many forwarded channels', RESOURCE_SHORTAGE);
    let socket: net.Socket;
    try {
      socket = asUser(this.host.account, () => net.connect({ path: info.socketPath }));
    } catch (e) {
      this.closedChannel();
      return this.refuse(reject, what, (e as Error).message, CONNECT_FAILED);
    }
    socket.once('connect', () => {
      const channel = accept?.();
      if (!channel) return socket.destroy();
      this.join(channel, socket, what);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      if (socket.connecting || socket.readyState === 'closed') {
        this.closedChannel();
        this.refuse(reject, what, `connect failed: ${err.code ?? err.message}`, CONNECT_FAILED);
      }
    });
  }

  /** Global requests: tcpip-forward, streamlocal-forward and their cancels. */
  request(accept: ((port?: number) => void) | undefined, reject: (() => void) | undefined, name: string, info: unknown): void {
    if (this.pendingRequests >= MAX_PENDING_GLOBAL_REQUESTS) {
      this.host.log.info({ request: name }, 'global request refused: too many pending');
      return reject?.();
    }
    this.pendingRequests++;
    let answered = false;
    const once = <A extends unknown[]>(f: ((...a: A) => void) | undefined) => (...a: A): void => {
      if (answered) return;
      answered = true;
      this.pendingRequests--;
      f?.(...a);
    };
    const ok = once(accept);
    const no = once(reject);
    const i = info as { bindAddr?: string; bindPort?: number; socketPath?: string };
    switch (name) {
      case 'tcpip-forward':
        return this.listenTcp(ok, no, i.bindAddr ?? '', i.bindPort ?? 0);
      case 'cancel-tcpip-forward':
        return this.cancel(`tcp ${i.bindAddr ?? ''}:${i.bindPort ?? 0}`, ok, no);
      case 'streamlocal-forward@openssh.com':
        return this.listenStreamlocal(ok, no, i.socketPath ?? '');
      case 'cancel-streamlocal-forward@openssh.com':
        return this.cancel(`unix ${i.socketPath ?? ''}`, ok, no);
      default:
        this.host.log.info({ request: name }, 'global request refused');
        return no();
    }
  }

  private listenTcp(ok: (port?: number) => void, no: () => void, bindAddr: string, bindPort: number): void {
    const what = `tcpip-forward ${bindAddr}:${bindPort}`;
    if (this.netns === 'new') return this.refuse(no, what, Forwarding.NEW_NETNS_RULE);
    const decision = permitListenAllows(this.host.policy, bindAddr, bindPort);
    if (!decision.allowed) return this.refuse(no, what, decision.rule ?? 'not permitted');
    if (bindPort !== 0 && bindPort < 1024 && this.host.account.uid !== 0) return this.refuse(no, what, 'privileged port');
    if (this.listeners.size >= MAX_LISTENERS) return this.refuse(no, what, 'too many listening forwards');
    const key = `tcp ${bindAddr}:${bindPort}`;
    if (this.listeners.has(key)) return this.refuse(no, what, 'already forwarded');
    if (this.netns) {
      const ns = this.netns;
      let l: Listening | undefined;
      const gone = (): void => {
        if (l && this.listeners.get(l.key) === l) this.listeners.delete(l.key);
      };
      return ns.listen(bindAddr, loopbackFor(bindAddr), bindPort, (err, listener) => {
        if (err !== undefined || !listener) return this.refuse(no, what, err ?? 'listen failed');
        l = { server: listener, key: bindPort === 0 ? `tcp ${bindAddr}:${listener.port}` : key };
        this.listeners.set(l.key, l);
        this.host.log.info({ forward: what, port: listener.port, rule: decision.rule, netns: ns.name }, 'remote forward listening');
        ok(bindPort === 0 ? listener.port : undefined);
      }, gone);
    }
    const server = net.createServer((socket) => {
      socket.setNoDelay(true);
      if (!this.openChannel()) return this.dropIncoming(socket, what, 'too many forwarded channels');
      const port = (server.address() as net.AddressInfo).port;
      this.host.client.forwardOut(bindAddr, port, socket.remoteAddress ?? '', socket.remotePort ?? 0, (err, channel) => {
        if (err) {
          this.closedChannel();
          return this.dropIncoming(socket, what, `the client refused the channel: ${err.message}`);
        }
        this.join(channel, socket, what);
      });
    });
    server.once('error', (err: NodeJS.ErrnoException) => this.refuse(no, what, `listen failed: ${err.code ?? err.message}`));
    server.listen({ host: loopbackFor(bindAddr), port: bindPort }, () => {
      const port = (server.address() as net.AddressInfo).port;
      // the cancel names the port the client asked for; 0 stays 0 there, as in OpenSSH
      this.listeners.set(bindPort === 0 ? `tcp ${bindAddr}:${port}` : key, { server, key });
      this.host.log.info({ forward: what, port, rule: decision.rule }, 'remote forward listening');
      ok(bindPort === 0 ? port : undefined);
    });
  }

  private listenStreamlocal(ok: () => void, no: () => void, path: string): void {
    const what = `streamlocal-forward ${path}`;
    const { policy } = this.host;
    if (!policy.portForwarding) return this.refuse(no, what, PORT_FORWARDING_DISABLED);
    if (policy.permitListen.length > 0) return this.refuse(no, what, 'permitlisten restricts forwarding to TCP ports');
    if (!path.startsWith('/')) return this.refuse(no, what, 'not an absolute path');
    if (this.listeners.size >= MAX_LISTENERS) return this.refuse(no, what, 'too many listening forwards');
    const key = `unix ${path}`;
    if (this.listeners.has(key)) return this.refuse(no, what, 'already forwarded');
    const server = net.createServer((socket) => {
      if (!this.openChannel()) return this.dropIncoming(socket, what, 'too many forwarded channels');
      this.host.client.openssh_forwardOutStreamLocal(path, (err, channel) => {
        if (err) {
          this.closedChannel();
          return this.dropIncoming(socket, what, `the client refused the channel: ${err.message}`);
        }
        this.join(channel, socket, what);
      });
    });
    server.once('error', (err: NodeJS.ErrnoException) => this.refuse(no, what, `listen failed: ${err.code ?? err.message}`));
    try {
      // bind(2) runs inside listen(): the socket file is the user's, made where the user may.
      asUser(this.host.account, () => server.listen(path));
    } catch (e) {
      return this.refuse(no, what, (e as Error).message);
    }
    server.once('listening', () => {
      this.listeners.set(key, { server, key, path });
      this.host.log.info({ forward: what }, 'remote forward listening');
      ok();
    });
  }

  private cancel(key: string, ok: () => void, no: () => void): void {
    const l = this.listeners.get(key);
    if (!l) return this.refuse(no, `cancel ${key}`, 'no such forward');
    this.close(l);
    this.listeners.delete(key);
    ok();
  }

  private close(l: Listening): void {
    l.server.close();
    if (l.path) {
      const path = l.path;
      try {
        asUser(this.host.account, () => unlinkSync(path));
      } catch {
        /* already gone */
      }
    }
  }

  /** ssh -A: the agent socket for this connection (made once), or undefined when refused. */
  agentSocket(): string | undefined {
    if (!this.host.policy.agentForwarding) {
      this.host.log.info({ reason: switchedOffBy(this.host.policy, 'agent-forwarding') }, 'agent forwarding refused');
      return undefined;
    }
    if (this.agent) return this.agent.path;
    try {
      const { dir, path, server } = asUser(this.host.account, () => {
        const dir = mkdtempSync('/tmp/ssh-lukko-'); // 0700, the user's
        const path = join(dir, `agent.${process.pid}`);
        const server = net.createServer((socket) => {
          if (!this.openChannel()) return this.dropIncoming(socket, 'auth-agent', 'too many forwarded channels');
          // added to ssh2 by scripts/patch-ssh2.mjs (patch 9)
          (this.host.client as unknown as AgentOpener).openssh_authAgent((err, channel) => {
            if (err) {
              this.closedChannel();
              return this.dropIncoming(socket, 'auth-agent', `the client refused the channel: ${err.message}`);
            }
            this.join(channel, socket, 'auth-agent');
          });
        });
        server.listen(path);
        return { dir, path, server };
      });
      this.agent = { dir, path, server };
      return path;
    } catch (e) {
      this.host.log.warn({ err: (e as Error).message }, 'agent forwarding failed');
      return undefined;
    }
  }

  /** The connection is over: no listener or agent socket outlives it. */
  end(): void {
    for (const l of this.listeners.values()) this.close(l);
    this.listeners.clear();
    if (this.netns instanceof NetnsForwarding) this.netns.end();
    if (this.agent) {
      const { dir, server } = this.agent;
      server.close();
      try {
        asUser(this.host.account, () => rmSync(dir, { recursive: true, force: true }));
      } catch {
        /* already gone */
      }
      this.agent = undefined;
    }
  }
}
