import type { Selectable } from 'kysely';
import type { StoredEvent } from '@fastgpu/contracts';
import type { BillingReviewQueueTable } from '@fastgpu/db';
import { gpuMs, splitAtPeriods } from '@fastgpu/money';
import { stopPieces } from './accrual';
import type { PieceRow } from './billing-tables';
import type { LedgerContext } from './ledger-context';
import { USAGE_KINDS } from './review-decision.decider';

/**
 * Late usage in the review queue, and finance's decisions on it (docs/billing.md, "Late usage in
 * the review queue"). `LateUsageRecorded` (metering: an external allocation reported beyond the
 * lateness horizon) is never billed automatically: each of its period pieces becomes a review item
 * (`kind: late-usage`) that keeps the piece it would bill, like usage too old for an adjustment
 * (`kind: usage`). `LateUsageBilled` puts an item's piece on an open draft of its tenant (an
 * adjustment line when the draft is of a later period); `LateUsageDismissed` closes the item
 * unbilled. A decision the log's state forbids (the item is unknown, decided already, not usage;
 * the invoice is not a current draft of the tenant) changes nothing and is noted in the audit trail.
 */
export const REVIEW_DECISION_TYPES = ['LateUsageRecorded', 'LateUsageBilled', 'LateUsageDismissed'] as const;

export async function applyLateUsageRecorded(ledger: LedgerContext, { event, sequence }: StoredEvent<'LateUsageRecorded'>): Promise<void> {
  const d = event.data;
  const startMs = Date.parse(d.startAt);
  const endMs = Date.parse(d.endAt);
  const expectedGpuMs = endMs < startMs ? null : gpuMs(d.gpus, startMs, endMs);
  if (expectedGpuMs === null || d.gpuMs !== expectedGpuMs) throw new Error(`LateUsageRecorded ${event.id}: gpuMs ${d.gpuMs} is not gpus × (end − start) = ${expectedGpuMs ?? 'nothing: it ends before it starts'}`);
  const seen = await ledger.trx.selectFrom(ledger.t('billing_review_queue')).select('event_id').where('reference_id', '=', d.usageId).where('kind', '=', 'late-usage').executeTakeFirst();
  if (seen) {
    ledger.audit('duplicate', null, d.tenantId, `late usage ${d.usageId} seen before (event ${seen.event_id})`);
    return;
  }
  const tenant = await ledger.store.tenant(d.tenantId);
  const reason = `reported late (first late report received ${d.reportedLateAt}, beyond the lateness horizon): billed only when finance decides`;
  for (const [index, piece] of splitAtPeriods(startMs, endMs, tenant?.billingTimeZone ?? 'UTC').entries()) {
    const usage = { gpu_model: d.gpuModel, capacity_type: d.capacityType, gpus: d.gpus, start_ms: piece.startMs, end_ms: piece.endMs, allocation_start_ms: startMs, allocation_end_ms: endMs, interrupted: false };
    await ledger.review(event.id, index, 'late-usage', d.tenantId, d.usageId, piece.period, reason, sequence, usage);
  }
}

type ReviewItem = Selectable<BillingReviewQueueTable>;

async function item(ledger: LedgerContext, d: { usageEventId: string; piece: number; tenantId: string }): Promise<{ item: ReviewItem } | { refusal: string }> {
  const row = (await ledger.trx.selectFrom(ledger.t('billing_review_queue')).selectAll().where('event_id', '=', d.usageEventId).where('piece', '=', d.piece).executeTakeFirst());
  if (!row || row.tenant_id !== d.tenantId) return { refusal: `no review item ${d.usageEventId}/${d.piece} of tenant ${d.tenantId}` };
  if (!USAGE_KINDS.has(row.kind)) return { refusal: `review item ${d.usageEventId}/${d.piece} is ${row.kind}, not usage` };
  if (row.resolution !== null) return { refusal: `review item ${d.usageEventId}/${d.piece} was already ${row.resolution}` };
  return { item: row };
}

/** The piece an item would bill: kept on the item, or (items queued before it was kept) recomputed from its usage record. */
async function pieceOf(ledger: LedgerContext, row: ReviewItem): Promise<Omit<PieceRow, 'invoice_id' | 'assigned_sequence'> | null> {
  const common = { event_id: row.event_id, piece: row.piece, usage_id: row.reference_id, tenant_id: row.tenant_id, service_period: row.service_period, sequence: Number(row.sequence) };
  if (row.gpu_model !== null && row.start_ms !== null) {
    return { ...common, gpu_model: row.gpu_model, capacity_type: row.capacity_type!, gpus: row.gpus!, start_ms: Number(row.start_ms), end_ms: Number(row.end_ms), allocation_start_ms: Number(row.allocation_start_ms), allocation_end_ms: Number(row.allocation_end_ms), interrupted: Boolean(row.interrupted) };
  }
  const usage = await ledger.trx.selectFrom(ledger.t('billing_usage')).selectAll().where('event_id', '=', row.event_id).executeTakeFirst();
  const tenant = await ledger.store.tenant(row.tenant_id);
  if (!usage || !tenant) return null;
  const accrued = usage.accrued_until_ms === null ? null : { startMs: Number(usage.accrued_from_ms), endMs: Number(usage.accrued_until_ms) };
  const piece = stopPieces(Number(usage.start_ms), Number(usage.end_ms), accrued, tenant.billingTimeZone).pieces[row.piece];
  if (!piece) return null;
  return { ...common, gpu_model: usage.gpu_model, capacity_type: usage.capacity_type, gpus: usage.gpus, start_ms: piece.startMs, end_ms: piece.endMs, allocation_start_ms: Number(usage.start_ms), allocation_end_ms: Number(usage.end_ms), interrupted: usage.interrupted };
}

async function resolve(ledger: LedgerContext, row: ReviewItem, resolution: 'billed' | 'dismissed', invoiceId: string | null, stored: StoredEvent): Promise<void> {
  await ledger.trx
    .updateTable(ledger.t('billing_review_queue'))
    .set({ resolution, resolved_invoice_id: invoiceId, resolved_event_id: stored.event.id, resolved_sequence: stored.sequence })
    .where('event_id', '=', row.event_id)
    .where('piece', '=', row.piece)
    .execute();
}

export async function applyLateUsageBilled(ledger: LedgerContext, stored: StoredEvent<'LateUsageBilled'>): Promise<void> {
  const d = stored.event.data;
  const found = await item(ledger, d);
  if ('refusal' in found) {
    ledger.audit('review', null, d.tenantId, `not applied: ${found.refusal}`);
    return;
  }
  const invoice = await ledger.store.invoice(d.invoiceId);
  if (!invoice || invoice.tenant_id !== d.tenantId || invoice.status !== 'draft' || invoice.replaced_by_invoice_id) {
    ledger.audit('review', null, d.tenantId, `not applied: invoice ${d.invoiceId} is not an open draft of tenant ${d.tenantId}`);
    return;
  }
  const tenant = await ledger.store.tenant(d.tenantId);
  const piece = await pieceOf(ledger, found.item);
  if (!piece || !tenant) {
    ledger.audit('review', null, d.tenantId, `not applied: the usage of review item ${d.usageEventId}/${d.piece} is unknown`);
    return;
  }
  const row: PieceRow = { ...piece, invoice_id: d.invoiceId, assigned_sequence: stored.sequence };
  await ledger.trx.insertInto(ledger.t('billing_usage_pieces')).values(row).execute();
  await ledger.writeParts([row], tenant.currency);
  await resolve(ledger, found.item, 'billed', d.invoiceId, stored);
  ledger.audit('applied', d.invoiceId, d.tenantId, `review item ${d.usageEventId}/${d.piece} (usage ${piece.usage_id} of ${piece.service_period}) billed by finance`);
}

export async function applyLateUsageDismissed(ledger: LedgerContext, stored: StoredEvent<'LateUsageDismissed'>): Promise<void> {
  const d = stored.event.data;
  const found = await item(ledger, d);
  if ('refusal' in found) {
    ledger.audit('review', null, d.tenantId, `not applied: ${found.refusal}`);
    return;
  }
  await resolve(ledger, found.item, 'dismissed', null, stored);
}
