import { useState } from 'react';
import { api, query } from '../api';
import { ConfirmDialog, Failure, Field, Loading, StateBadge, Time, gpuHours } from '../components/ui';
import { useApi, useLiveRefresh } from '../hooks';
import { useTitle } from '../router';
import type { PriceBook, ReviewItem } from '../types';

const REVIEW_EVENTS = new Set(['LateUsageRecorded', 'LateUsageBilled', 'LateUsageDismissed', 'InvoiceFinalized']);

/** Late usage and credits too old for an adjustment line: bill onto a draft, or dismiss. */
export function ReviewQueueView() {
  useTitle('Review queue');
  const [tenantId, setTenantId] = useState('');
  const queue = useApi<{ items: ReviewItem[] }>(`/v1/billing/review-queue${query({ tenantId: tenantId.trim() || undefined })}`);
  useLiveRefresh((event) => REVIEW_EVENTS.has(event.type), queue.reload);
  const [deciding, setDeciding] = useState<{ item: ReviewItem; decision: 'bill' | 'dismiss' } | null>(null);
  const [reason, setReason] = useState('');
  const [invoiceId, setInvoiceId] = useState('');
  const [done, setDone] = useState<string | null>(null);
  return (
    <section aria-labelledby="review-heading">
      <h1 id="review-heading">Review queue</h1>
      <form className="toolbar" onSubmit={(e) => e.preventDefault()} aria-label="Filter review items">
        <div className="field inline">
          <label htmlFor="review-tenant">Tenant</label>
          <input id="review-tenant" value={tenantId} placeholder="every tenant" onChange={(e) => setTenantId(e.target.value)} />
        </div>
      </form>
      {done && (
        <p role="status" className="success">
          {done}
        </p>
      )}
      {queue.error !== undefined && <Failure error={queue.error} what="The review queue could not be loaded" />}
      {!queue.data && queue.error === undefined && <Loading what="the review queue" />}
      {queue.data && (
        <div className="table-wrap" tabIndex={0} role="region" aria-label="Review items">
          <table>
            <thead>
              <tr>
                <th scope="col">Tenant</th>
                <th scope="col">Kind</th>
                <th scope="col">Service period</th>
                <th scope="col">Usage</th>
                <th scope="col">Reason</th>
                <th scope="col">Status</th>
                <th scope="col">Decide</th>
              </tr>
            </thead>
            <tbody>
              {queue.data.items.map((item) => (
                <tr key={`${item.eventId}-${item.piece}`}>
                  <td>{item.tenantId}</td>
                  <td>{item.kind}</td>
                  <td>{item.servicePeriod}</td>
                  <td>{item.gpuMs !== undefined ? `${gpuHours(item.gpuMs)} GPU-h ${item.gpus ?? ''}× ${item.gpuModel ?? ''}` : item.referenceId}</td>
                  <td>{item.reason}</td>
                  <td>
                    <StateBadge state={item.status} />
                  </td>
                  <td>
                    {item.status === 'open' && item.kind.includes('usage') && (
                      <span className="actions">
                        <button type="button" onClick={() => (setDeciding({ item, decision: 'bill' }), setReason(''), setInvoiceId(''))}>
                          Bill item {item.eventSequence}
                        </button>
                        <button type="button" onClick={() => (setDeciding({ item, decision: 'dismiss' }), setReason(''))}>
                          Dismiss item {item.eventSequence}
                        </button>
                      </span>
                    )}
                    {item.resolvedInvoiceId && <span className="muted">on {item.resolvedInvoiceId}</span>}
                  </td>
                </tr>
              ))}
              {queue.data.items.length === 0 && (
                <tr>
                  <td colSpan={7} className="muted">
                    Nothing to review.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
        </div>
      )}
      {deciding && (
        <ConfirmDialog
          title={deciding.decision === 'bill' ? 'Bill this usage?' : 'Dismiss this usage?'}
          confirmLabel={deciding.decision === 'bill' ? 'Bill usage' : 'Dismiss usage'}
          danger={deciding.decision === 'dismiss'}
          action={() =>
            api<{ status: string; invoiceId: string | null }>(`/v1/billing/review-queue/${encodeURIComponent(deciding.item.eventId)}/${deciding.item.piece}/${deciding.decision}`, {
              method: 'POST',
              body: deciding.decision === 'bill' ? { invoiceId: invoiceId.trim(), reason: reason.trim() } : { reason: reason.trim() },
            })
          }
          onDone={(answer) => {
            setDone(`Item ${deciding.item.eventSequence} ${answer.status}${answer.invoiceId ? ` onto ${answer.invoiceId}` : ''}.`);
            setDeciding(null);
            queue.reload();
          }}
          onCancel={() => setDeciding(null)}
        >
          {deciding.decision === 'bill' && (
            <Field id="review-invoice" label="Draft invoice id">
              <input id="review-invoice" required value={invoiceId} onChange={(e) => setInvoiceId(e.target.value)} />
            </Field>
          )}
          <Field id="review-reason" label="Reason">
            <input id="review-reason" required value={reason} onChange={(e) => setReason(e.target.value)} />
          </Field>
        </ConfirmDialog>
      )}
    </section>
  );
}

/** Every version of every price book, with the date each takes effect. */
export function PriceBooksView() {
  useTitle('Price books');
  const books = useApi<{ priceBooks: PriceBook[] }>('/v1/price-books');
  useLiveRefresh((event) => event.type === 'PriceBookPublished', books.reload);
  const now = Date.now();
  const sorted = [...(books.data?.priceBooks ?? [])].sort((a, b) => a.priceBookId.localeCompare(b.priceBookId) || b.version - a.version);
  /** The version in force now for each book: the newest effective one. */
  const inForce = new Map<string, number>();
  for (const book of sorted) if (Date.parse(book.effectiveFrom) <= now && !inForce.has(book.priceBookId)) inForce.set(book.priceBookId, book.version);
  return (
    <section aria-labelledby="books-heading">
      <h1 id="books-heading">Price books</h1>
      {books.error !== undefined && <Failure error={books.error} what="Price books could not be loaded" />}
      {!books.data && books.error === undefined && <Loading what="price books" />}
      {sorted.map((book) => (
        <section key={`${book.priceBookId}-${book.version}`} aria-labelledby={`book-${book.priceBookId}-${book.version}`}>
          <h2 id={`book-${book.priceBookId}-${book.version}`}>
            {book.priceBookId} v{book.version}
            <span className="muted">
              {' '}
              effective from <Time at={book.effectiveFrom} />
              {Date.parse(book.effectiveFrom) > now ? ' (future)' : inForce.get(book.priceBookId) === book.version ? ' (in force)' : ' (superseded)'}
            </span>
          </h2>
          <div className="table-wrap" tabIndex={0} role="region" aria-label={`Prices of ${book.priceBookId} v${book.version}`}>
            <table>
              <thead>
                <tr>
                  <th scope="col">GPU model</th>
                  <th scope="col">Capacity</th>
                  <th scope="col" className="num">
                    Price per GPU-hour ({book.currency})
                  </th>
                  <th scope="col">Increment</th>
                  <th scope="col">Minimum</th>
                </tr>
              </thead>
              <tbody>
                {book.prices.map((p) => (
                  <tr key={`${p.gpuModel}-${p.capacityType}`}>
                    <td>{p.gpuModel}</td>
                    <td>{p.capacityType}</td>
                    <td className="num">{p.pricePerGpuHour}</td>
                    <td>{p.incrementMs / 1000} s</td>
                    <td>{p.minimumMs / 1000} s</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <p className="muted">
            Published by {book.publishedBy}, <Time at={book.publishedAt} />
          </p>
        </section>
      ))}
      {books.data && sorted.length === 0 && <p className="muted">No price book published.</p>}
    </section>
  );
}
