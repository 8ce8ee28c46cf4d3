import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { BillingDatabase } from '@fastgpu/db';
import type { Bus } from '@fastgpu/messaging';
import { money } from '@fastgpu/money';
import { dropRebuildTables, rebuildLedger, REBUILD_TIMEOUT_MS } from '../ledger/billing.rebuild';
import { BillingStore } from '../ledger/billing.store';
import type { InvoiceRow } from '../ledger/billing-tables';
import { statusOf } from '../invoices/invoice.reader';
import { documentSha256, type InvoiceDocument } from '../invoices/invoice-document';
import { invoiceCsv } from '../invoices/invoice-csv';
import { invoicePdf } from '../invoices/invoice-pdf';
import type { DocumentPresentation } from '../invoices/document-format';
import { creditNoteDocument, creditNoteJson } from '../credit-notes/credit-note-document';
import type { CreditNoteData } from '../credit-notes/credit-note.decider';
import type { FinanceActionRow } from '../finance-actions/finance-actions';

/**
 * `invoices verify`: rebuilds the billing ledger from the log into fresh tables (while the live
 * ones keep serving) and compares every finalized invoice, as a stream of pages in invoice-id
 * order, so memory stays flat however many invoices there are:
 * - the stored canonical JSON, byte for byte, and its SHA-256 (checked against the document);
 * - the CSV rendered from both (and the PDF with `--pdf`: the renderers are pure functions of the
 *   document, so equal JSON gives equal PDFs; rendering thousands of PDFs is the slow part);
 * - the finance actions on the invoice (payments, voids, credit notes) and every credit note's
 *   document;
 * - the number of finance actions in all.
 * Prints a line per invoice and a summary; returns the number of differences.
 */
export interface VerifyOptions {
  suffix: string;
  presentation: DocumentPresentation;
  /** Also render and compare every PDF. */
  pdf: boolean;
  /** Invoices compared per page (one query for both sides, one for their actions). */
  pageInvoices?: number;
  timeoutMs?: number;
  out(line: string): void;
}

export interface VerifyResult {
  invoices: number;
  creditNotes: number;
  differences: number;
  lastSequence: number;
  /** Time spent rebuilding the ledger from the log, and comparing (ms). */
  rebuildMs: number;
  compareMs: number;
}

/** Invoices per comparison page. */
export const VERIFY_PAGE_INVOICES = 500;

interface PairRow {
  invoice_id: string;
  number: string;
  live_document: string;
  live_sha256: string;
  rebuilt_document: string | null;
  rebuilt_sha256: string | null;
}

export async function verifyInvoices(bus: Bus, db: Kysely<BillingDatabase>, options: VerifyOptions): Promise<VerifyResult> {
  const { suffix } = options;
  const pageSize = options.pageInvoices ?? VERIFY_PAGE_INVOICES;
  try {
    const rebuildStarted = performance.now();
    const { store, lastSequence } = await rebuildLedger(bus, db, suffix, options.timeoutMs ?? REBUILD_TIMEOUT_MS);
    const compareStarted = performance.now();
    const live = new BillingStore(db, (name) => name);
    const liveInvoices = 'billing_invoices';
    const rebuiltInvoices = store.table('billing_invoices');
    let differences = 0;
    let invoices = 0;
    let creditNotes = 0;
    let after = '';
    for (;;) {
      const page = (
        await sql<PairRow>`
          SELECT l.invoice_id, l.number, l.document AS live_document, l.sha256 AS live_sha256, r.document AS rebuilt_document, r.sha256 AS rebuilt_sha256
          FROM ${sql.table(liveInvoices)} l LEFT JOIN ${sql.table(rebuiltInvoices)} r ON r.invoice_id = l.invoice_id AND r.status = 'finalized'
          WHERE l.status = 'finalized' AND l.finalized_sequence <= ${lastSequence} AND l.invoice_id > ${after}
          ORDER BY l.invoice_id LIMIT ${pageSize}`.execute(db)
      ).rows;
      if (page.length === 0) break;
      after = page[page.length - 1]!.invoice_id;
      const ids = page.map((p) => p.invoice_id);
      const [liveActions, rebuiltActions] = await Promise.all([actionsOf(live, ids, lastSequence), actionsOf(store, ids, lastSequence)]);
      for (const pair of page) {
        invoices++;
        if (pair.rebuilt_document === null) {
          differences++;
          options.out(`MISSING ${pair.number} ${pair.invoice_id}`);
          continue;
        }
        const a = JSON.parse(pair.live_document) as InvoiceDocument;
        const b = JSON.parse(pair.rebuilt_document) as InvoiceDocument;
        const [actionsA, actionsB] = [liveActions.get(pair.invoice_id) ?? [], rebuiltActions.get(pair.invoice_id) ?? []];
        let same =
          pair.live_document === pair.rebuilt_document &&
          pair.live_sha256 === pair.rebuilt_sha256 &&
          documentSha256(a) === pair.live_sha256 &&
          documentSha256(b) === pair.rebuilt_sha256 &&
          invoiceCsv(a) === invoiceCsv(b) &&
          JSON.stringify(actionsA) === JSON.stringify(actionsB);
        if (same && options.pdf) same = (await invoicePdf(a, options.presentation)).equals(await invoicePdf(b, options.presentation));
        // Every credit note against the invoice renders the same from both sides.
        const notesA = actionsA.filter((x) => x.kind === 'CreditNoteIssued');
        const notesB = actionsB.filter((x) => x.kind === 'CreditNoteIssued');
        for (const [i, note] of notesA.entries()) {
          creditNotes++;
          const other = notesB[i];
          if (!other || creditNoteJson(creditNoteDocument(note.payload as CreditNoteData, a)) !== creditNoteJson(creditNoteDocument(other.payload as CreditNoteData, b))) same = false;
        }
        if (!same) differences++;
        const view = { row: { status: 'finalized' } as InvoiceRow, settlement: actionsB.some((x) => x.kind === 'InvoiceVoided') ? ('void' as const) : actionsB.some((x) => x.kind === 'InvoicePaid') ? ('paid' as const) : null };
        const credited = notesB.reduce((sum, n) => sum.plus(String(n.payload.amount)), money('0'));
        options.out(`${same ? 'same' : 'DIFFERENT'} ${pair.number} ${pair.live_sha256} ${statusOf(view)}${credited.gt(0) ? ` credited ${credited.toString()}` : ''}`);
      }
    }
    const countActions = async (table: 'billing_finance_actions') => Number((await db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).where('sequence', '<=', lastSequence).executeTakeFirstOrThrow()).n);
    const [liveCount, rebuiltCount] = [await countActions('billing_finance_actions'), await countActions(store.table('billing_finance_actions'))];
    if (liveCount !== rebuiltCount) differences++;
    options.out(`${liveCount === rebuiltCount ? 'same' : 'DIFFERENT'} finance actions: ${liveCount} live, ${rebuiltCount} rebuilt`);
    options.out(`${creditNotes} credit note(s) compared`);
    options.out(`${invoices} finalized invoice(s) rebuilt from ${lastSequence} events: ${differences} difference(s)`);
    return { invoices, creditNotes, differences, lastSequence, rebuildMs: compareStarted - rebuildStarted, compareMs: performance.now() - compareStarted };
  } finally {
    await dropRebuildTables(db, suffix);
  }
}

/** Finance actions on some invoices up to a sequence, per invoice in log order (without the row's table-specific fields). */
async function actionsOf(store: BillingStore, invoiceIds: readonly string[], lastSequence: number): Promise<Map<string, FinanceActionRow[]>> {
  const rows = (await store.db
    .selectFrom(store.table('billing_finance_actions'))
    .selectAll()
    .where(sql<boolean>`invoice_id = ANY(${invoiceIds}::text[])`)
    .where('sequence', '<=', lastSequence)
    .orderBy('sequence')
    .execute()) as FinanceActionRow[];
  const byInvoice = new Map<string, FinanceActionRow[]>();
  for (const row of rows) {
    let list = byInvoice.get(row.invoice_id!);
    if (!list) byInvoice.set(row.invoice_id!, (list = []));
    list.push(row);
  }
  return byInvoice;
}
