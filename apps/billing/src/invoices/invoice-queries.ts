import { Inject, Injectable } from '@nestjs/common';
import { formatMoney, money, Money, periodIndex, type PriceVersion } from '@fastgpu/money';
import { RUNTIME, type Runtime } from '@fastgpu/runtime';
import { BILLING_OPTIONS, type BillingOptions } from '../billing.config';
import { BillingLedger } from '../ledger/billing.ledger';
import { type InvoiceDocument, type InvoiceLine } from './invoice-document';
import { buildFinalizedInvoice, buildInvoice } from './invoice-builder';
import { BillingRejection } from './invoice.decider';
import { InvoiceReader, statusOf, type InvoiceView } from './invoice.reader';

/** No such invoice for the caller (another tenant's invoice does not exist for them). */
export class InvoiceNotFound extends Error {}

export interface WhatIfLine {
  kind: string;
  servicePeriod: string;
  gpuModel: string | null;
  capacityType: string | null;
  tier: number | null;
  reference: string | null;
  currentAmount: string;
  whatIfAmount: string;
  difference: string;
}

/**
 * Invoice queries: what the routes and gRPC read of invoices, as the ledger has applied the log —
 * one invoice as the caller may see it, the evidence behind a line, a what-if under another price
 * version, a period's documents. Reads only; the commands are invoice-commands.ts.
 */
@Injectable()
export class InvoiceQueries {
  constructor(
    @Inject(RUNTIME) private readonly runtime: Runtime,
    @Inject(BillingLedger) private readonly ledger: BillingLedger,
    @Inject(BILLING_OPTIONS) readonly options: BillingOptions,
  ) {}

  reader(): InvoiceReader {
    return new InvoiceReader(this.ledger.store(), this.options.issuer);
  }

  private nowMs(): number {
    return this.runtime.clock.now().getTime();
  }

  /** An invoice as the caller may see it: another tenant's invoice does not exist for them. */
  async view(invoiceId: string, tenantScope: string | null): Promise<InvoiceView> {
    const row = await this.ledger.store().invoice(invoiceId);
    if (!row || (tenantScope !== null && row.tenant_id !== tenantScope)) throw new InvoiceNotFound(invoiceId);
    return this.reader().view(row, this.ledger.runner.lastSequence, this.nowMs());
  }

  /** The usage records and event sequences behind one line of an invoice. */
  async evidence(invoiceId: string, lineNumber: number, tenantScope: string | null) {
    const view = await this.view(invoiceId, tenantScope);
    const built = await this.reader().build(view.row, view.document.cutoffSequence, this.nowMs());
    const line = built.document.lines[lineNumber - 1];
    if (!line) throw new InvoiceNotFound(`${invoiceId} line ${lineNumber}`);
    const usageIds = built.evidence[lineNumber - 1] ?? [];
    const usage = usageIds.length
      ? await this.runtime.db.selectFrom('billing_usage').selectAll().where('usage_id', 'in', usageIds).orderBy('sequence').execute()
      : [];
    const pieces = usageIds.length
      ? await this.runtime.db.selectFrom('billing_usage_pieces').selectAll().where('invoice_id', '=', invoiceId).where('usage_id', 'in', usageIds).orderBy('sequence').orderBy('piece').execute()
      : [];
    // An SLA credit line, or one carrying an earlier invoice's SLA credit forward: the SlaCreditIssued behind it.
    const credits = (line.kind === 'sla-credit' || line.kind === 'carried-credit') && line.reference ? await this.runtime.db.selectFrom('billing_sla_credits').selectAll().where('credit_id', '=', line.reference).execute() : [];
    const sequences = new Set<number>();
    for (const u of usage) {
      sequences.add(u.sequence);
      for (const s of u.source_sequences) sequences.add(s);
    }
    for (const c of credits) sequences.add(c.sequence);
    return {
      invoiceId,
      line,
      usage: usage.map((u) => ({
        usageId: u.usage_id,
        eventId: u.event_id,
        eventSequence: u.sequence,
        sourceSequences: u.source_sequences,
        projectId: u.project_id,
        jobId: u.job_id,
        subtaskId: u.subtask_id,
        attempt: u.attempt,
        leaseId: u.lease_id,
        gpuModel: u.gpu_model,
        capacityType: u.capacity_type,
        gpus: u.gpus,
        startAt: new Date(u.start_ms).toISOString(),
        endAt: new Date(u.end_ms).toISOString(),
        gpuMs: u.gpu_ms,
        interrupted: u.interrupted,
        pieces: pieces.filter((p) => p.usage_id === u.usage_id).map((p) => ({ servicePeriod: p.service_period, startAt: new Date(p.start_ms).toISOString(), endAt: new Date(p.end_ms).toISOString() })),
      })),
      slaCredits: credits.map((c) => ({ creditId: c.credit_id, eventId: c.event_id, eventSequence: c.sequence, period: c.period, percent: c.credit_percent })),
      eventSequences: [...sequences].sort((a, b) => a - b),
    };
  }

  /** Rates an invoice's usage under one price-book version, changing nothing, and shows the difference per line. */
  async whatIf(invoiceId: string, priceBookId: string, version: number) {
    const view = await this.view(invoiceId, null);
    const store = this.ledger.store();
    const chosen: PriceVersion | undefined = (await store.priceVersions()).find((v) => v.priceBookId === priceBookId && v.version === version);
    if (!chosen) throw new BillingRejection(422, 'unknown_price_book_version', `price book ${priceBookId} has no version ${version}`, 'version');
    if (chosen.currency !== view.document.currency) throw new BillingRejection(422, 'currency_mismatch', `price book ${priceBookId} is in ${chosen.currency}, the invoice in ${view.document.currency}`, 'priceBookId');
    const row = view.row;
    const finalized = row.status === 'finalized';
    const inputs = await store.inputs(row, {
      cutoff: finalized ? row.cutoff_sequence! : view.document.cutoffSequence,
      atMs: finalized ? Date.parse(row.finalized_at!) : this.nowMs(),
      issuer: row.issuer ?? this.options.issuer,
      finalization: finalized ? { number: row.number!, finalizedAt: row.finalized_at! } : null,
    });
    const current = (finalized ? buildFinalizedInvoice(inputs, row.sha256!) : buildInvoice(inputs)).document;
    const alternative = buildInvoice({ ...inputs, fixedVersion: chosen }).document;
    const key = (l: InvoiceLine) => [l.kind, l.servicePeriod, l.gpuModel, l.capacityType, l.tier, l.reference].join('|');
    const lines = new Map<string, WhatIfLine>();
    const zero = formatMoney(new Money(0), current.currency);
    const entry = (l: InvoiceLine): WhatIfLine => {
      let e = lines.get(key(l));
      if (!e) {
        e = { kind: l.kind, servicePeriod: l.servicePeriod, gpuModel: l.gpuModel, capacityType: l.capacityType, tier: l.tier, reference: l.reference, currentAmount: zero, whatIfAmount: zero, difference: zero };
        lines.set(key(l), e);
      }
      return e;
    };
    for (const l of current.lines) entry(l).currentAmount = formatMoney(money(entry(l).currentAmount).plus(l.amount), current.currency);
    for (const l of alternative.lines) entry(l).whatIfAmount = formatMoney(money(entry(l).whatIfAmount).plus(l.amount), current.currency);
    for (const e of lines.values()) e.difference = formatMoney(money(e.whatIfAmount).minus(e.currentAmount), current.currency);
    return {
      invoiceId,
      priceBook: { priceBookId, version },
      currency: current.currency,
      lines: [...lines.values()],
      total: { current: current.total, whatIf: alternative.total, difference: formatMoney(money(alternative.total).minus(current.total), current.currency) },
      validationErrors: alternative.validationErrors,
    };
  }

  /** Every invoice of a period, as documents (drafts built as of the ledger's sequence). */
  async periodDocuments(period: string, tenantId: string | null): Promise<InvoiceDocument[]> {
    periodIndex(period);
    return this.reader().periodDocuments(period, tenantId ?? undefined, this.ledger.runner.lastSequence, this.nowMs());
  }
}

export function summary(view: InvoiceView) {
  const d = view.document;
  return {
    invoiceId: d.invoiceId,
    tenantId: d.tenant.tenantId,
    period: d.period,
    status: statusOf(view),
    number: d.number,
    revision: d.revision,
    currency: d.currency,
    subtotal: d.subtotal,
    total: d.total,
    amountDue: d.amountDue,
    credited: formatMoney(money(view.credited), d.currency),
    /** What is left to pay: the amount due less the credit notes, never negative. */
    balanceDue: view.balanceDue,
    finalizedAt: d.finalizedAt,
    cutoffSequence: d.cutoffSequence,
    priceBookVersion: view.row.price_book_version,
    sha256: view.row.sha256,
    validationErrors: d.validationErrors.length,
  };
}
