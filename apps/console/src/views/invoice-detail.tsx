import { useEffect, useState } from 'react';
import { ApiFailure, describeFailure, download } from '../api';
import { Failure, Loading, StateBadge, Time, gpuHours } from '../components/ui';
import { useApi, useLiveRefresh } from '../hooks';
import { live, type LiveEvent } from '../live';
import { Link, useTitle } from '../router';
import { allowed, useSession } from '../session';
import type { Evidence, InvoiceDocument, InvoiceStatusView } from '../types';
import { ACTION_EVENT, InvoiceActionDialog, type InvoiceAction } from './invoice-actions';

/** Events of one invoice seen on the live feed while its page is open (newest first, bounded). */
const EVENTS_KEPT_MAX = 50;
function useInvoiceEvents(invoiceId: string): LiveEvent[] {
  const [events, setEvents] = useState<LiveEvent[]>([]);
  useEffect(() => live.subscribe((event) => event.data.invoiceId === invoiceId && setEvents((list) => [event, ...list].slice(0, EVENTS_KEPT_MAX))), [invoiceId]);
  return events;
}

/** One invoice: lines, totals, downloads; for finance the lifecycle actions and the evidence behind each line. */
export function InvoiceDetailView({ invoiceId }: { invoiceId: string }) {
  const { me } = useSession();
  const base = `/v1/invoices/${encodeURIComponent(invoiceId)}`;
  const doc = useApi<InvoiceDocument>(base);
  const status = useApi<InvoiceStatusView>(`${base}/status`);
  const events = useInvoiceEvents(invoiceId);
  const reload = () => (doc.reload(), status.reload());
  useLiveRefresh((event) => event.data.invoiceId === invoiceId || (event.type === 'UsageRecorded' && status.data?.status === 'draft'), reload);
  const [action, setAction] = useState<InvoiceAction | null>(null);
  const [result, setResult] = useState<{ action: InvoiceAction; text: string } | null>(null);
  const [downloadError, setDownloadError] = useState<unknown>(undefined);
  const [evidenceLine, setEvidenceLine] = useState<number | null>(null);
  useTitle(doc.data ? `Invoice ${doc.data.number ?? 'draft ' + doc.data.period}` : 'Invoice');

  if (doc.error instanceof ApiFailure && doc.error.status === 404) {
    return (
      <section aria-labelledby="invoice-heading">
        <h1 id="invoice-heading">Invoice not found</h1>
        <p>
          There is no invoice <code>{invoiceId}</code> for this key. <Link to="/invoices">Back to the invoices</Link>.
        </p>
      </section>
    );
  }
  if (!doc.data) return doc.error !== undefined ? <Failure error={doc.error} what="The invoice could not be loaded" /> : <Loading what="the invoice" />;
  const d = doc.data;
  const s = status.data;
  const state = s?.status ?? d.status;
  const finance = allowed(me, 'finance');
  const fileName = `invoice-${d.number ?? `${d.tenant.tenantId}-${d.period}-draft`}`;
  const get = (accept: string, ext: string) => void download(base, accept, `${fileName}.${ext}`).catch(setDownloadError);
  const resultEvent = result ? events.find((e) => e.type === ACTION_EVENT[result.action]) : undefined;
  const resultAction = result && !resultEvent ? s?.actions.find((a) => a.kind === ACTION_EVENT[result.action]) : undefined;

  return (
    <section aria-labelledby="invoice-heading">
      <p>
        <Link to="/invoices">← Invoices</Link>
      </p>
      <div className="view-head">
        <h1 id="invoice-heading">{d.number ? `Invoice ${d.number}` : `Draft invoice ${d.period}`}</h1>
        <div className="actions">
          <button type="button" onClick={() => get('application/pdf', 'pdf')}>
            Download PDF
          </button>
          <button type="button" onClick={() => get('text/csv', 'csv')}>
            Download CSV
          </button>
        </div>
      </div>
      {downloadError !== undefined && <Failure error={downloadError} what="Download failed" />}
      <p>
        Status: <StateBadge state={state} /> <span data-testid="invoice-status">{state}</span>
      </p>
      {finance && (
        <div className="actions" role="group" aria-label="Invoice actions">
          {state === 'draft' && (
            <button type="button" className="primary" onClick={() => setAction('finalize')}>
              Finalize…
            </button>
          )}
          {state === 'finalized' && (
            <button type="button" onClick={() => setAction('pay')}>
              Record payment…
            </button>
          )}
          {state === 'finalized' && (
            <button type="button" onClick={() => setAction('void')}>
              Void…
            </button>
          )}
          {(state === 'finalized' || state === 'paid') && (
            <button type="button" onClick={() => setAction('credit-note')}>
              Issue credit note…
            </button>
          )}
        </div>
      )}
      {result && (
        <div role="status" className="success" data-testid="action-result">
          <p>{result.text}</p>
          <p>
            {resultEvent ? (
              <>
                Event <strong>{resultEvent.type}</strong> appended at sequence {resultEvent.seq} (<Time at={resultEvent.time} />).
              </>
            ) : resultAction ? (
              <>
                Event <strong>{resultAction.kind}</strong> at sequence {resultAction.eventSequence}.
              </>
            ) : (
              <>Waiting for the {ACTION_EVENT[result.action]} event…</>
            )}
          </p>
        </div>
      )}
      <dl className="facts">
        <dt>Tenant</dt>
        <dd>
          {d.tenant.name} ({d.tenant.tenantId})
        </dd>
        <dt>Service period</dt>
        <dd>
          {d.period} (<Time at={d.periodStart} /> – <Time at={d.periodEnd} />, {d.tenant.billingTimeZone})
        </dd>
        <dt>Event cutoff</dt>
        <dd>sequence {d.cutoffSequence}</dd>
        {s && (
          <>
            <dt>Credited</dt>
            <dd>
              {s.credited} {s.currency}
            </dd>
            <dt>Balance due</dt>
            <dd data-testid="balance-due">
              {s.balanceDue} {s.currency}
            </dd>
          </>
        )}
      </dl>
      {d.validationErrors.length > 0 && (
        <div className="notice" role="note">
          <p>
            <strong>{d.validationErrors.length} usage records have no price</strong>: the invoice stays a draft until a price book covers them.
          </p>
        </div>
      )}
      <h2 id="lines-heading">Lines</h2>
      <div className="table-wrap" tabIndex={0} role="region" aria-label="Invoice lines">
        <table aria-labelledby="lines-heading">
          <thead>
            <tr>
              <th scope="col">#</th>
              <th scope="col">Description</th>
              <th scope="col">Kind</th>
              <th scope="col">Service period</th>
              <th scope="col" className="num">
                GPU-hours
              </th>
              <th scope="col" className="num">
                Unit price
              </th>
              <th scope="col" className="num">
                Amount
              </th>
              <th scope="col">Evidence</th>
            </tr>
          </thead>
          <tbody>
            {d.lines.map((line) => (
              <tr key={line.line}>
                <td>{line.line}</td>
                <td>{line.description}</td>
                <td>{line.kind}</td>
                <td>{line.servicePeriod}</td>
                <td className="num">{line.quantityGpuHours ?? ''}</td>
                <td className="num">{line.unitPrice ?? ''}</td>
                <td className="num">{line.amount}</td>
                <td>
                  <button type="button" className="link" aria-expanded={evidenceLine === line.line} onClick={() => setEvidenceLine(evidenceLine === line.line ? null : line.line)}>
                    Evidence for line {line.line}
                  </button>
                </td>
              </tr>
            ))}
            {d.lines.length === 0 && (
              <tr>
                <td colSpan={8} className="muted">
                  No lines yet.
                </td>
              </tr>
            )}
          </tbody>
          <tfoot>
            <tr>
              <th scope="row" colSpan={6}>
                Subtotal
              </th>
              <td className="num">{d.subtotal}</td>
              <td />
            </tr>
            {d.taxes.map((tax) => (
              <tr key={tax.name}>
                <th scope="row" colSpan={6}>
                  {tax.name} ({tax.rate})
                </th>
                <td className="num">{tax.amount}</td>
                <td />
              </tr>
            ))}
            <tr>
              <th scope="row" colSpan={6}>
                Total ({d.currency})
              </th>
              <td className="num" data-testid="invoice-total">
                {d.total}
              </td>
              <td />
            </tr>
          </tfoot>
        </table>
      </div>
      {evidenceLine !== null && <LineEvidence invoiceId={invoiceId} line={evidenceLine} />}
      {s && s.creditNotes.length > 0 && (
        <>
          <h2>Credit notes</h2>
          <ul>
            {s.creditNotes.map((note) => (
              <li key={note.creditNoteId}>
                {note.number}: {note.amount} {note.currency}, <Time at={note.issuedAt} /> — {note.reason}
              </li>
            ))}
          </ul>
        </>
      )}
      {s && s.actions.length > 0 && (
        <>
          <h2>Finance actions</h2>
          <ul>
            {s.actions.map((a) => (
              <li key={a.eventId}>
                {a.kind} by {a.actor}, <Time at={a.at} /> (sequence {a.eventSequence}) — {a.reason}
              </li>
            ))}
          </ul>
        </>
      )}
      {status.error !== undefined && <p className="muted">Status unavailable: {describeFailure(status.error)}</p>}
      {action && (
        <InvoiceActionDialog
          action={action}
          invoice={d}
          onCancel={() => setAction(null)}
          onDone={(text) => {
            setResult({ action, text });
            setAction(null);
            reload();
          }}
        />
      )}
    </section>
  );
}

function LineEvidence({ invoiceId, line }: { invoiceId: string; line: number }) {
  const evidence = useApi<Evidence>(`/v1/invoices/${encodeURIComponent(invoiceId)}/lines/${line}/evidence`);
  return (
    <section aria-labelledby="evidence-heading" className="evidence">
      <h2 id="evidence-heading">Evidence for line {line}</h2>
      {evidence.error !== undefined && <Failure error={evidence.error} />}
      {!evidence.data && evidence.error === undefined && <Loading what="evidence" />}
      {evidence.data && (
        <>
          <p className="muted">
            {evidence.data.usage.length} usage records from events {evidence.data.eventSequences.slice(0, 20).join(', ')}
            {evidence.data.eventSequences.length > 20 ? '…' : ''}
          </p>
          <div className="table-wrap" tabIndex={0} role="region" aria-label="Evidence">
            <table>
              <thead>
                <tr>
                  <th scope="col">Job / lease</th>
                  <th scope="col">Sub-task</th>
                  <th scope="col">Attempt</th>
                  <th scope="col">GPUs</th>
                  <th scope="col">From</th>
                  <th scope="col">To</th>
                  <th scope="col" className="num">
                    GPU-hours
                  </th>
                  <th scope="col">Event</th>
                </tr>
              </thead>
              <tbody>
                {evidence.data.usage.map((u) => (
                  <tr key={u.usageId}>
                    <td>{u.jobId ? <Link to={`/jobs/${encodeURIComponent(u.jobId)}`}>{u.jobId}</Link> : (u.leaseId ?? '—')}</td>
                    <td>{u.subtaskId ?? '—'}</td>
                    <td>{u.attempt ?? '—'}</td>
                    <td>
                      {u.gpus} × {u.gpuModel}
                    </td>
                    <td>
                      <Time at={u.startAt} />
                    </td>
                    <td>
                      <Time at={u.endAt} />
                    </td>
                    <td className="num">
                      {gpuHours(u.gpuMs)}
                      {u.interrupted ? ' (interrupted)' : ''}
                    </td>
                    <td>{u.eventSequence}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </section>
  );
}
