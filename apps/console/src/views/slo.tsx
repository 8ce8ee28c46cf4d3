import { Failure, Loading, NotDeployed, StateBadge, Time, formatDuration } from '../components/ui';
import { useApi, useLiveRefresh } from '../hooks';
import { useTitle } from '../router';
import type { Slo } from '../types';

/** Burn states move with API requests and node health; the view asks again at most this often on events. */
const SLO_EVENTS = new Set(['NodeLost', 'NodeRecovered', 'SubtaskStarted', 'UsageRecorded']);

const percent = (share: string) => `${(Number(share) * 100).toFixed(1)}%`;

/** SLOs and their multi-window burn-rate alerts (page 14.4× over 1 h/5 min and 6× over 6 h/30 min; ticket 3× over 1 d/2 h and 1× over 3 d/6 h). */
export function SloView() {
  useTitle('SLOs');
  const slo = useApi<{ at: string; slos: Slo[] }>('/v1/slo');
  useLiveRefresh((event) => SLO_EVENTS.has(event.type), slo.reload);
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
      {slo.data && (
        <>
          <p className="muted">
            As of <Time at={slo.data.at} />, over 30 days.
          </p>
          <div className="table-wrap" tabIndex={0} role="region" aria-label="SLOs">
            <table>
              <thead>
                <tr>
                  <th scope="col">SLO</th>
                  <th scope="col">State</th>
                  <th scope="col">Objective</th>
                  <th scope="col">Bad / total</th>
                  <th scope="col">Budget spent</th>
                  <th scope="col">Burn rate now</th>
                  <th scope="col">Alerts (short / long window burn rates)</th>
                </tr>
              </thead>
              <tbody>
                {slo.data.slos.map((s) => (
                  <tr key={s.slo}>
                    <th scope="row">{s.slo}</th>
                    <td>
                      <StateBadge state={s.status} />
                    </td>
                    <td>{s.objectivePercent}%</td>
                    <td>
                      {s.period.bad.toLocaleString()} / {s.period.total.toLocaleString()}
                    </td>
                    <td>{percent(s.budgetConsumed)}</td>
                    <td>{s.currentBurnRate}×</td>
                    <td>
                      <ul className="alerts">
                        {s.alerts.map((a) => (
                          <li key={a.name}>
                            {a.firing ? <strong>{a.name} firing</strong> : a.name}: {a.shortBurnRate}× / {a.longBurnRate}× over {formatDuration(a.shortWindowMs)} / {formatDuration(a.longWindowMs)} (threshold {a.factor}×)
                          </li>
                        ))}
                      </ul>
                    </td>
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
