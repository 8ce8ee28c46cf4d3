import { notFoundError } from '@fastgpu/eventsourcing';
import { formatMoney, money, Money, periodBounds, sumMoney } from '@fastgpu/money';
import { BillingStore } from '../ledger/billing.store';
import { RUN_CHUNK_INVOICES } from '../ledger/period-run';
import type { InvoiceRow } from '../ledger/billing-tables';
import { actionsForInvoice, type FinanceActionRow } from '../finance-actions/finance-actions';
import { assertDocument, documentSha256, type BuiltInvoice, type InvoiceDocument } from './invoice-document';
import { buildFinalizedInvoice, buildInvoice } from './invoice-builder';
import { creditedTotal, type InvoiceFacts } from './invoice.decider';

/**
 * Reads invoices as documents, for the API and the CLI alike: a finalized invoice is its frozen
 * canonical document (checked against its SHA-256 when read back); a draft is built on the spot
 * from the ledger as of the ledger's sequence.
 */
export interface InvoiceView {
  row: InvoiceRow;
  document: InvoiceDocument;
  actions: FinanceActionRow[];
  settlement: 'paid' | 'void' | null;
  credited: string;
  /**
   * What is left to pay: the amount due less every credit note against the invoice and the payment
   * recorded, never negative (a credit beyond it is owed back); nothing on a void invoice.
   */
  balanceDue: string;
}

export type InvoiceStatus = 'draft' | 'finalized' | 'paid' | 'void';

export class InvoiceReader {
  constructor(
    readonly store: BillingStore,
    readonly issuer: string,
  ) {}

  /** Rebuilds the document (with evidence) from the ledger; a finalized invoice must rebuild to its stored hash. */
  async build(row: InvoiceRow, draftCutoff: number, nowMs: number): Promise<BuiltInvoice> {
    if (row.status === 'finalized') {
      const built = buildFinalizedInvoice(
        await this.store.inputs(row, {
          cutoff: row.cutoff_sequence!,
          atMs: Date.parse(row.finalized_at!),
          issuer: row.issuer!,
          finalization: { number: row.number!, finalizedAt: row.finalized_at! },
        }),
        row.sha256!,
      );
      const sha = documentSha256(built.document);
      if (sha !== row.sha256) throw new Error(`invoice ${row.invoice_id} no longer rebuilds to its SHA-256 (${sha} ≠ ${row.sha256})`);
      return built;
    }
    return buildInvoice(await this.store.inputs(row, { cutoff: draftCutoff, atMs: nowMs, issuer: this.issuer, finalization: null }));
  }

  async document(row: InvoiceRow, draftCutoff: number, nowMs: number): Promise<InvoiceDocument> {
    if (row.status === 'finalized') {
      const doc = JSON.parse(row.document!) as InvoiceDocument;
      assertDocument(doc);
      if (documentSha256(doc) !== row.sha256) throw new Error(`invoice ${row.invoice_id}: stored document does not match its SHA-256`);
      return doc;
    }
    return (await this.build(row, draftCutoff, nowMs)).document;
  }

  async view(row: InvoiceRow, draftCutoff: number, nowMs: number): Promise<InvoiceView> {
    const document = await this.document(row, draftCutoff, nowMs);
    const actions = await actionsForInvoice(this.store, row.invoice_id);
    const settlement = actions.some((a) => a.kind === 'InvoiceVoided') ? 'void' : actions.some((a) => a.kind === 'InvoicePaid') ? 'paid' : null;
    const credited = creditedTotal(actions.filter((a) => a.kind === 'CreditNoteIssued').map((a) => String(a.payload.amount)));
    const paid = sumMoney(actions.filter((a) => a.kind === 'InvoicePaid').map((a) => money(String(a.payload.amount))));
    const left = settlement === 'void' ? money(0) : Money.max(money(document.amountDue).minus(credited).minus(paid), 0);
    const balanceDue = formatMoney(left, document.currency);
    return { row, document, actions, settlement, credited, balanceDue };
  }

  /**
   * An invoice by id as a caller may see it (another tenant's does not exist for them); a draft is
   * built as of `draftCutoff`.
   */
  async viewOf(invoiceId: string, tenantScope: string | null, draftCutoff = 0, nowMs = 0): Promise<InvoiceView> {
    const row = await this.store.invoice(invoiceId);
    if (!row || (tenantScope !== null && row.tenant_id !== tenantScope)) throw notFoundError('invoice_not_found', 'no such invoice');
    return this.view(row, draftCutoff, nowMs);
  }

  /** Invoices of a period (all tenants, or one), ordered by tenant. */
  async rowsForPeriod(period: string, tenantId?: string): Promise<InvoiceRow[]> {
    let query = this.store.db.selectFrom(this.store.table('billing_invoices')).selectAll().where('period', '=', period);
    if (tenantId) query = query.where('tenant_id', '=', tenantId);
    return (await query.orderBy('tenant_id').execute());
  }

  /**
   * Every invoice of a period as documents, in tenant order: finalized ones as frozen, drafts rated
   * together in one pass (a fixed number of queries per chunk of invoices).
   */
  async periodDocuments(period: string, tenantId: string | undefined, draftCutoff: number, nowMs: number, chunkInvoices = RUN_CHUNK_INVOICES): Promise<InvoiceDocument[]> {
    const rows = await this.rowsForPeriod(period, tenantId);
    const drafts = rows.filter((r) => r.status === 'draft');
    const built = new Map<string, InvoiceDocument>();
    for await (const batch of this.store.inputsForMany(drafts, { cutoff: draftCutoff, atMs: nowMs, issuer: this.issuer }, chunkInvoices)) {
      for (const inputs of batch) built.set(inputs.invoiceId, buildInvoice(inputs).document);
    }
    const docs: InvoiceDocument[] = [];
    for (const row of rows) docs.push(row.status === 'draft' ? built.get(row.invoice_id)! : await this.document(row, draftCutoff, nowMs));
    return docs;
  }

  /** Drafts whose grace period has passed at `asOfMs`. */
  async dueDrafts(asOfMs: number, graceMs: number): Promise<InvoiceRow[]> {
    const rows = (await this.store.db.selectFrom(this.store.table('billing_invoices')).selectAll().where('status', '=', 'draft').orderBy('period').orderBy('tenant_id').execute()) as InvoiceRow[];
    const due: InvoiceRow[] = [];
    for (const row of rows) {
      const tenant = await this.store.tenant(row.tenant_id);
      if (!tenant) continue;
      if (periodBounds(row.period, tenant.billingTimeZone).endMs + graceMs <= asOfMs) due.push(row);
    }
    return due;
  }
}

export function statusOf(view: Pick<InvoiceView, 'row' | 'settlement'>): InvoiceStatus {
  return view.settlement ?? view.row.status;
}

export function factsOf(view: InvoiceView): InvoiceFacts {
  return {
    status: view.row.status,
    settlement: view.settlement,
    validationErrors: view.document.validationErrors.length,
    total: view.document.total,
    credited: view.credited,
    lineCount: view.document.lines.length,
  };
}
