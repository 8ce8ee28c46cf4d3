import { sql } from 'kysely';
import { nameId, type StoredEvent } from '@fastgpu/contracts';
import type { Projection, ProjectionContext, ProjectionTransaction } from '@fastgpu/messaging';
import { endpointWants, webhookMessages, WEBHOOK_SOURCE_TYPES, type DraftChange, type LedgerFacts, type PiecePlacement } from './webhook-events';

/**
 * The webhook outbox: a projection of the domain stream that, on the live path only, turns each
 * billing event into its webhook messages (webhook-events.ts) and enqueues one delivery per message
 * and interested endpoint, in the transaction that moves its checkpoint. A delivery is keyed by
 * (message id, endpoint) and a message id by its event id, so an event applied again — a replay
 * from an older checkpoint, a redelivered message — enqueues nothing twice; a rebuild (`live`
 * false) enqueues nothing at all. An endpoint gets events after the stream sequence it was
 * registered at, never older history.
 *
 * What the ledger made of an event (which invoice a usage record landed on, whether a finance
 * action was recorded) is read from the ledger's tables once the ledger has applied the batch.
 */
export const WEBHOOK_PROJECTION = 'billing-webhooks';

export interface WebhookProjectionDeps {
  /** Resolves once the billing ledger has applied everything up to `sequence`. */
  awaitLedger(sequence: number): Promise<void>;
  nowMs(): number;
}

interface EndpointRow {
  endpoint_id: string;
  tenant_id: string | null;
  event_types: string[];
  from_sequence: number;
}

async function usageFacts(trx: ProjectionTransaction, stored: StoredEvent): Promise<LedgerFacts> {
  const pieces = await trx
    .selectFrom('billing_usage_pieces as p')
    .innerJoin('billing_invoices as i', 'i.invoice_id', 'p.invoice_id')
    .select(['p.invoice_id', 'p.service_period', 'i.period'])
    .where('p.event_id', '=', stored.event.id)
    .orderBy('p.piece')
    .execute();
  const placements: PiecePlacement[] = pieces.map((p) => ({ invoiceId: p.invoice_id as string, invoicePeriod: p.period, servicePeriod: p.service_period }));
  const reviewed = await trx.selectFrom('billing_review_queue').select(['service_period', 'reason']).where('event_id', '=', stored.event.id).where('kind', '=', 'usage').orderBy('piece').execute();
  return { kind: 'usage', drafts: await draftsChanged(trx, stored), placements, reviewed: reviewed.map((r) => ({ servicePeriod: r.service_period, reason: r.reason })) };
}

/**
 * Nothing was on the invoice before this event: the ledger applied nothing to it at an earlier
 * sequence (its audit trail, which a later move does not change), and no piece or credit was
 * assigned to it earlier (for drafts older than the audit trail).
 */
async function invoiceIsNew(trx: ProjectionTransaction, invoiceId: string, sequence: number): Promise<boolean> {
  const earlier = await sql<{ found: number }>`
    SELECT 1 AS found FROM billing_audit WHERE invoice_id = ${invoiceId} AND outcome = 'applied' AND sequence < ${sequence}
    UNION ALL SELECT 1 FROM billing_usage_pieces WHERE invoice_id = ${invoiceId} AND assigned_sequence < ${sequence}
    UNION ALL SELECT 1 FROM billing_sla_credits WHERE invoice_id = ${invoiceId} AND assigned_sequence < ${sequence}
    LIMIT 1`.execute(trx);
  return earlier.rows.length === 0;
}

/**
 * The drafts an event changed, from the ledger's audit trail: the invoices it applied something to
 * that were drafts at that event — still drafts, or finalized or deleted later. An invoice the event
 * itself finalized, deleted or replaced is not among them (its own message says so, or none does).
 */
async function draftsChanged(trx: ProjectionTransaction, stored: StoredEvent): Promise<DraftChange[]> {
  const rows = await sql<{ invoice_id: string; tenant_id: string; period: string }>`
    SELECT a.invoice_id, coalesce(i.tenant_id, d.tenant_id) AS tenant_id, coalesce(i.period, d.period) AS period
    FROM billing_audit a
    LEFT JOIN billing_invoices i ON i.invoice_id = a.invoice_id
    LEFT JOIN billing_deleted_invoices d ON d.invoice_id = a.invoice_id
    WHERE a.sequence = ${stored.sequence} AND a.event_id = ${stored.event.id} AND a.outcome = 'applied' AND a.invoice_id <> ''
      AND ((i.invoice_id IS NOT NULL AND (i.status = 'draft' OR i.finalized_sequence > ${stored.sequence})) OR (i.invoice_id IS NULL AND d.sequence > ${stored.sequence}))
    ORDER BY a.invoice_id`.execute(trx);
  const drafts: DraftChange[] = [];
  for (const r of rows.rows) drafts.push({ invoiceId: r.invoice_id, tenantId: r.tenant_id, invoicePeriod: r.period, invoiceIsNew: await invoiceIsNew(trx, r.invoice_id, stored.sequence) });
  return drafts;
}

async function ledgerFacts(trx: ProjectionTransaction, stored: StoredEvent): Promise<LedgerFacts> {
  const { event } = stored;
  switch (event.type) {
    case 'UsageRecorded':
      return usageFacts(trx, stored);
    case 'InvoiceFinalized': {
      const row = await trx.selectFrom('billing_invoices').select('invoice_id').where('finalized_event_id', '=', event.id).executeTakeFirst();
      return { kind: 'finalized', applied: row !== undefined, drafts: row ? await draftsChanged(trx, stored) : [] };
    }
    case 'InvoiceDraftDeleted': {
      // Applied when the ledger moved the draft to billing_deleted_invoices at this event (a refused deletion announces nothing).
      const row = await trx.selectFrom('billing_deleted_invoices').select('successor_invoice_id').where('event_id', '=', event.id).executeTakeFirst();
      const drafts = await draftsChanged(trx, stored);
      const successor = row && drafts.some((d) => d.invoiceId === row.successor_invoice_id) ? row.successor_invoice_id : null;
      return { kind: 'deleted', deleted: row ? { successorInvoiceId: successor } : null, drafts };
    }
    case 'SlaCreditIssued':
    case 'TenantCreated':
    case 'PriceBookPublished':
    case 'BillingPeriodClosed':
    case 'InvoiceReissued':
    case 'LateUsageBilled':
      return { kind: 'drafts', drafts: await draftsChanged(trx, stored) };
    case 'InvoicePaid':
    case 'InvoiceVoided':
    case 'CreditNoteIssued': {
      const row = await trx.selectFrom('billing_finance_actions').select('event_id').where('event_id', '=', event.id).executeTakeFirst();
      return { kind: 'finance-action', recorded: row !== undefined };
    }
    default:
      return { kind: 'none' };
  }
}

export function webhookProjection(deps: WebhookProjectionDeps, name = WEBHOOK_PROJECTION): Projection {
  return {
    name,
    types: new Set(WEBHOOK_SOURCE_TYPES),
    async apply(trx: ProjectionTransaction, events: StoredEvent[], context: ProjectionContext): Promise<void> {
      // Side effects belong to the live path: a rebuild or replay into other tables sends nothing.
      if (!context.live || events.length === 0) return;
      const endpoints = (await trx.selectFrom('billing_webhook_endpoints').select(['endpoint_id', 'tenant_id', 'event_types', 'from_sequence']).where('enabled', '=', true).execute()) as EndpointRow[];
      const last = events[events.length - 1]!.sequence;
      const relevant = endpoints.filter((e) => Number(e.from_sequence) < last);
      if (relevant.length === 0) return;
      await deps.awaitLedger(last);
      const now = new Date(deps.nowMs());
      for (const stored of events) {
        const messages = webhookMessages(stored, await ledgerFacts(trx, stored));
        for (const message of messages) {
          for (const endpoint of relevant) {
            if (!endpointWants({ tenantId: endpoint.tenant_id, eventTypes: endpoint.event_types, fromSequence: Number(endpoint.from_sequence) }, message, stored.sequence)) continue;
            await trx
              .insertInto('billing_webhook_deliveries')
              .values({
                delivery_id: nameId('webhook-delivery', message.messageId, endpoint.endpoint_id),
                message_id: message.messageId,
                endpoint_id: endpoint.endpoint_id,
                event_id: stored.event.id,
                event_sequence: stored.sequence,
                event_type: message.type,
                tenant_id: message.tenantId,
                payload: message.body,
                status: 'pending',
                attempts: 0,
                next_attempt_at: now,
                created_at: now,
              })
              .onConflict((oc) => oc.columns(['message_id', 'endpoint_id']).doNothing())
              .execute();
          }
        }
      }
    },
  };
}
