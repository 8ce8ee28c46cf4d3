import type { StoredEvent } from '@fastgpu/contracts';
import { gpuMs, gpuMsOfDuration } from '@fastgpu/money';
import type { TenantInfo } from '../invoices/invoice-document';
import { ACCRUAL_OVERRUN_PIECE, closeAllocation } from './accrual-ledger';
import { stopPieces } from './accrual';
import type { PieceRow } from './billing-tables';
import type { LedgerContext } from './ledger-context';

/**
 * The ledger's side of usage and SLA credits (docs/billing.md, "Invoice lifecycle"): a
 * `UsageRecorded` is checked (GPU-ms = GPUs × duration), ends its allocation for accrual, and is
 * split into period pieces, each put on the invoice that bills its period (a later draft as an
 * adjustment when the period is finalized, the review queue when too late) and rated; usage of a
 * tenant billing does not know yet waits for its `TenantCreated`. An `SlaCreditIssued` goes on the
 * invoice of its period the same way. A repeated id is a duplicate (same payload) or a conflict.
 */
/** What splitting reads of a usage record (a `billing_usage` row). */
interface UsageToSplit {
  event_id: string;
  usage_id: string;
  gpu_model: string;
  capacity_type: string;
  gpus: number;
  start_ms: number;
  end_ms: number;
  interrupted: boolean;
  sequence: number;
  accrued_from_ms: number | null;
  accrued_until_ms: number | null;
}

/** What a review-queue item of usage keeps of the piece it would bill. */
export type ReviewedPiece = Pick<PieceRow, 'gpu_model' | 'capacity_type' | 'gpus' | 'start_ms' | 'end_ms' | 'allocation_start_ms' | 'allocation_end_ms' | 'interrupted'>;

export function reviewedPiece(p: ReviewedPiece): ReviewedPiece {
  return { gpu_model: p.gpu_model, capacity_type: p.capacity_type, gpus: p.gpus, start_ms: p.start_ms, end_ms: p.end_ms, allocation_start_ms: p.allocation_start_ms, allocation_end_ms: p.allocation_end_ms, interrupted: p.interrupted };
}

/** Splits a tenant's not-yet-split usage into period pieces and puts each on its invoice. */
export async function splitPending(ledger: LedgerContext, tenantId: string, assignedSequence: number): Promise<void> {
  const tenant = await ledger.store.tenant(tenantId);
  if (!tenant) return;
  const usage = (await ledger.trx.selectFrom(ledger.t('billing_usage')).selectAll().where('tenant_id', '=', tenantId).where('split', '=', false).orderBy('sequence').execute()) as UsageToSplit[];
  for (const u of usage) {
    await splitUsage(ledger, tenant, u, assignedSequence);
    await ledger.trx.updateTable(ledger.t('billing_usage')).set({ split: true }).where('event_id', '=', u.event_id).execute();
  }
}

/** Splits one usage record of a known tenant into period pieces and puts each on its invoice. */
async function splitUsage(ledger: LedgerContext, tenant: TenantInfo, u: UsageToSplit, assignedSequence: number): Promise<void> {
  const tenantId = tenant.tenantId;
  const accrued = u.accrued_until_ms === null ? null : { startMs: Number(u.accrued_from_ms), endMs: Number(u.accrued_until_ms) };
  const { pieces, overrunMs } = stopPieces(u.start_ms, u.end_ms, accrued, tenant.billingTimeZone);
  if (overrunMs > 0) {
    const reason = `accrued at period close to ${new Date(accrued!.endMs).toISOString()} from ${new Date(accrued!.startMs).toISOString()}, but the allocation ran ${new Date(u.start_ms).toISOString()} to ${new Date(u.end_ms).toISOString()}: ${gpuMsOfDuration(u.gpus, overrunMs)} GPU-ms were billed that it did not use`;
    await ledger.review(u.event_id, ACCRUAL_OVERRUN_PIECE, 'accrual-overrun', tenantId, u.usage_id, pieces[0]?.period ?? '', reason, u.sequence);
  }
  for (const [index, piece] of pieces.entries()) {
    const target = await ledger.target(tenantId, piece.period, true);
    if ('review' in target) {
      const reviewed = { gpu_model: u.gpu_model, capacity_type: u.capacity_type, gpus: u.gpus, start_ms: piece.startMs, end_ms: piece.endMs, allocation_start_ms: u.start_ms, allocation_end_ms: u.end_ms, interrupted: u.interrupted };
      await ledger.review(u.event_id, index, 'usage', tenantId, u.usage_id, piece.period, target.review, u.sequence, reviewed);
      continue;
    }
    const pieceRow: PieceRow = {
      event_id: u.event_id,
      piece: index,
      usage_id: u.usage_id,
      tenant_id: tenantId,
      service_period: piece.period,
      invoice_id: target.invoiceId,
      gpu_model: u.gpu_model,
      capacity_type: u.capacity_type,
      gpus: u.gpus,
      start_ms: piece.startMs,
      end_ms: piece.endMs,
      allocation_start_ms: u.start_ms,
      allocation_end_ms: u.end_ms,
      interrupted: u.interrupted,
      sequence: u.sequence,
      assigned_sequence: Math.max(u.sequence, assignedSequence),
    };
    await ledger.trx.insertInto(ledger.t('billing_usage_pieces')).values(pieceRow).execute();
    await ledger.writeParts([pieceRow], tenant.currency);
  }
}

/** A `UsageRecorded`: checked, its allocation ended, stored once, split onto invoices when its tenant is known. */
export async function applyUsageRecorded(ledger: LedgerContext, { event, sequence }: StoredEvent<'UsageRecorded'>): Promise<void> {
    const d = event.data;
    const startMs = Date.parse(d.startAt);
    const endMs = Date.parse(d.endAt);
    const expectedGpuMs = endMs < startMs ? null : gpuMs(d.gpus, startMs, endMs);
    if (expectedGpuMs === null || d.gpuMs !== expectedGpuMs) {
      throw new Error(`UsageRecorded ${event.id}: gpuMs ${d.gpuMs} is not gpus × (end − start) = ${expectedGpuMs ?? 'nothing: it ends before it starts'}`);
    }
    const allocation = await closeAllocation(ledger, d, sequence);
    // A known tenant has no usage left to split (its TenantCreated split what waited for it):
    // this record is split at once, so it is stored split.
    const tenant = await ledger.store.tenant(d.tenantId);
    const usage: UsageToSplit = {
      event_id: event.id,
      usage_id: d.usageId,
      gpu_model: d.gpuModel,
      capacity_type: d.capacityType,
      gpus: d.gpus,
      start_ms: startMs,
      end_ms: endMs,
      interrupted: d.interrupted,
      sequence,
      accrued_from_ms: allocation?.accruedFromMs ?? null,
      accrued_until_ms: allocation?.accruedUntilMs ?? null,
    };
    const inserted = await ledger.trx
      .insertInto(ledger.t('billing_usage'))
      .values({
        event_id: event.id,
        usage_id: d.usageId,
        tenant_id: d.tenantId,
        project_id: d.projectId,
        job_id: d.jobId ?? null,
        subtask_id: d.subtaskId ?? null,
        attempt: d.attempt ?? null,
        lease_id: d.leaseId ?? null,
        gpu_model: d.gpuModel,
        capacity_type: d.capacityType,
        gpus: d.gpus,
        start_ms: startMs,
        end_ms: endMs,
        gpu_ms: d.gpuMs,
        interrupted: d.interrupted,
        source_sequences: JSON.stringify(d.sourceSequences),
        sequence,
        allocation_key: allocation?.allocationKey ?? null,
        accrued_from_ms: allocation?.accruedFromMs ?? null,
        accrued_until_ms: allocation?.accruedUntilMs ?? null,
        split: tenant !== undefined,
      })
      .onConflict((oc) => oc.doNothing())
      .executeTakeFirst();
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 0) {
      const seen = await ledger.trx.selectFrom(ledger.t('billing_usage')).selectAll().where((eb) => eb.or([eb('event_id', '=', event.id), eb('usage_id', '=', d.usageId)])).executeTakeFirstOrThrow();
      const same =
        seen.event_id === event.id ||
        (seen.tenant_id === d.tenantId && Number(seen.start_ms) === startMs && Number(seen.end_ms) === endMs && seen.gpus === d.gpus && seen.gpu_model === d.gpuModel && seen.capacity_type === d.capacityType && seen.interrupted === d.interrupted);
      ledger.repeated(same, null, d.tenantId, `usage ${d.usageId} (first: event ${seen.event_id}, sequence ${seen.sequence})`);
      return;
    }
    if (tenant) await splitUsage(ledger, tenant, usage, sequence);
    return;
}

/** An `SlaCreditIssued`: on the invoice of its period (or the review queue), once. */
export async function applySlaCreditIssued(ledger: LedgerContext, { event, sequence }: StoredEvent<'SlaCreditIssued'>): Promise<void> {
    const d = event.data;
    const seen = await ledger.trx.selectFrom(ledger.t('billing_sla_credits')).selectAll().where((eb) => eb.or([eb('event_id', '=', event.id), eb('credit_id', '=', d.creditId)])).executeTakeFirst();
    const reviewed = seen ? undefined : await ledger.trx.selectFrom(ledger.t('billing_review_queue')).selectAll().where('event_id', '=', event.id).executeTakeFirst();
    if (seen) {
      ledger.repeated(seen.event_id === event.id || (seen.tenant_id === d.tenantId && seen.period === d.period && seen.credit_percent === d.creditPercent), null, d.tenantId, `SLA credit ${d.creditId} (first: event ${seen.event_id}, sequence ${seen.sequence})`);
      return;
    }
    if (reviewed) {
      ledger.audit('duplicate', null, d.tenantId, `event ${event.id} already in review`);
      return;
    }
    const target = await ledger.target(d.tenantId, d.period);
    if ('review' in target) {
      await ledger.review(event.id, 0, 'sla-credit', d.tenantId, d.creditId, d.period, target.review, sequence);
      return;
    }
    await ledger.trx
      .insertInto(ledger.t('billing_sla_credits'))
      .values({
        event_id: event.id,
        credit_id: d.creditId,
        tenant_id: d.tenantId,
        period: d.period,
        metric: d.metric,
        measured: d.measured,
        target: d.target,
        credit_percent: d.creditPercent,
        invoice_id: target.invoiceId,
        sequence,
        assigned_sequence: sequence,
      })
      .execute();
    ledger.audit('applied', target.invoiceId, d.tenantId);
    return;
}
