import { useState } from 'react';
import { query } from '../api';
import { Failure, Loading, StateBadge, Time } from '../components/ui';
import { useApi, useLiveRefresh } from '../hooks';
import { Link, useTitle } from '../router';
import { useSession } from '../session';
import type { InvoiceSummary } from '../types';

interface InvoicesPage {
  invoices: InvoiceSummary[];
  nextCursor: string | null;
}

/** Event types that change an invoice list. */
export const INVOICE_EVENTS = new Set(['InvoiceFinalized', 'InvoicePaid', 'InvoiceVoided', 'CreditNoteIssued', 'InvoiceDraftDeleted', 'InvoiceReissued', 'UsageRecorded', 'LateUsageBilled', 'CreditGranted']);

/** Invoices: a tenant's own (the month's draft and past ones), or every tenant's for finance. */
export function InvoicesView() {
  useTitle('Invoices');
  const { me } = useSession();
  const platform = me.tenantId === null;
  const [tenantId, setTenantId] = useState('');
  const [status, setStatus] = useState('');
  const [cursor, setCursor] = useState<string | undefined>(undefined);
  const list = useApi<InvoicesPage>(`/v1/invoices${query({ tenantId: tenantId.trim() || undefined, status: status || undefined, cursor, limit: 100 })}`);
  useLiveRefresh((event) => INVOICE_EVENTS.has(event.type), list.reload);
  return (
    <section aria-labelledby="invoices-heading">
      <h1 id="invoices-heading">Invoices</h1>
      <form className="toolbar" aria-label="Filter invoices" onSubmit={(e) => e.preventDefault()}>
        {platform && (
          <div className="field inline">
            <label htmlFor="invoices-tenant">Tenant</label>
            <input id="invoices-tenant" value={tenantId} placeholder="every tenant" onChange={(e) => (setTenantId(e.target.value), setCursor(undefined))} />
          </div>
        )}
        <div className="field inline">
          <label htmlFor="invoices-status">Status</label>
          <select id="invoices-status" value={status} onChange={(e) => (setStatus(e.target.value), setCursor(undefined))}>
            <option value="">any</option>
            <option value="draft">draft</option>
            <option value="finalized">finalized</option>
            <option value="paid">paid</option>
            <option value="void">void</option>
          </select>
        </div>
      </form>
      {list.error !== undefined && <Failure error={list.error} what="Invoices could not be loaded" />}
      {!list.data && list.error === undefined && <Loading what="invoices" />}
      {list.data && (
        <div className="table-wrap" tabIndex={0} role="region" aria-label="Invoices">
          <table>
            <thead>
              <tr>
                <th scope="col">Invoice</th>
                {platform && <th scope="col">Tenant</th>}
                <th scope="col">Period</th>
                <th scope="col">Status</th>
                <th scope="col" className="num">
                  Total
                </th>
                <th scope="col" className="num">
                  Balance due
                </th>
                <th scope="col">Finalized</th>
                <th scope="col">Problems</th>
              </tr>
            </thead>
            <tbody>
              {list.data.invoices.map((invoice) => (
                <tr key={invoice.invoiceId}>
                  <td>
                    <Link to={`/invoices/${encodeURIComponent(invoice.invoiceId)}`}>{invoice.number ?? `Draft ${invoice.period}${platform ? ` (${invoice.tenantId})` : ''}`}</Link>
                  </td>
                  {platform && <td>{invoice.tenantId}</td>}
                  <td>{invoice.period}</td>
                  <td>
                    <StateBadge state={invoice.status} />
                  </td>
                  <td className="num">
                    {invoice.total} {invoice.currency}
                  </td>
                  <td className="num">
                    {invoice.balanceDue} {invoice.currency}
                  </td>
                  <td>
                    <Time at={invoice.finalizedAt} />
                  </td>
                  <td>{invoice.validationErrors > 0 ? `${invoice.validationErrors} usage without a price` : ''}</td>
                </tr>
              ))}
              {list.data.invoices.length === 0 && (
                <tr>
                  <td colSpan={platform ? 8 : 7} className="muted">
                    No invoices yet: the month's draft appears with the first usage.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
        </div>
      )}
      <div className="actions">
        {cursor !== undefined && (
          <button type="button" onClick={() => setCursor(undefined)}>
            First page
          </button>
        )}
        {list.data?.nextCursor && (
          <button type="button" onClick={() => setCursor(list.data?.nextCursor ?? undefined)}>
            Next page
          </button>
        )}
      </div>
    </section>
  );
}
