import type { DomainEvent, EventData } from '@fastgpu/contracts';
import { allocateTaxToLines, fixedUnits, formatMinor, HOUR_MS, minorUnits, Money, roundToMinor, splitTaxIncluded, taxOnNetMinor, toMinor } from '@fastgpu/money';
import { illegalState, validationError, type BuildEvent, type Decider } from '@fastgpu/eventsourcing';

/**
 * Credit notes, decided purely: from the finalized invoice (its lines, taxes and totals), the credit
 * notes already issued against it, and a request, to the `CreditNoteIssued` event that records the
 * note as a document — or a BillingRejection (409 for the invoice's state, 422 for the request).
 *
 * A note credits invoice lines (a quantity of GPU-hours at the line's unit price, an amount, or all
 * that is left of the line) or, as a lump sum, an amount including tax. Its net is taxed at the
 * invoice's rates, each rounded once (libs/money), and never beyond what is left of the invoice's
 * tax of that rate; the note that credits all that is left of the invoice's net takes exactly what
 * is left of each tax, so credit notes never leave a cent behind nor take one too many. Each rate's
 * tax is allocated to the note's lines by largest remainder. Time, ids and the number arrive in the
 * command; nothing here reads a clock or a database. Refusals are DomainErrors: `illegal-state`
 * (409) for the invoice's state, `validation` (422) for the request.
 */
export type CreditNoteData = EventData<'CreditNoteIssued'>;

export interface CreditableLine {
  line: number;
  kind: string;
  description: string;
  servicePeriod: string;
  quantityGpuMs: number | null;
  unitPrice: string | null;
  amount: string;
}

export interface CreditableInvoice {
  invoiceId: string;
  tenantId: string;
  number: string | null;
  status: 'draft' | 'finalized';
  settlement: 'paid' | 'void' | null;
  currency: string;
  subtotal: string;
  total: string;
  taxes: ReadonlyArray<{ name: string; rate: string; amount: string }>;
  lines: readonly CreditableLine[];
}

/** A credit note already issued against the invoice (notes issued before documents have only `amount`). */
export type PriorCreditNote = Pick<CreditNoteData, 'amount' | 'net' | 'taxes' | 'lines'>;

export type CreditNoteRequest =
  | { kind: 'lines'; lines: ReadonlyArray<{ invoiceLine: number; quantityGpuHours?: string; amount?: string }> }
  | { kind: 'amount'; amount: string };

export interface IssueCreditNote {
  request: CreditNoteRequest;
  creditNoteId: string;
  number: string;
  issuedAt: string;
  actor: string;
  reason: string;
  requestSha256: string;
}

/** GPU-hours are given to six decimals at most (micro-hours). */
const QUANTITY_DIGITS_MAX = 6;
const QUANTITY_PATTERN = /^\d+(\.\d{1,6})?$/;

const conflict = (code: string, message: string) => illegalState(code, message);
const unprocessable = (code: string, message: string, field?: string) => validationError(code, message, field);

interface Remaining {
  netMinor: bigint;
  totalMinor: bigint;
  taxesMinor: bigint[];
}

/** What is left to credit of the invoice after the prior notes (net, each tax, total). */
function remainingOf(invoice: CreditableInvoice, prior: readonly PriorCreditNote[], units: (text: string) => bigint): Remaining {
  let netMinor = units(invoice.subtotal);
  let totalMinor = units(invoice.total);
  const taxesMinor = invoice.taxes.map((t) => units(t.amount));
  const rates = invoice.taxes.map((t) => ({ name: t.name, rate: t.rate }));
  for (const note of prior) {
    totalMinor -= units(note.amount);
    // A note issued before documents has no split: it is read as tax-inclusive at the invoice's rates.
    const split = note.net === undefined ? splitTaxIncluded(units(note.amount), rates, invoice.currency) : undefined;
    netMinor -= split ? split.netMinor : units(note.net!);
    for (const [r, tax] of invoice.taxes.entries()) {
      const credited = split ? split.taxes[r]!.amountMinor : units(note.taxes?.find((t) => t.name === tax.name && t.rate === tax.rate)?.amount ?? '0');
      taxesMinor[r]! -= credited;
    }
  }
  return { netMinor, totalMinor, taxesMinor };
}

/** What is left to credit of one invoice line: its net and its GPU-milliseconds. */
function remainingOfLine(line: CreditableLine, prior: readonly PriorCreditNote[], units: (text: string) => bigint): { netMinor: bigint; quantityGpuMs: Money | null } {
  let netMinor = units(line.amount);
  let quantity = line.quantityGpuMs === null ? null : new Money(line.quantityGpuMs);
  for (const note of prior) {
    for (const credited of note.lines ?? []) {
      if (credited.invoiceLine !== line.line) continue;
      netMinor -= units(credited.net);
      if (quantity !== null && credited.quantityGpuHours !== null) quantity = quantity.minus(new Money(credited.quantityGpuHours).times(HOUR_MS));
    }
  }
  return { netMinor, quantityGpuMs: quantity };
}

function hoursFixed(quantityGpuMs: Money): string {
  return quantityGpuMs.dividedBy(HOUR_MS).toFixed(QUANTITY_DIGITS_MAX, Money.ROUND_HALF_UP);
}

export function decideCreditNoteDocument(invoice: CreditableInvoice, prior: readonly PriorCreditNote[], command: IssueCreditNote): CreditNoteData {
  if (invoice.status === 'draft') throw conflict('invoice_draft', 'credit notes correct finalized invoices; a draft still changes with its usage');
  if (invoice.settlement === 'void') throw conflict('invoice_void', 'a void invoice cannot be credited');
  const { currency } = invoice;
  const digits = minorUnits(currency);
  const amountUnits = (text: string, field?: string): bigint => {
    try {
      return fixedUnits(text, digits);
    } catch {
      throw unprocessable('amount_precision', `${text} has more than the ${digits} minor digits of ${currency}`, field);
    }
  };
  const remaining = remainingOf(invoice, prior, (t) => amountUnits(t));
  const rates = invoice.taxes.map((t) => ({ name: t.name, rate: t.rate }));

  interface Draft {
    invoiceLine: number | null;
    description: string;
    servicePeriod: string | null;
    quantityGpuHours: string | null;
    unitPrice: string | null;
    netMinor: bigint;
  }
  const drafts: Draft[] = [];
  let taxesMinor: bigint[];

  if (command.request.kind === 'amount') {
    const grossMinor = amountUnits(command.request.amount, 'amount');
    if (grossMinor <= 0n) throw unprocessable('amount_not_positive', 'a credit note amount must be positive', 'amount');
    if (grossMinor > remaining.totalMinor) throw unprocessable('credit_exceeds_invoice', `cannot credit ${command.request.amount}: only ${formatMinor(remaining.totalMinor, currency)} of the invoice total ${invoice.total} is left to credit`, 'amount');
    let netMinor: bigint;
    if (grossMinor === remaining.totalMinor) {
      netMinor = remaining.netMinor;
      taxesMinor = [...remaining.taxesMinor];
    } else {
      const split = splitTaxIncluded(grossMinor, rates, currency);
      taxesMinor = split.taxes.map((t, r) => (t.amountMinor < remaining.taxesMinor[r]! ? t.amountMinor : remaining.taxesMinor[r]!));
      netMinor = grossMinor - taxesMinor.reduce((a, b) => a + b, 0n);
      if (netMinor > remaining.netMinor) throw unprocessable('credit_exceeds_invoice', `cannot credit ${command.request.amount}: its net would exceed the ${formatMinor(remaining.netMinor, currency)} left of the invoice's net`, 'amount');
    }
    drafts.push({ invoiceLine: null, description: `Credit on invoice ${invoice.number ?? invoice.invoiceId}`, servicePeriod: null, quantityGpuHours: null, unitPrice: null, netMinor });
  } else {
    const requested = command.request.lines;
    if (requested.length === 0) throw unprocessable('no_lines', 'a credit note needs at least one line', 'lines');
    const seen = new Set<number>();
    for (const [i, ask] of requested.entries()) {
      const field = `lines[${i}]`;
      if (seen.has(ask.invoiceLine)) throw unprocessable('duplicate_line', `invoice line ${ask.invoiceLine} is credited twice in one note`, `${field}.invoiceLine`);
      seen.add(ask.invoiceLine);
      const line = invoice.lines.find((l) => l.line === ask.invoiceLine);
      if (!line) throw unprocessable('unknown_line', `invoice ${invoice.number ?? invoice.invoiceId} has no line ${ask.invoiceLine}`, `${field}.invoiceLine`);
      if (amountUnits(line.amount) <= 0n) throw unprocessable('line_not_creditable', `line ${line.line} (${line.kind}) charges nothing; only charged lines can be credited`, `${field}.invoiceLine`);
      if (ask.quantityGpuHours !== undefined && ask.amount !== undefined) throw unprocessable('quantity_and_amount', 'give a quantity or an amount for a line, not both', field);
      const left = remainingOfLine(line, prior, (t) => amountUnits(t));
      if (left.netMinor <= 0n) throw unprocessable('line_fully_credited', `line ${line.line} is already fully credited`, `${field}.invoiceLine`);
      const base = { invoiceLine: line.line, description: `Credit: ${line.description}`, servicePeriod: line.servicePeriod, unitPrice: line.unitPrice };
      if (ask.quantityGpuHours !== undefined) {
        if (!QUANTITY_PATTERN.test(ask.quantityGpuHours)) throw unprocessable('invalid_quantity', 'quantityGpuHours must be a decimal with at most 6 decimals', `${field}.quantityGpuHours`);
        if (line.quantityGpuMs === null || line.unitPrice === null || left.quantityGpuMs === null) throw unprocessable('line_has_no_quantity', `line ${line.line} has no quantity; credit an amount`, `${field}.quantityGpuHours`);
        const hours = new Money(ask.quantityGpuHours);
        if (hours.lte(0)) throw unprocessable('invalid_quantity', 'quantityGpuHours must be positive', `${field}.quantityGpuHours`);
        const leftHours = hoursFixed(left.quantityGpuMs);
        if (hours.gt(leftHours)) throw unprocessable('credit_exceeds_line', `cannot credit ${ask.quantityGpuHours} GPU-hours of line ${line.line}: ${leftHours} are left`, `${field}.quantityGpuHours`);
        // All that is left of the line: exactly its remaining net (no rounding residue).
        const all = hours.eq(leftHours);
        const netMinor = all ? left.netMinor : toMinor(roundToMinor(hours.times(line.unitPrice), currency), currency);
        drafts.push({ ...base, quantityGpuHours: hours.toFixed(QUANTITY_DIGITS_MAX), netMinor: netMinor > left.netMinor ? left.netMinor : netMinor });
      } else if (ask.amount !== undefined) {
        const netMinor = amountUnits(ask.amount, `${field}.amount`);
        if (netMinor <= 0n) throw unprocessable('amount_not_positive', 'a credited amount must be positive', `${field}.amount`);
        if (netMinor > left.netMinor) throw unprocessable('credit_exceeds_line', `cannot credit ${ask.amount} of line ${line.line}: ${formatMinor(left.netMinor, currency)} is left`, `${field}.amount`);
        drafts.push({ ...base, quantityGpuHours: null, netMinor });
      } else {
        drafts.push({ ...base, quantityGpuHours: left.quantityGpuMs === null ? null : hoursFixed(left.quantityGpuMs), netMinor: left.netMinor });
      }
    }
    const netMinor = drafts.reduce((sum, d) => sum + d.netMinor, 0n);
    if (netMinor > remaining.netMinor) throw unprocessable('credit_exceeds_invoice', `cannot credit a net of ${formatMinor(netMinor, currency)}: only ${formatMinor(remaining.netMinor, currency)} of the invoice's net ${invoice.subtotal} is left to credit`, 'lines');
    // The note that credits all that is left takes all that is left of each tax; others are taxed by the invoice rule, never beyond what is left.
    taxesMinor =
      netMinor === remaining.netMinor
        ? [...remaining.taxesMinor]
        : rates.map((r, i) => {
            const tax = taxOnNetMinor(netMinor, r.rate, currency);
            return tax < remaining.taxesMinor[i]! ? tax : remaining.taxesMinor[i]!;
          });
  }

  const netMinor = drafts.reduce((sum, d) => sum + d.netMinor, 0n);
  const totalMinor = netMinor + taxesMinor.reduce((a, b) => a + b, 0n);
  if (totalMinor > remaining.totalMinor) throw unprocessable('credit_exceeds_invoice', `cannot credit ${formatMinor(totalMinor, currency)}: only ${formatMinor(remaining.totalMinor, currency)} of the invoice total ${invoice.total} is left to credit`);
  if (taxesMinor.some((t) => t < 0n)) throw new Error(`credit note ${command.number}: a negative tax`);
  const taxes = rates.map((r, i) => ({ name: r.name, rate: r.rate, amountMinor: taxesMinor[i]! }));
  // One line takes the note's taxes as they are (a lump sum may be all tax); several share them by largest remainder.
  const perLine =
    drafts.length === 1
      ? [taxes]
      : allocateTaxToLines(
          drafts.map((d) => ({ amountMinor: d.netMinor, taxable: true })),
          taxes,
        );
  const format = (minor: bigint) => formatMinor(minor, currency);
  return {
    creditNoteId: command.creditNoteId,
    invoiceId: invoice.invoiceId,
    tenantId: invoice.tenantId,
    number: command.number,
    amount: format(totalMinor),
    currency,
    issuedAt: command.issuedAt,
    actor: command.actor,
    reason: command.reason,
    ...(invoice.number ? { invoiceNumber: invoice.number } : {}),
    lines: drafts.map((d, i) => {
      const lineTaxes = perLine[i]!;
      const taxMinor = lineTaxes.reduce((sum, t) => sum + t.amountMinor, 0n);
      return {
        line: i + 1,
        invoiceLine: d.invoiceLine,
        description: d.description.slice(0, 300),
        servicePeriod: d.servicePeriod,
        quantityGpuHours: d.quantityGpuHours,
        unitPrice: d.unitPrice,
        net: format(d.netMinor),
        taxes: lineTaxes.map((t) => ({ name: t.name, rate: t.rate, amount: format(t.amountMinor) })),
        total: format(d.netMinor + taxMinor),
      };
    }),
    net: format(netMinor),
    taxes: taxes.map((t) => ({ name: t.name, rate: t.rate, amount: format(t.amountMinor) })),
    requestSha256: command.requestSha256,
  };
}

/** The facts a credit note is decided on: the finalized invoice and the notes already issued against it. */
export interface CreditNoteState {
  invoice: CreditableInvoice;
  notes: readonly PriorCreditNote[];
}

/** Events on the invoice's subject that change what a credit note may do. */
export type CreditNoteEvent = { type: 'CreditNoteIssued'; data: CreditNoteData } | { type: 'InvoiceVoided' } | { type: 'InvoicePaid' };

/** What the invoice's subject says about crediting it: whether it was paid or voided, and the notes issued so far. */
export interface CreditNoteHistory {
  settlement: 'paid' | 'void' | null;
  notes: readonly PriorCreditNote[];
}

/** The one fold of the events that change what a credit note may do (both deciders below read it). */
function evolveHistory(history: CreditNoteHistory, event: CreditNoteEvent): CreditNoteHistory {
  switch (event.type) {
    case 'CreditNoteIssued':
      return { ...history, notes: [...history.notes, event.data] };
    case 'InvoiceVoided':
      return { ...history, settlement: 'void' };
    case 'InvoicePaid':
      return { ...history, settlement: 'paid' };
    default: {
      const unreachable: never = event;
      throw new Error(`unknown event ${JSON.stringify(unreachable)}`);
    }
  }
}

/** The credit-note decider of one finalized invoice (initialState / decide / evolve): the note as a document. */
export function creditNoteDecider(invoice: CreditableInvoice): Decider<CreditNoteState, IssueCreditNote, CreditNoteEvent> {
  return {
    initialState: () => ({ invoice, notes: [] }),
    decide: (command, state) => [{ type: 'CreditNoteIssued', data: decideCreditNoteDocument(state.invoice, state.notes, command) }],
    evolve: (state, event) => {
      const history = evolveHistory({ settlement: state.invoice.settlement, notes: state.notes }, event);
      return { invoice: { ...state.invoice, settlement: history.settlement }, notes: history.notes };
    },
  };
}

/** A credit note to issue against a finalized invoice: its frozen document's facts arrive with it. */
export interface IssueCreditNoteOn extends IssueCreditNote {
  invoice: CreditableInvoice;
}

/**
 * Credit notes on the kernel (libs/eventsourcing `handleCommand`): the state is the invoice
 * subject's history (`…billing.invoice.<id>`: its payments, void and notes), the command carries the
 * frozen invoice, and the note decided is `CreditNoteIssued` on that subject — decided again on the
 * fresh history when a pay, a void or another note landed first.
 */
export function creditNoteIssuer(build: BuildEvent): Decider<CreditNoteHistory, IssueCreditNoteOn, DomainEvent> {
  return {
    initialState: () => ({ settlement: null, notes: [] }),
    decide(command, history) {
      const invoice: CreditableInvoice = { ...command.invoice, settlement: history.settlement ?? command.invoice.settlement };
      const data = decideCreditNoteDocument(invoice, history.notes, command);
      return [build('CreditNoteIssued', data, { id: command.creditNoteId, time: command.issuedAt, tenantId: data.tenantId, correlationId: command.creditNoteId })];
    },
    evolve(history, event) {
      switch (event.type) {
        case 'CreditNoteIssued':
        case 'InvoiceVoided':
        case 'InvoicePaid':
          return evolveHistory(history, event);
        default:
          return history;
      }
    },
  };
}
