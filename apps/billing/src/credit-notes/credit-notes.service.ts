import { Inject, Injectable } from '@nestjs/common';
import { sql } from 'kysely';
import { nameId, type DomainEvent } from '@fastgpu/contracts';
import { conflictError, handleCommand, illegalState, JetStreamEventStream, notFoundError, type Decider } from '@fastgpu/eventsourcing';
import { publisherFor, RUNTIME, type Runtime } from '@fastgpu/runtime';
import { BILLING_OPTIONS, type BillingOptions } from '../billing.config';
import { BillingLedger } from '../ledger/billing.ledger';
import { formatInvoiceNumber } from '../ledger/invoice-ids';
import type { BillingStore } from '../ledger/billing.store';
import { lastCreditNoteSequence, type FinanceActionRow } from '../finance-actions/finance-actions';
import { InvoiceReader, type InvoiceView } from '../invoices/invoice.reader';
import { creditNoteIssuer, type CreditableInvoice, type CreditNoteData, type CreditNoteHistory, type CreditNoteRequest, type IssueCreditNoteOn } from './credit-note.decider';
import { creditNoteDocument, creditNoteRequestSha256, type CreditNoteDocument } from './credit-note-document';

/**
 * Credit notes, the shell: reads the finalized invoice as the ledger has applied it up to the
 * invoice subject's last event, runs the note on the event-sourcing kernel (`handleCommand` with
 * creditNoteIssuer: decided on the invoice subject's payments, void and notes, appended against its
 * last sequence, decided again when a pay, a void or another note landed first), and answers once
 * the ledger has applied it. Numbers (`CN-<issuer>-000001`, …) are taken one at a time per
 * issuer (in this process, and across processes by a Postgres advisory lock) and the ledger checks
 * they stay gapless.
 *
 * Ids are deterministic: with an Idempotency-Key the note's id (and event id) is
 * `nameId(CreditNoteIssued, invoice, key)`, so a retry finds it; without one, `nameId(CreditNoteIssued,
 * issuer, number)`. The same key with the same request answers the original note; with another
 * request, 409 `idempotency_key_reused`.
 */
export interface CreditNoteAnswer {
  creditNote: CreditNoteData;
  /** The invoice's amount due after every credit note against it (never negative). */
  balanceDue: string;
}

@Injectable()
export class CreditNotesService {
  private readonly events: JetStreamEventStream;
  private readonly issuer: Decider<CreditNoteHistory, IssueCreditNoteOn, DomainEvent>;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    @Inject(RUNTIME) private readonly runtime: Runtime,
    @Inject(BillingLedger) private readonly ledger: BillingLedger,
    @Inject(BILLING_OPTIONS) private readonly options: BillingOptions,
  ) {
    const publisher = publisherFor(runtime, 'billing');
    this.events = new JetStreamEventStream(runtime.bus, publisher);
    this.issuer = creditNoteIssuer((type, data, meta) => publisher.build(type, data, meta));
  }

  reader(store: BillingStore = this.ledger.store()): CreditNoteReader {
    return new CreditNoteReader(store, new InvoiceReader(store, this.options.issuer));
  }

  async issue(invoiceId: string, who: { actor: string; reason: string }, request: CreditNoteRequest, idempotencyKey?: string): Promise<CreditNoteAnswer> {
    const requestSha256 = creditNoteRequestSha256(invoiceId, request, who.reason);
    return this.serialized(() =>
      this.withIssuerLock(async () => {
        const subject = this.runtime.bus.topology.subjects.invoice(invoiceId);
        await this.ledger.waitFor(await this.events.version(subject));
        // Every note applied so far (on any invoice), for the next number.
        await this.ledger.catchUp();
        const store = this.ledger.store();
        const reader = this.reader(store);
        const view = await reader.invoices.viewOf(invoiceId, null);
        if (idempotencyKey) {
          const existing = await reader.note(nameId('CreditNoteIssued', invoiceId, idempotencyKey));
          if (existing) return this.retried(existing, requestSha256, request, who.reason, view);
        }
        if (view.row.status !== 'finalized' || !view.row.issuer) throw illegalState('invoice_draft', 'credit notes correct finalized invoices; a draft still changes with its usage');
        const issuer = view.row.issuer;
        const number = `CN-${formatInvoiceNumber(issuer, (await lastCreditNoteSequence(store, issuer)) + 1)}`;
        const creditNoteId = idempotencyKey ? nameId('CreditNoteIssued', invoiceId, idempotencyKey) : nameId('CreditNoteIssued', issuer, number);
        const issuedAt = this.runtime.clock.now().toISOString();
        const command: IssueCreditNoteOn = { invoice: creditableInvoice(view), request, creditNoteId, number, issuedAt, actor: who.actor, reason: who.reason, requestSha256 };
        const { version } = await handleCommand(this.events, this.issuer, subject, command);
        await this.ledger.waitFor(version);
        const recorded = await reader.note(creditNoteId);
        if (!recorded) throw illegalState('credit_note_refused', `the ledger did not record credit note ${number} (see the review queue)`);
        return { creditNote: recorded.payload as CreditNoteData, balanceDue: (await reader.invoices.viewOf(invoiceId, null)).balanceDue };
      }),
    );
  }

  /** A retry with a key already used: the original note for the same request, 409 for another. */
  private async retried(existing: FinanceActionRow, requestSha256: string, request: CreditNoteRequest, reason: string, view: InvoiceView): Promise<CreditNoteAnswer> {
    const payload = existing.payload as CreditNoteData;
    // Notes recorded before the request hash existed were a bare amount with a reason.
    const same = payload.requestSha256 !== undefined ? payload.requestSha256 === requestSha256 : request.kind === 'amount' && payload.reason === reason && Number(payload.amount) === Number(request.amount);
    if (!same) throw conflictError('idempotency_key_reused', 'this Idempotency-Key was used for another credit-note request; a new request needs a new key');
    return { creditNote: payload, balanceDue: view.balanceDue };
  }

  async list(filter: { tenantId: string | null; invoiceId?: string }): Promise<CreditNoteDocument[]> {
    return this.reader().documents(filter);
  }

  /** One note as its tenant (or finance) may see it: another tenant's note does not exist for them. */
  async get(creditNoteId: string, tenantScope: string | null): Promise<CreditNoteDocument> {
    const reader = this.reader();
    const row = await reader.note(creditNoteId);
    if (!row || (tenantScope !== null && row.tenant_id !== tenantScope)) throw notFoundError('credit_note_not_found', 'no such credit note');
    return reader.document(row);
  }

  private serialized<T>(work: () => Promise<T>): Promise<T> {
    const next = this.chain.then(work, work);
    this.chain = next.catch(() => undefined);
    return next;
  }

  /** Across billing processes on one Postgres, one credit note at a time per issuer (PGlite is one process already). */
  private async withIssuerLock<T>(work: () => Promise<T>): Promise<T> {
    if (!this.runtime.config.databaseUrl) return work();
    const key = `fastgpu.billing.credit-notes.${this.options.issuer}`;
    return this.runtime.db.connection().execute(async (conn) => {
      await sql`SELECT pg_advisory_lock(hashtext(${key}))`.execute(conn);
      try {
        return await work();
      } finally {
        await sql`SELECT pg_advisory_unlock(hashtext(${key}))`.execute(conn);
      }
    });
  }

}

/** The facts of a finalized invoice a credit note is decided on. */
export function creditableInvoice(view: InvoiceView): CreditableInvoice {
  const doc = view.document;
  return {
    invoiceId: doc.invoiceId,
    tenantId: doc.tenant.tenantId,
    number: doc.number,
    status: view.row.status,
    settlement: view.settlement,
    currency: doc.currency,
    subtotal: doc.subtotal,
    total: doc.total,
    taxes: doc.taxes,
    lines: doc.lines.map((l) => ({ line: l.line, kind: l.kind, description: l.description, servicePeriod: l.servicePeriod, quantityGpuMs: l.quantityGpuMs, unitPrice: l.unitPrice, amount: l.amount })),
  };
}

/**
 * Reads credit notes from the finance actions the ledger folded (live or rebuilt tables alike) and
 * renders them with the documents of the invoices they correct.
 */
export class CreditNoteReader {
  constructor(
    readonly store: BillingStore,
    readonly invoices: InvoiceReader,
  ) {}

  async note(creditNoteId: string): Promise<FinanceActionRow | undefined> {
    return (await this.store.db
      .selectFrom(this.store.table('billing_finance_actions'))
      .selectAll()
      .where('kind', '=', 'CreditNoteIssued')
      .where('action_id', '=', creditNoteId)
      .executeTakeFirst()) as FinanceActionRow | undefined;
  }

  async notesOf(invoiceId: string): Promise<FinanceActionRow[]> {
    return (await this.store.db.selectFrom(this.store.table('billing_finance_actions')).selectAll().where('kind', '=', 'CreditNoteIssued').where('invoice_id', '=', invoiceId).orderBy('sequence').execute()) as FinanceActionRow[];
  }

  async rows(filter: { tenantId: string | null; invoiceId?: string }): Promise<FinanceActionRow[]> {
    let query = this.store.db.selectFrom(this.store.table('billing_finance_actions')).selectAll().where('kind', '=', 'CreditNoteIssued');
    if (filter.tenantId) query = query.where('tenant_id', '=', filter.tenantId);
    if (filter.invoiceId) query = query.where('invoice_id', '=', filter.invoiceId);
    return (await query.orderBy('sequence').execute()) as FinanceActionRow[];
  }

  async document(row: FinanceActionRow): Promise<CreditNoteDocument> {
    const invoice = await this.invoices.store.invoice(row.invoice_id!);
    if (!invoice || invoice.status !== 'finalized') throw new Error(`credit note ${row.action_id}: invoice ${row.invoice_id} is not finalized in the ledger`);
    return creditNoteDocument(row.payload as CreditNoteData, await this.invoices.document(invoice, 0, 0));
  }

  async documents(filter: { tenantId: string | null; invoiceId?: string }): Promise<CreditNoteDocument[]> {
    const docs: CreditNoteDocument[] = [];
    for (const row of await this.rows(filter)) docs.push(await this.document(row));
    return docs;
  }
}
