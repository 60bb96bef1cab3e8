// Report events → metrics (spec/config-control-metrics.md §4.3). Pure apart from the registry
// it updates: the counters count events; the gauges (active connections, children) are sums
// over the instances connected now, so an instance that vanishes without `closed` (killed,
// crashed) stops counting when its stream ends.
import type { ReportEvent } from './report-protocol.ts';
import type { MetricsRegistry } from './metrics.ts';

/** What the companion knows about one reporting instance. */
export interface InstanceState {
  pid?: number;
  ip?: string;
  listener?: string;
  /** Between `accepted` (or `resume`) and `closed`. */
  active: boolean;
  /** Children started and not yet exited, as reported. */
  children: number;
}

export function newInstanceState(): InstanceState {
  return { active: false, children: 0 };
}

const P = { process: 'lukko' };

export function applyEvent(m: MetricsRegistry, s: InstanceState, e: ReportEvent): void {
  switch (e.t) {
    case 'hello':
      if (e.pid !== undefined) s.pid = e.pid;
      return;
    case 'accepted':
      m.inc('lukko_connections_accepted');
      if (e.ip !== undefined) s.ip = e.ip;
      if (e.listener !== undefined) s.listener = e.listener;
      s.active = true;
      return;
    case 'resume':
      if (e.ip !== undefined) s.ip = e.ip;
      if (e.listener !== undefined) s.listener = e.listener;
      s.active = true;
      if (e.children !== undefined) s.children = e.children;
      return;
    case 'rejected':
      m.inc('lukko_connections_rejected');
      return;
    case 'tarpit':
      m.inc('lukko_tarpit');
      return;
    case 'auth':
      m.inc('lukko_userauth_received');
      // The original counts neither success nor failure for `none`, nor for a key query
      // answered with PK_OK (the signed request that follows is the attempt).
      if (e.method === 'none' || e.query) return;
      if (e.ok) m.inc('lukko_userauth_accepted', { method: e.method });
      else m.inc('lukko_userauth_failed', { method: e.method });
      return;
    case 'error':
      m.inc('lukko_translation_errors');
      return;
    case 'bytes':
      m.inc('lukko_bytes_received', undefined, e.in);
      m.inc('lukko_bytes_sent', undefined, e.out);
      m.inc('lukko_packets_received', undefined, e.packetsIn ?? 0);
      m.inc('lukko_packets_sent', undefined, e.packetsOut ?? 0);
      return;
    case 'spawn':
      m.inc('lukko_children_spawned');
      m.inc('lukko_total_spawn_duration', undefined, e.seconds ?? 0);
      if (e.ok) s.children++;
      else m.inc('lukko_spawn_errors');
      return;
    case 'kill':
      m.inc('lukko_children_killed');
      return;
    case 'exit':
      m.inc('lukko_children_exited');
      if (s.children > 0) s.children--;
      return;
    case 'loop':
      m.inc('event_loop_idle_duration', P, e.idle);
      m.inc('event_loop_busy_duration', P, e.busy);
      m.inc('event_loop_iterations', P, e.iterations ?? 0);
      return;
    case 'charge':
      return; // the companion's defences act on it (server.ts)
    case 'closed':
      if (e.reason !== undefined) m.inc('lukko_connections_closed', { reason: e.reason });
      s.active = false;
      return;
  }
}

/** The gauges from the instances connected now. */
export function updateGauges(m: MetricsRegistry, instances: Iterable<InstanceState>): { active: number; children: number } {
  let active = 0;
  let children = 0;
  for (const s of instances) {
    if (s.active) active++;
    children += s.children;
  }
  m.setGauge('lukko_connections_active', active);
  m.setGauge('lukko_children', children);
  m.setGauge('lukko_spawn_pending', 0); // spawning is synchronous in an instance: never seen pending
  return { active, children };
}
