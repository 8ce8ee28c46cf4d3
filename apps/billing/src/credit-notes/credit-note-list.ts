import { sql } from 'kysely';
import { z } from 'zod';
import { cursorInstantMs, nextCursorSchema, pageOf, pageParam, parseInstant, queryParam, unprocessable } from '@fastgpu/http';
import type { FinanceActionRow } from '../finance-actions/finance-actions';
import type { CreditNoteDocument } from './credit-note-document';
import type { CreditNotesService } from './credit-notes.service';

/** The list's name in its cursors: a cursor of another list is refused. */
export const CREDIT_NOTES_LIST = 'credit-notes';

const id = z.string().min(1).max(128).regex(/^[A-Za-z0-9_-]+$/);

/**
 * `GET /v1/credit-notes`: newest first by (issuedAt, creditNoteId), in pages (libs/http cursor.ts);
 * filtered by invoice, by project (the notes against invoices that bill usage of that project),
 * and by issue time `[from, to)`.
 */
export const listCreditNotesPageQuery = z.object({
  tenantId: id.optional().describe('Platform roles: one tenant (a tenant key always reads its own)'),
  invoiceId: id.optional(),
  projectId: id.optional().describe('Credit notes against invoices that bill usage of this project'),
  from: queryParam.instant().optional().describe('Credit notes issued at or after this instant (RFC 3339 with Z or ±hh:mm)'),
  to: queryParam.instant().optional().describe('Credit notes issued before this instant'),
  limit: pageParam.limit(),
  cursor: pageParam.cursor(CREDIT_NOTES_LIST, cursorInstantMs).optional(),
});
export type ListCreditNotesPageQuery = z.infer<typeof listCreditNotesPageQuery>;

/** The JSON page as documented (each note is the credit-note document, see GET /v1/credit-notes/{id}). */
export const creditNotesPage = z.object({ creditNotes: z.array(z.looseObject({ creditNoteId: z.string(), number: z.string(), invoiceId: z.string(), issuedAt: z.string() })), nextCursor: nextCursorSchema });

/** One page of credit-note documents for a scope (a tenant, or every tenant for finance). */
export async function creditNotePage(creditNotes: CreditNotesService, scope: string | null, query: ListCreditNotesPageQuery): Promise<{ creditNotes: CreditNoteDocument[]; nextCursor: string | null }> {
  const fromMs = query.from === undefined ? undefined : parseInstant(query.from, 'from');
  const toMs = query.to === undefined ? undefined : parseInstant(query.to, 'to');
  if (fromMs !== undefined && toMs !== undefined && toMs <= fromMs) throw unprocessable('to: must be after from', 'to');
  const reader = creditNotes.reader();
  const store = reader.store;
  const actions = store.table('billing_finance_actions');
  let q = store.db
    .selectFrom(actions)
    .selectAll()
    .where('kind', '=', 'CreditNoteIssued')
    .orderBy('at_ms', 'desc')
    .orderBy(sql`action_id COLLATE "C"`, 'desc')
    .limit(query.limit + 1);
  if (scope !== null) q = q.where('tenant_id', '=', scope);
  if (query.invoiceId) q = q.where('invoice_id', '=', query.invoiceId);
  if (fromMs !== undefined) q = q.where('at_ms', '>=', fromMs);
  if (toMs !== undefined) q = q.where('at_ms', '<', toMs);
  if (query.projectId) {
    q = q.where(
      sql<boolean>`EXISTS (SELECT 1 FROM ${sql.table(store.table('billing_usage_pieces'))} AS p JOIN ${sql.table(store.table('billing_usage'))} AS u ON u.usage_id = p.usage_id WHERE p.invoice_id = ${sql.ref(`${actions}.invoice_id`)} AND u.project_id = ${query.projectId})`,
    );
  }
  if (query.cursor) q = q.where(sql<boolean>`(at_ms, action_id COLLATE "C") < (${query.cursor.time}, ${query.cursor.id})`);
  const rows = (await q.execute()) as FinanceActionRow[];
  const page = pageOf(rows, query.limit, CREDIT_NOTES_LIST, (row) => ({ time: Number(row.at_ms), id: row.action_id }));
  const docs: CreditNoteDocument[] = [];
  for (const row of page.rows) docs.push(await reader.document(row));
  return { creditNotes: docs, nextCursor: page.nextCursor };
}
