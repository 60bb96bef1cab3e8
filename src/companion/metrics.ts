// The metrics the original exports (spec/config-control-metrics.md §4.3), under the same names,
// types and labels, held by the companion and rendered in the Prometheus text format 0.0.4.
// The help texts are our own (the original's say "sent" for two "received" counters).
//
// The set of samples is fixed: every labelled metric declares all its label values, so each
// sample exists (at 0) from the start and a scrape always sees the same series.

export type MetricType = 'counter' | 'gauge';

export interface MetricDefinition {
  readonly name: string;
  readonly type: MetricType;
  readonly help: string;
  /** One label and all the values it can take; absent for a metric with one unlabelled sample. */
  readonly label?: { readonly name: string; readonly values: readonly string[] };
}

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Labels of `lukko_userauth_accepted`. */
export const AUTH_ACCEPTED_METHODS = ['password', 'publickey', 'hostbased'] as const;
/** Labels of `lukko_userauth_failed`. */
export const AUTH_FAILED_METHODS = ['password', 'publickey', 'hostbased', 'unsupported', 'unknown'] as const;
/** Labels of `lukko_connections_closed`. */
export const CLOSE_REASONS = ['terminated', 'unsupported_service', 'protocol'] as const;

/** Labels of `lukko_companion_control_rejected`. */
export const CONTROL_REJECT_REASONS = ['untrusted', 'malformed', 'invalid'] as const;
export type ControlRejectReason = (typeof CONTROL_REJECT_REASONS)[number];

export type AuthAcceptedMethod = (typeof AUTH_ACCEPTED_METHODS)[number];
export type AuthFailedMethod = (typeof AUTH_FAILED_METHODS)[number];
export type CloseReason = (typeof CLOSE_REASONS)[number];

export const METRICS: readonly MetricDefinition[] = [
  { name: 'event_loop_iterations', type: 'counter', help: 'Event loop iterations that waited for events.', label: { name: 'process', values: ['lukko'] } },
  { name: 'event_loop_idle_duration', type: 'counter', help: 'Seconds the event loops spent waiting for events.', label: { name: 'process', values: ['lukko'] } },
  { name: 'event_loop_busy_duration', type: 'counter', help: 'Seconds the event loops spent handling events.', label: { name: 'process', values: ['lukko'] } },
  { name: 'lukko_spawn_pending', type: 'gauge', help: 'Child processes being started right now.' },
  { name: 'lukko_children_spawned', type: 'counter', help: 'Attempts to start a child process, failed ones included.' },
  { name: 'lukko_total_spawn_duration', type: 'counter', help: 'Seconds spent starting child processes.' },
  { name: 'lukko_spawn_errors', type: 'counter', help: 'Attempts to start a child process that failed.' },
  { name: 'lukko_children_killed', type: 'counter', help: 'Signals sent to child processes.' },
  { name: 'lukko_children_exited', type: 'counter', help: 'Child processes that have exited.' },
  { name: 'lukko_children', type: 'gauge', help: 'Child processes alive now.' },
  { name: 'lukko_connections_accepted', type: 'counter', help: 'SSH connections accepted, including those later rejected or delayed.' },
  { name: 'lukko_connections_rejected', type: 'counter', help: 'SSH connections refused: too many from one address, or the host is not allowed.' },
  { name: 'lukko_connections_closed', type: 'counter', help: 'SSH connections closed by lukko, by reason.', label: { name: 'reason', values: CLOSE_REASONS } },
  { name: 'lukko_userauth_received', type: 'counter', help: 'SSH authentication requests received.' },
  { name: 'lukko_userauth_accepted', type: 'counter', help: 'SSH authentication requests that succeeded, by method.', label: { name: 'method', values: AUTH_ACCEPTED_METHODS } },
  { name: 'lukko_userauth_failed', type: 'counter', help: 'SSH authentication requests that failed, by method (unknown: no such user).', label: { name: 'method', values: AUTH_FAILED_METHODS } },
  { name: 'lukko_translation_errors', type: 'counter', help: 'Translation server failures and invalid responses.' },
  { name: 'lukko_tarpit', type: 'counter', help: 'Tarpit delays applied.' },
  { name: 'lukko_bytes_received', type: 'counter', help: 'SSH packet payload bytes received on incoming connections.' },
  { name: 'lukko_bytes_sent', type: 'counter', help: 'SSH packet payload bytes sent on incoming connections.' },
  { name: 'lukko_packets_received', type: 'counter', help: 'SSH packets received on incoming connections.' },
  { name: 'lukko_packets_sent', type: 'counter', help: 'SSH packets sent on incoming connections.' },
  { name: 'lukko_connections_active', type: 'gauge', help: 'Established SSH connections now (delayed ones excluded).' },
  // Not in the original: what the companion itself saw.
  { name: 'lukko_companion_reports_ignored', type: 'counter', help: 'Report lines from lukko instances the companion could not use (malformed, too long, unknown type).' },
  { name: 'lukko_companion_control_received', type: 'counter', help: 'Datagrams received on control sockets.' },
  {
    name: 'lukko_companion_control_rejected',
    type: 'counter',
    help: 'Control input not acted on: commands from senders not allowed to change behaviour (untrusted), datagrams that do not parse (malformed), commands with an unusable payload (invalid).',
    label: { name: 'reason', values: CONTROL_REJECT_REASONS },
  },
];

export type Labels = Readonly<Record<string, string>>;

export interface Sample {
  readonly labels: Labels;
  readonly value: number;
}

export interface MetricFamily {
  readonly name: string;
  readonly type: MetricType;
  readonly help: string;
  readonly samples: readonly Sample[];
}

function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** `name{a="x",b="y"}`: the sample as the text format writes it, also its key in the state file. */
export function sampleKey(name: string, labels: Labels = {}): string {
  const parts = Object.keys(labels)
    .sort()
    .map((k) => `${k}="${escapeLabelValue(labels[k] ?? '')}"`);
  return parts.length ? `${name}{${parts.join(',')}}` : name;
}

export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/** Pure: the text exposition format (version 0.0.4), one HELP and TYPE line per family. */
export function renderPrometheusText(families: readonly MetricFamily[]): string {
  let out = '';
  for (const f of families) {
    out += `# HELP ${f.name} ${escapeHelp(f.help)}\n# TYPE ${f.name} ${f.type}\n`;
    for (const s of f.samples) out += `${sampleKey(f.name, s.labels)} ${formatValue(s.value)}\n`;
  }
  return out;
}

export class MetricError extends Error {}

interface Slot {
  readonly def: MetricDefinition;
  readonly labels: Labels;
  value: number;
}

export class MetricsRegistry {
  private readonly slots = new Map<string, Slot>();
  private readonly defs: readonly MetricDefinition[];
  /** Bumped on every change of a counter: tells the state file it has something to write. */
  counterVersion = 0;

  constructor(defs: readonly MetricDefinition[] = METRICS) {
    this.defs = defs;
    for (const def of defs) {
      const labelSets: Labels[] = def.label ? def.label.values.map((v) => ({ [def.label!.name]: v })) : [{}];
      for (const labels of labelSets) this.slots.set(sampleKey(def.name, labels), { def, labels, value: 0 });
    }
  }

  private slot(name: string, labels: Labels | undefined, type: MetricType): Slot {
    const s = this.slots.get(sampleKey(name, labels));
    if (!s) throw new MetricError(`no such sample: ${sampleKey(name, labels)}`);
    if (s.def.type !== type) throw new MetricError(`${name} is a ${s.def.type}, not a ${type}`);
    return s;
  }

  /** Adds `by` (finite, >= 0) to a counter. */
  inc(name: string, labels?: Labels, by = 1): void {
    if (!Number.isFinite(by) || by < 0) throw new MetricError(`counter ${name}: cannot add ${by}`);
    const s = this.slot(name, labels, 'counter');
    if (by === 0) return;
    s.value += by;
    this.counterVersion++;
  }

  setGauge(name: string, value: number, labels?: Labels): void {
    this.slot(name, labels, 'gauge').value = value;
  }

  get(name: string, labels?: Labels): number {
    const s = this.slots.get(sampleKey(name, labels));
    if (!s) throw new MetricError(`no such sample: ${sampleKey(name, labels)}`);
    return s.value;
  }

  /** Every counter sample by its key, for the state file. */
  counters(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [key, s] of this.slots) if (s.def.type === 'counter') out[key] = s.value;
    return out;
  }

  /**
   * Takes counter values saved by an earlier run. A counter only ever grows, so each keeps the
   * larger of its value and the saved one. Keys that are not counters here are returned (and
   * otherwise ignored): a newer release may have dropped a metric.
   */
  restoreCounters(saved: Readonly<Record<string, number>>): string[] {
    const unknown: string[] = [];
    for (const [key, value] of Object.entries(saved)) {
      const s = this.slots.get(key);
      if (!s || s.def.type !== 'counter' || !Number.isFinite(value) || value < 0) {
        unknown.push(key);
        continue;
      }
      if (value > s.value) {
        s.value = value;
        this.counterVersion++;
      }
    }
    return unknown;
  }

  families(): MetricFamily[] {
    return this.defs.map((def) => ({
      name: def.name,
      type: def.type,
      help: def.help,
      samples: [...this.slots.values()].filter((s) => s.def === def).map((s) => ({ labels: s.labels, value: s.value })),
    }));
  }

  render(): string {
    return renderPrometheusText(this.families());
  }
}
