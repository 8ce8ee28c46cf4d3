import { deriveId, type StoredEvent } from '@fastgpu/contracts';
import { periodBounds, splitAtPeriods } from '@fastgpu/money';
import { accrualRange, allocationOf, emptyAllocation, evolveAllocation, leaseKey, loseNode, OPEN_ALLOCATION_END_MS, subtaskKey, type OpenAllocation } from './accrual';
import { allocationFromRow, allocationToRow, type PieceRow } from './billing-tables';
import type { LedgerContext } from './ledger-context';

/**
 * The ledger's side of accrual (accrual.ts has the pure rules; docs/billing.md, "Accrual at period
 * close"): it follows which allocations are running (`billing_open_allocations`), a `UsageRecorded`
 * ends one for good, a node's loss ends those on it, and `BillingPeriodClosed` cuts every running
 * allocation of the tenant at the period's end onto the invoices of the periods it covers.
 */

/** Review-queue piece number of an accrual overrun (accrued time after the allocation's end). */
export const ACCRUAL_OVERRUN_PIECE = -1;

async function allocation(ledger: LedgerContext, key: string): Promise<OpenAllocation | undefined> {
  const row = await ledger.trx.selectFrom(ledger.t('billing_open_allocations')).selectAll().where('allocation_key', '=', key).executeTakeFirst();
  return row ? allocationFromRow(row) : undefined;
}

async function saveAllocation(ledger: LedgerContext, a: OpenAllocation, sequence: number): Promise<void> {
  const row = { ...allocationToRow(a), sequence };
  await ledger.trx
    .insertInto(ledger.t('billing_open_allocations'))
    .values(row)
    .onConflict((oc) => oc.column('allocation_key').doUpdateSet(row))
    .execute();
}

/** Folds an event that opens or ends an allocation (accrual.ts has the rules). */
export async function followAllocation(ledger: LedgerContext, stored: StoredEvent): Promise<void> {
  const of = allocationOf(stored)!;
  const current = (await allocation(ledger, of.key)) ?? emptyAllocation(of.key, of.kind);
  const next = evolveAllocation(current, stored);
  if (JSON.stringify(next) !== JSON.stringify(current)) await saveAllocation(ledger, next, stored.sequence);
}

/**
 * A UsageRecorded ends its allocation for good; returns it (with the range period closes already
 * cut) when the ledger knew it. Sub-tasks and leases are found by their ids, an external
 * allocation by its start event, which is among the usage's source sequences.
 */
export async function closeAllocation(ledger: LedgerContext, d: { tenantId: string; subtaskId?: string; attempt?: number; leaseId?: string; sourceSequences: number[] }, sequence: number): Promise<OpenAllocation | undefined> {
  let found: OpenAllocation | undefined;
  if (d.subtaskId && d.attempt) found = await allocation(ledger, subtaskKey(d.subtaskId, d.attempt));
  else if (d.leaseId) found = await allocation(ledger, leaseKey(d.leaseId));
  else if (d.sourceSequences.length) {
    const row = await ledger.trx
      .selectFrom(ledger.t('billing_open_allocations'))
      .selectAll()
      .where('kind', '=', 'external')
      .where('tenant_id', '=', d.tenantId)
      .where('start_sequence', 'in', d.sourceSequences)
      .orderBy('allocation_key')
      .executeTakeFirst();
    found = row ? allocationFromRow(row) : undefined;
  }
  if (!found || found.tenantId !== d.tenantId) return undefined;
  if (!found.ended) await saveAllocation(ledger, { ...found, ended: true }, sequence);
  return found;
}

/**
 * A period close: every running allocation of the tenant is cut at the period's end, from where
 * the last cut stopped, onto the invoice of each period it covers (the closing period's draft;
 * an earlier period already finalized takes it as late usage, like any).
 */
export async function closePeriod(ledger: LedgerContext, { event, sequence }: StoredEvent<'BillingPeriodClosed'>): Promise<void> {
  const d = event.data;
  const tenant = await ledger.store.tenant(d.tenantId);
  if (!tenant) throw new Error(`BillingPeriodClosed ${event.id}: tenant ${d.tenantId} is unknown to billing`);
  const periodEndMs = periodBounds(d.period, tenant.billingTimeZone).endMs;
  // A close before the period's end would bill time not yet used: it cuts nothing.
  if (Date.parse(d.closedAt) < periodEndMs) {
    await ledger.review(event.id, 0, 'period-close', d.tenantId, event.id, d.period, `closed at ${d.closedAt}, before the period ends (${new Date(periodEndMs).toISOString()}): nothing accrued`, sequence);
    return;
  }
  const rows = await ledger.trx.selectFrom(ledger.t('billing_open_allocations')).selectAll().where('tenant_id', '=', d.tenantId).where('ended', '=', false).orderBy('allocation_key').execute();
  for (const a of rows.map(allocationFromRow)) {
    const range = accrualRange(a, periodEndMs);
    if (!range) continue;
    const accrualId = deriveId(event.id, `accrual:${a.allocationKey}`);
    await ledger.trx
      .insertInto(ledger.t('billing_accruals'))
      .values({ accrual_id: accrualId, allocation_key: a.allocationKey, tenant_id: d.tenantId, period: d.period, close_event_id: event.id, gpu_model: a.gpuModel!, capacity_type: a.capacityType!, gpus: a.gpus!, start_ms: range.fromMs, end_ms: range.toMs, sequence })
      .execute();
    for (const [index, piece] of splitAtPeriods(range.fromMs, range.toMs, tenant.billingTimeZone).entries()) {
      const target = await ledger.target(d.tenantId, piece.period, true);
      if ('review' in target) {
        const reviewed = { gpu_model: a.gpuModel!, capacity_type: a.capacityType!, gpus: a.gpus!, start_ms: piece.startMs, end_ms: piece.endMs, allocation_start_ms: a.startMs!, allocation_end_ms: OPEN_ALLOCATION_END_MS, interrupted: false };
        await ledger.review(accrualId, index, 'usage', d.tenantId, accrualId, piece.period, target.review, sequence, reviewed);
        continue;
      }
      const pieceRow: PieceRow = {
        event_id: accrualId,
        piece: index,
        usage_id: accrualId,
        tenant_id: d.tenantId,
        service_period: piece.period,
        invoice_id: target.invoiceId,
        gpu_model: a.gpuModel!,
        capacity_type: a.capacityType!,
        gpus: a.gpus!,
        start_ms: piece.startMs,
        end_ms: piece.endMs,
        allocation_start_ms: a.startMs!,
        allocation_end_ms: OPEN_ALLOCATION_END_MS,
        interrupted: false,
        sequence,
        assigned_sequence: sequence,
      };
      await ledger.trx.insertInto(ledger.t('billing_usage_pieces')).values(pieceRow).execute();
      await ledger.writeParts([pieceRow], tenant.currency);
    }
    await saveAllocation(ledger, { ...a, accruedFromMs: a.accruedFromMs ?? range.fromMs, accruedUntilMs: range.toMs }, sequence);
  }
}

/** A node's loss ends every allocation on it that is not external (accrual.ts `loseNode`). */
export async function loseNodeAllocations(ledger: LedgerContext, { event, sequence }: StoredEvent<'NodeLost'>): Promise<void> {
    const rows = await ledger.trx.selectFrom(ledger.t('billing_open_allocations')).selectAll().where('node_id', '=', event.data.nodeId).where('ended', '=', false).orderBy('allocation_key').execute();
    for (const row of rows) await saveAllocation(ledger, loseNode(allocationFromRow(row)), sequence);
}
