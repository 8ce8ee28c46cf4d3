import { Controller, Get, Inject, Param, Query, UseGuards } from '@nestjs/common';
import { z } from 'zod';
import { ApiKeyGuard, CurrentPrincipal, Roles, tenantScope, type Principal } from '@fastgpu/auth';
import { ApiDoc, notFound, parseInput } from '@fastgpu/http';
import { RUNTIME, type Runtime } from '@fastgpu/runtime';
import { idSchema } from '@fastgpu/contracts';
import { BillingLedger } from './billing.ledger';
import { auditPageResponse } from './audit.responses';
import type { AuditRow } from './billing-audit';

/** Rows of the audit trail per page, at most. */
export const AUDIT_PAGE_MAX = 1000;

const auditPage = {
  /** Rows after this stream sequence (the `next` of the previous page). */
  after: z.coerce.number().int().nonnegative().default(0),
  limit: z.coerce.number().int().min(1).max(AUDIT_PAGE_MAX).default(200),
};
export const invoiceAuditQuery = z.object(auditPage).strict();
export const tenantAuditQuery = z.object({ ...auditPage, tenantId: idSchema.optional() }).strict();

/**
 * The audit trail (`billing_audit`): the events behind an invoice, or a tenant's billing, each
 * with what became of it — applied, duplicate, conflict, review, late — in log order. Finance
 * reads any; a tenant reads its own (another tenant's invoice answers 404, like a missing one).
 */
@Controller()
@UseGuards(ApiKeyGuard)
@Roles('tenant', 'finance')
export class BillingAuditController {
  constructor(
    @Inject(RUNTIME) private readonly runtime: Runtime,
    @Inject(BillingLedger) private readonly ledger: BillingLedger,
  ) {}

  @Get('v1/invoices/:invoiceId/audit')
  @ApiDoc({ summary: 'The events behind an invoice (deleted drafts included), in log order, with what became of each', query: invoiceAuditQuery, response: auditPageResponse, errors: { 404: 'no such invoice for this caller' }, tags: ['billing'] })
  async invoice(@CurrentPrincipal() principal: Principal, @Param('invoiceId') invoiceId: string, @Query() query: unknown) {
    const q = parseInput(invoiceAuditQuery, query, 'query');
    await this.ledger.catchUp();
    const scope = tenantScope(principal);
    const db = this.runtime.db;
    const owner = async (table: 'billing_invoices' | 'billing_deleted_invoices') => {
      let lookup = db.selectFrom(table).select('tenant_id').where('invoice_id', '=', invoiceId);
      if (scope !== null) lookup = lookup.where('tenant_id', '=', scope);
      return lookup.executeTakeFirst();
    };
    if (!(await owner('billing_invoices')) && !(await owner('billing_deleted_invoices'))) throw notFound('invoice');
    const rows = await db.selectFrom('billing_audit').selectAll().where('invoice_id', '=', invoiceId).where('sequence', '>', q.after).orderBy('sequence').orderBy('outcome').limit(q.limit).execute();
    return page(rows, q.limit);
  }

  @Get('v1/billing/audit')
  @ApiDoc({ summary: "A tenant's billing events in log order with what became of each (duplicates, conflicts, reviews, late usage included); a tenant reads its own, finance any (?tenantId) or all", query: tenantAuditQuery, response: auditPageResponse, tags: ['billing'] })
  async tenant(@CurrentPrincipal() principal: Principal, @Query() query: unknown) {
    const q = parseInput(tenantAuditQuery, query, 'query');
    await this.ledger.catchUp();
    const scope = tenantScope(principal, q.tenantId);
    let rows = this.runtime.db.selectFrom('billing_audit').selectAll().where('sequence', '>', q.after);
    if (scope !== null) rows = rows.where('tenant_id', '=', scope);
    return page(await rows.orderBy('sequence').orderBy('invoice_id').orderBy('outcome').limit(q.limit).execute(), q.limit);
  }
}

function page(rows: readonly AuditRow[], limit: number) {
  // A full page ends before its last event, which may go on past the page: the next page starts
  // at that event (unless the page is that one event alone, whose rows are then all there are room for).
  let kept = rows;
  let next: number | null = null;
  const last = rows[rows.length - 1];
  if (rows.length === limit && last) {
    const whole = rows.filter((r) => Number(r.sequence) !== Number(last.sequence));
    kept = whole.length ? whole : rows;
    next = whole.length ? Number(whole[whole.length - 1]!.sequence) : Number(last.sequence);
  }
  const events = kept.map((r) => ({ sequence: Number(r.sequence), eventId: r.event_id, type: r.type, invoiceId: r.invoice_id || null, tenantId: r.tenant_id, outcome: r.outcome, detail: r.detail }));
  return { events, next };
}
