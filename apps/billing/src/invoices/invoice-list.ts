import { sql } from 'kysely';
import { z } from 'zod';
import { cursorPeriod, nextCursorSchema, pageOf, pageParam, queryParam, unprocessable } from '@fastgpu/http';
import { InvoiceNotFound, summary, type InvoiceQueries } from './invoice-queries';
import { statusOf } from './invoice.reader';

/** The list's name in its cursors: a cursor of another list is refused. */
export const INVOICES_LIST = 'invoices';

const id = z.string().min(1).max(128).regex(/^[A-Za-z0-9_-]+$/);

/**
 * `GET /v1/invoices` (and gRPC ListInvoices): newest period first, by (period, invoiceId), in pages
 * (libs/http cursor.ts); filtered by one period or a range of periods `[from, to)`, by status, and
 * by project (the invoices that bill usage of that project).
 */
export const listInvoicesQuery = z.object({
  period: queryParam.period().optional().describe('Invoices of this billing period (YYYY-MM)'),
  from: queryParam.period().optional().describe('Invoices of this billing period (YYYY-MM) and later'),
  to: queryParam.period().optional().describe('Invoices of periods before this one (YYYY-MM)'),
  projectId: id.optional().describe('Invoices that bill usage of this project'),
  tenantId: id.optional().describe('Platform roles: one tenant (a tenant key always reads its own)'),
  status: z.enum(['draft', 'finalized', 'paid', 'void']).optional(),
  limit: pageParam.limit(),
  cursor: pageParam.cursor(INVOICES_LIST, cursorPeriod).optional(),
});
export type ListInvoicesQuery = z.infer<typeof listInvoicesQuery>;

/** One invoice in a list: what `summary()` answers, every field typed (gRPC InvoiceSummary has the same). */
export const invoiceSummarySchema = z.object({
  invoiceId: z.string(),
  tenantId: z.string(),
  period: z.string(),
  status: z.enum(['draft', 'finalized', 'paid', 'void']),
  number: z.string().nullable(),
  revision: z.number().int(),
  currency: z.string(),
  subtotal: z.string(),
  total: z.string(),
  amountDue: z.string(),
  credited: z.string(),
  /** What is left to pay: the amount due less the credit notes against the invoice, never negative. */
  balanceDue: z.string(),
  finalizedAt: z.string().nullable(),
  cutoffSequence: z.number().int(),
  priceBookVersion: z.number().int().nullable(),
  sha256: z.string().nullable(),
  validationErrors: z.number().int(),
});
export type InvoiceSummary = z.infer<typeof invoiceSummarySchema>;
export const invoicesPage = z.object({ invoices: z.array(invoiceSummarySchema), nextCursor: nextCursorSchema });

/**
 * One page of invoices for a scope (a tenant, or every tenant for finance). The status is the
 * invoice's as finance actions left it (paid, void), so it is checked on the documents read: a
 * page filtered by status may hold fewer than `limit` invoices and still have a next page.
 */
export async function invoicePage(invoices: InvoiceQueries, scope: string | null, query: ListInvoicesQuery): Promise<{ invoices: InvoiceSummary[]; nextCursor: string | null }> {
  if (query.from !== undefined && query.to !== undefined && query.to <= query.from) throw unprocessable('to: must be a later period than from', 'to');
  const store = invoices.reader().store;
  const usagePieces = sql.table(store.table('billing_usage_pieces'));
  const usage = sql.table(store.table('billing_usage'));
  let q = store.db
    .selectFrom(store.table('billing_invoices'))
    .select(['invoice_id', 'period'])
    .orderBy(sql`period COLLATE "C"`, 'desc')
    .orderBy(sql`invoice_id COLLATE "C"`, 'desc')
    .limit(query.limit + 1);
  if (scope !== null) q = q.where('tenant_id', '=', scope);
  // Periods are YYYY-MM: their text order is their time order.
  if (query.period) q = q.where('period', '=', query.period);
  if (query.from) q = q.where('period', '>=', query.from);
  if (query.to) q = q.where('period', '<', query.to);
  if (query.projectId) {
    q = q.where(
      sql<boolean>`EXISTS (SELECT 1 FROM ${usagePieces} AS p JOIN ${usage} AS u ON u.usage_id = p.usage_id WHERE p.invoice_id = ${sql.ref(`${store.table('billing_invoices')}.invoice_id`)} AND u.project_id = ${query.projectId})`,
    );
  }
  if (query.cursor) q = q.where(sql<boolean>`(period COLLATE "C", invoice_id COLLATE "C") < (${query.cursor.time}, ${query.cursor.id})`);
  const rows = (await q.execute()) as Array<{ invoice_id: string; period: string }>;
  const page = pageOf(rows, query.limit, INVOICES_LIST, (row) => ({ time: row.period, id: row.invoice_id }));
  const out: InvoiceSummary[] = [];
  for (const row of page.rows) {
    let view;
    try {
      view = await invoices.view(row.invoice_id, scope);
    } catch (error) {
      // A draft deleted since the page was read is no longer an invoice.
      if (error instanceof InvoiceNotFound) continue;
      throw error;
    }
    if (query.status && statusOf(view) !== query.status) continue;
    out.push(summary(view));
  }
  return { invoices: out, nextCursor: page.nextCursor };
}
