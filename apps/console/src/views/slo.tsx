import { Failure, Loading, NotDeployed, StateBadge } from '../components/ui';
import { useApi, useLiveRefresh } from '../hooks';
import { useTitle } from '../router';

type Row = Record<string, unknown>;

/** The list an answer carries: its first array of objects (GET /v1/slo's shape may grow). */
function rowsOf(answer: unknown): Row[] {
  if (Array.isArray(answer)) return answer.filter((x): x is Row => typeof x === 'object' && x !== null);
  if (typeof answer === 'object' && answer !== null) {
    for (const value of Object.values(answer)) if (Array.isArray(value)) return rowsOf(value);
  }
  return [];
}

function cell(value: unknown): string {
  if (value === null || value === undefined) return '—';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

const STATE_FIELDS = new Set(['state', 'status', 'alert', 'burnState']);

/** SLOs and their burn states (multi-window burn rates: page, ticket or ok). */
export function SloView() {
  useTitle('SLOs');
  const slo = useApi<unknown>('/v1/slo');
  useLiveRefresh((event) => event.type === 'SlaCreditIssued' || event.type === 'NodeLost', slo.reload);
  const rows = rowsOf(slo.data);
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  return (
    <section aria-labelledby="slo-heading">
      <div className="view-head">
        <h1 id="slo-heading">SLOs and burn rates</h1>
        <button type="button" onClick={slo.reload}>
          Refresh
        </button>
      </div>
      {slo.missing && <NotDeployed route="GET /v1/slo" />}
      {slo.error !== undefined && !slo.missing && <Failure error={slo.error} what="SLOs could not be loaded" />}
      {slo.data === undefined && slo.error === undefined && <Loading what="SLOs" />}
      {rows.length > 0 && (
        <div className="table-wrap" tabIndex={0} role="region" aria-label="SLOs">
          <table>
            <thead>
              <tr>
                {columns.map((c) => (
                  <th key={c} scope="col">
                    {c}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {rows.map((row, i) => (
                <tr key={i}>
                  {columns.map((c) => (
                    <td key={c}>{STATE_FIELDS.has(c) && typeof row[c] === 'string' ? <StateBadge state={row[c]} /> : cell(row[c])}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {slo.data !== undefined && rows.length === 0 && <pre>{JSON.stringify(slo.data, null, 2)}</pre>}
    </section>
  );
}
