import { nameId } from '@fastgpu/contracts';
import type { EventPublisher } from '@fastgpu/messaging';
import type { ReliabilityConfig } from '../reliability.config';
import type { SloState } from '../slo/slo';
import type { SlaRepository } from './sla.repository';
import { periodBounds } from './sla.period';
import { breaches, buildSlaReport, type ServedReport, type SlaReport } from './sla.report';

/**
 * The shell around the SLA report: reads facts through the repository (which names the exact
 * event window it saw), builds reports, and closes months: the final report is stored once, and each
 * breach becomes an `SlaCreditIssued` citing that report's hash and window end sequence.
 */
export class SlaService {
  constructor(
    private readonly repository: SlaRepository,
    private readonly config: ReliabilityConfig,
    private readonly publisher?: EventPublisher,
  ) {}

  private policy() {
    return { allocationAvailability: this.config.sla.allocationAvailability, apiAvailability: this.config.sla.apiAvailability, requeueTargetMs: this.config.requeueTargetMs };
  }

  /** Tenants with anything to report in the month: allocations, finished jobs, or API requests. */
  tenantsWithActivity(period: string): Promise<string[]> {
    return this.repository.tenantsWithActivity(period);
  }

  /**
   * Reports for a month: the stored final report when the month is closed, else a provisional
   * one as of `nowMs`. `tenantId` null means every tenant with activity.
   */
  async reports(period: string, tenantId: string | null, nowMs: number): Promise<ServedReport[]> {
    const tenants = tenantId ? [tenantId] : await this.tenantsWithActivity(period);
    const sloCache = new Map<number, Promise<SloState[]>>();
    const out: ServedReport[] = [];
    for (const tenant of tenants) {
      const report = (await this.repository.storedReport(tenant, period)) ?? (await this.build(tenant, period, nowMs, false, sloCache));
      out.push({ ...report, credits: await this.credits(tenant, period) });
    }
    return out;
  }

  credits(tenantId: string, period: string) {
    return this.repository.credits(tenantId, period);
  }

  /**
   * The platform's SLO states at a report's end, computed once per instant however many tenant
   * reports carry them (they are the same for every tenant).
   */
  private slosAt(asOfMs: number, cache: Map<number, Promise<SloState[]>>): Promise<SloState[]> {
    let states = cache.get(asOfMs);
    if (!states) cache.set(asOfMs, (states = this.repository.sloStates(this.config, asOfMs)));
    return states;
  }

  /** Builds one report from the read model as it stands, with the checkpoint it was read at. */
  async build(tenantId: string, period: string, nowMs: number, final: boolean, sloCache = new Map<number, Promise<SloState[]>>()): Promise<SlaReport> {
    const { endMs } = periodBounds(period);
    const asOfMs = final ? endMs : Math.min(nowMs, endMs);
    const facts = await this.repository.facts(tenantId, period, asOfMs, final);
    return buildSlaReport({ ...facts, slos: await this.slosAt(asOfMs, sloCache) }, this.policy());
  }

  /**
   * Closes a month for the given tenants (default: all with activity): stores the final report
   * once (the first instance to close it wins; a standby reads the stored one back) and issues
   * one credit per breached metric, with a deterministic id, citing that report.
   */
  async closePeriod(period: string, nowMs: number, tenantIds?: string[]): Promise<Array<{ tenantId: string; report: SlaReport; credits: string[] }>> {
    if (!this.publisher) throw new Error('closing a period needs a publisher');
    const { endMs } = periodBounds(period);
    if (nowMs < endMs) throw new Error(`period ${period} has not ended yet`);
    const tenants = tenantIds ?? (await this.tenantsWithActivity(period));
    const sloCache = new Map<number, Promise<SloState[]>>();
    const closed: Array<{ tenantId: string; report: SlaReport; credits: string[] }> = [];
    for (const tenantId of tenants) {
      const built = await this.build(tenantId, period, nowMs, true, sloCache);
      const report = await this.repository.storeFinalReport(built);
      const credits: string[] = [];
      const issued = new Set((await this.credits(tenantId, period)).map((c) => c.creditId));
      for (const breach of breaches(report)) {
        const creditId = nameId('SlaCreditIssued', tenantId, period, breach.metric);
        credits.push(creditId);
        if (issued.has(creditId)) continue;
        const event = this.publisher.build(
          'SlaCreditIssued',
          { creditId, tenantId, period, ...breach, reportHash: report.hash, windowEndSequence: report.windowEndSequence, issuedAt: new Date(nowMs).toISOString() },
          { id: creditId, time: new Date(nowMs).toISOString(), tenantId, correlationId: creditId },
        );
        await this.publisher.publish(event);
      }
      await this.repository.markCreditsPublished(tenantId, period);
      closed.push({ tenantId, report, credits });
    }
    return closed;
  }

  /** Tenants of a month without a final report, or whose credits were not all published yet. */
  async tenantsToClose(period: string): Promise<string[]> {
    const active = await this.tenantsWithActivity(period);
    if (active.length === 0) return [];
    const done = new Set(await this.repository.tenantsClosed(period));
    return active.filter((t) => !done.has(t));
  }
}
