import { useState } from 'react';
import { query } from '../api';
import { Failure, Loading, StateBadge, Time } from '../components/ui';
import { useApi } from '../hooks';
import { useTitle } from '../router';
import type { SlaAvailability, SlaReport } from '../types';

const thisMonth = () => new Date().toISOString().slice(0, 7);

function Availability({ a }: { a: SlaAvailability }) {
  return (
    <>
      {a.availabilityPercent ?? '—'}% of {a.targetPercent}% <StateBadge state={a.met ? 'met' : 'missed'} />
      {a.creditPercent > 0 ? ` ${a.creditPercent}% credit` : ''}
    </>
  );
}

/** SLA reports of a month: allocation and API availability against their targets, and credits. */
export function SlaView() {
  useTitle('SLA reports');
  const [period, setPeriod] = useState(thisMonth);
  const reports = useApi<{ period: string; reports: SlaReport[] }>(`/v1/sla-reports${query({ period })}`);
  return (
    <section aria-labelledby="sla-heading">
      <h1 id="sla-heading">SLA reports</h1>
      <form className="toolbar" onSubmit={(e) => e.preventDefault()} aria-label="Report month">
        <div className="field inline">
          <label htmlFor="sla-period">Month</label>
          <input id="sla-period" type="month" value={period} onChange={(e) => e.target.value && setPeriod(e.target.value)} />
        </div>
      </form>
      {reports.error !== undefined && <Failure error={reports.error} what="Reports could not be loaded" />}
      {!reports.data && reports.error === undefined && <Loading what="SLA reports" />}
      {reports.data && (
        <div className="table-wrap" tabIndex={0} role="region" aria-label="SLA reports">
          <table>
            <thead>
              <tr>
                <th scope="col">Tenant</th>
                <th scope="col">GPU allocation availability</th>
                <th scope="col">API availability</th>
                <th scope="col">As of</th>
                <th scope="col">Final</th>
              </tr>
            </thead>
            <tbody>
              {reports.data.reports.map((r) => (
                <tr key={r.tenantId}>
                  <td>{r.tenantId}</td>
                  <td>
                    <Availability a={r.allocationAvailability} />
                  </td>
                  <td>
                    <Availability a={r.apiAvailability} />
                  </td>
                  <td>
                    <Time at={r.asOf} />
                  </td>
                  <td>{r.final ? 'yes' : 'no (month not over)'}</td>
                </tr>
              ))}
              {reports.data.reports.length === 0 && (
                <tr>
                  <td colSpan={5} className="muted">
                    No report for {period}.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
