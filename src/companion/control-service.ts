// The companion's control side: datagrams from lukko-control-recv are judged
// (control-permission.ts), decoded and carried out: VERBOSE and TERMINATE_CHILDREN go to the
// instances over the report streams, DISABLE_/ENABLE_ZEROCONF and RELOAD_STATE to the Zeroconf
// publisher. Whatever is not acted on is counted in lukko_companion_control_rejected and logged
// (rate-limited: a flood must not flood the journal too).
import type { Logger } from '../log/logger.ts';
import { verboseLevel } from '../log/logger.ts';
import type { ReceivedDatagram } from './control-frames.ts';
import { judgeSender, planDatagram } from './control-permission.ts';
import type { RunnableAction, SenderPolicy } from './control-permission.ts';
import type { MetricsRegistry } from './metrics.ts';
import type { ReportCommand } from './report-protocol.ts';

/** Log lines about refused or malformed datagrams per minute; the rest are only counted. */
const LOG_BUDGET_PER_MINUTE = 20;


export interface ControlTargets {
  /** Sends a command to every connected instance; returns how many got it. */
  broadcast(command: ReportCommand): number;
  setZeroconf?(enabled: boolean): void;
  reloadState?(): void;
}

export class ControlService {
  private readonly log: Logger;
  private readonly registry: MetricsRegistry;
  private readonly targets: ControlTargets;
  /** One policy per helper socket index; sockets beyond the list use the last one. */
  private readonly policies: readonly SenderPolicy[];
  /** The level of the last accepted VERBOSE: new instances get it when they connect. */
  verboseLevel: number | undefined;
  private logBudget = LOG_BUDGET_PER_MINUTE;
  private suppressed = 0;
  private readonly budgetTimer: NodeJS.Timeout;

  constructor(o: { log: Logger; registry: MetricsRegistry; targets: ControlTargets; policies: readonly SenderPolicy[] }) {
    this.log = o.log;
    this.registry = o.registry;
    this.targets = o.targets;
    this.policies = o.policies;
    this.budgetTimer = setInterval(() => {
      if (this.suppressed) this.log.warn({ count: this.suppressed }, 'control datagrams refused or malformed without a log line (rate limit)');
      this.suppressed = 0;
      this.logBudget = LOG_BUDGET_PER_MINUTE;
    }, 60_000);
    this.budgetTimer.unref();
  }

  /** What a newly connected instance must hear first. */
  greeting(): ReportCommand[] {
    return this.verboseLevel === undefined ? [] : [{ c: 'verbose', level: this.verboseLevel }];
  }

  private warn(fields: Record<string, unknown>, message: string): void {
    if (this.logBudget > 0) {
      this.logBudget--;
      this.log.warn(fields, message);
    } else {
      this.suppressed++;
    }
  }

  handle(d: ReceivedDatagram): void {
    this.registry.inc('lukko_companion_control_received');
    const policy = this.policies[Math.min(d.socket, this.policies.length - 1)] ?? { ownUid: 0, allowFrom: [] };
    const verdict = judgeSender(d.source, policy);
    const plan = planDatagram(d.data, d.truncated, verdict);
    for (const action of plan.run) this.execute(action, verdict.who);
    if (plan.refused.length) {
      this.registry.inc('lukko_companion_control_rejected', { reason: 'untrusted' }, plan.refused.length);
      this.warn({ from: verdict.who, commands: plan.refused.map((a) => a.kind), why: verdict.trusted ? undefined : verdict.why }, 'control commands refused');
    }
    if (plan.invalid.length) {
      this.registry.inc('lukko_companion_control_rejected', { reason: 'invalid' }, plan.invalid.length);
      for (const a of plan.invalid) this.warn({ from: verdict.who, command: a.name, error: a.error }, 'control command ignored');
    }
    if (plan.error !== undefined) {
      this.registry.inc('lukko_companion_control_rejected', { reason: 'malformed' });
      this.warn({ from: verdict.who, error: plan.error, bytes: d.data.length }, 'malformed control datagram');
    }
  }

  private execute(action: RunnableAction, from: string): void {
    switch (action.kind) {
      case 'verbose': {
        this.verboseLevel = action.level;
        this.log.level = verboseLevel(action.level);
        const n = this.targets.broadcast({ c: 'verbose', level: action.level });
        this.log.info({ from, verbose: action.level, instances: n }, 'control VERBOSE');
        break;
      }
      case 'terminate-children': {
        const n = this.targets.broadcast({ c: 'terminate-children', tag: action.tag });
        this.log.info({ from, tag: action.tag, instances: n }, 'control TERMINATE_CHILDREN');
        break;
      }
      case 'disable-zeroconf':
      case 'enable-zeroconf': {
        const enable = action.kind === 'enable-zeroconf';
        this.log.info({ from }, enable ? 'control ENABLE_ZEROCONF' : 'control DISABLE_ZEROCONF');
        this.targets.setZeroconf?.(enable);
        break;
      }
      case 'reload-state':
        this.log.info({ from }, 'control RELOAD_STATE');
        this.targets.reloadState?.();
        break;
    }
  }

  close(): void {
    clearInterval(this.budgetTimer);
  }
}
