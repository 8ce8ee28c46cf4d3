import type { Kysely } from 'kysely';
import { readCheckpoint, type ReliabilityDatabase } from '@fastgpu/db';
import { EventPublisher, lastSequence, type Bus } from '@fastgpu/messaging';
import type { ReliabilityConfig } from '../reliability.config';
import { SLA_PROJECTION } from '../sla/sla.projection';
import { reportsToCsv } from '../sla/sla.csv';
import { periodOf } from '../sla/sla.period';
import { SlaRepository } from '../sla/sla.repository';
import { SlaService } from '../sla/sla.service';
import { currentSloStates } from '../slo/slo-states';

export const slaUsage = `usage: sla [--period YYYY-MM] [--tenant ID] [--format json|csv] [--close] [--slo]

Prints the SLA reports of a month (default: this month) for one tenant or every tenant with
activity, as JSON or CSV: the stored final report for a closed month, else a provisional one.
  --close   close the month now (it must have ended): store each final report once and publish
            SlaCreditIssued for each breach (needs NATS; waits for the SLA read model to catch up)
  --slo     print the current SLO states (error budgets, burn rates, page/ticket) as JSON
Exit code: 0 done, 2 usage error, 1 failure.`;

export interface SlaCliContext {
  db: Kysely<ReliabilityDatabase>;
  config: ReliabilityConfig;
  nowMs: number;
  /** Only `--close` needs the bus. */
  connectBus?(): Promise<Bus>;
  out(text: string): void;
  err(text: string): void;
}

/** How long `--close` waits for the SLA read model to reach the end of the log. */
const CATCH_UP_WAIT_MS = 60_000;

function option(args: string[], name: string): string | undefined {
  const index = args.indexOf(name);
  if (index < 0) return undefined;
  const value = args[index + 1];
  if (value === undefined || value.startsWith('--')) throw new Error(`${name} needs a value`);
  return value;
}

/** The `sla` command, testable without a process: parses args, prints, returns the exit code. */
export async function runSlaCommand(args: string[], ctx: SlaCliContext): Promise<number> {
  let period: string;
  let tenant: string | undefined;
  let format: string;
  try {
    const known = new Set(['--period', '--tenant', '--format', '--close', '--slo', '--help']);
    const unknown = args.filter((a) => a.startsWith('--') && !known.has(a));
    if (unknown.length) throw new Error(`unknown option(s) ${unknown.join(', ')}`);
    if (args.includes('--help')) {
      ctx.out(slaUsage);
      return 0;
    }
    period = option(args, '--period') ?? periodOf(ctx.nowMs);
    if (!/^\d{4}-(0[1-9]|1[0-2])$/.test(period)) throw new Error(`--period must be YYYY-MM, got ${period}`);
    tenant = option(args, '--tenant');
    format = option(args, '--format') ?? 'json';
    if (format !== 'json' && format !== 'csv') throw new Error(`--format must be json or csv, got ${format}`);
  } catch (error) {
    ctx.err((error as Error).message);
    ctx.err(slaUsage);
    return 2;
  }

  if (args.includes('--slo')) {
    ctx.out(JSON.stringify(await currentSloStates(ctx.db, ctx.config, ctx.nowMs), null, 2));
    return 0;
  }

  if (args.includes('--close')) {
    if (!ctx.connectBus) throw new Error('--close needs NATS');
    const bus = await ctx.connectBus();
    try {
      const target = await lastSequence(bus, bus.topology.streams.events);
      const deadline = Date.now() + CATCH_UP_WAIT_MS;
      for (;;) {
        const checkpoint = await readCheckpoint(ctx.db, SLA_PROJECTION);
        if (checkpoint && Number(checkpoint.last_sequence) >= target) break;
        if (Date.now() > deadline) {
          ctx.err(`the SLA read model is at ${checkpoint?.last_sequence ?? 0}, the log at ${target}: is the reliability service running? Not closing on partial data.`);
          return 1;
        }
        await new Promise((r) => setTimeout(r, 250));
      }
      const service = new SlaService(new SlaRepository(ctx.db), ctx.config, new EventPublisher(bus.js, bus.topology, 'fastgpu/reliability'));
      const closed = await service.closePeriod(period, ctx.nowMs, tenant ? [tenant] : undefined);
      ctx.out(JSON.stringify(closed.map((c) => ({ tenantId: c.tenantId, reportHash: c.report.hash, windowEndSequence: c.report.windowEndSequence, credits: c.credits })), null, 2));
      return 0;
    } finally {
      await bus.close();
    }
  }

  const reports = await new SlaService(new SlaRepository(ctx.db), ctx.config).reports(period, tenant ?? null, ctx.nowMs);
  ctx.out(format === 'csv' ? reportsToCsv(reports) : JSON.stringify({ period, reports }, null, 2));
  return 0;
}
