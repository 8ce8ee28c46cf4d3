import { useEffect, useMemo, useState } from 'react';
import { query } from '../api';
import { TimeChart } from '../components/chart';
import { Failure, Loading, gpuHours } from '../components/ui';
import { useApi, useLiveRefresh } from '../hooks';
import { useTitle } from '../router';
import { useSession } from '../session';
import type { UsageAnswer } from '../types';
import { defaultRange, usageSeries, type Dimension, type Window } from '../usage-series';

/** While the range includes now, running allocations accrue: the chart is refreshed this often. */
const ACCRUAL_REFRESH_MS = 10_000;
const USAGE_EVENTS = new Set(['UsageRecorded', 'SubtaskStarted', 'SubtaskCompleted', 'SubtaskFailed', 'SubtaskPreempted', 'JobCompleted', 'LeaseGranted', 'LeaseReleased']);

const zones = (() => {
  const supported = (Intl as { supportedValuesOf?: (key: string) => string[] }).supportedValuesOf?.('timeZone') ?? [];
  return ['UTC', ...supported.filter((z) => z !== 'UTC')];
})();

/** GPU usage over time (GET /v1/usage) by hour, day or month in any time zone, by project or model; live. */
export function UsageView() {
  useTitle('Usage');
  const { me } = useSession();
  const [window, setWindow] = useState<Window>('day');
  const [range, setRange] = useState(() => defaultRange('day', new Date()));
  const [timeZone, setTimeZone] = useState(() => Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC');
  const [dimension, setDimension] = useState<Dimension>('project');
  const [accrueUntil, setAccrueUntil] = useState(() => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'));
  const path = `/v1/usage${query({ from: range.from, to: range.to, window, tz: timeZone, groupBy: dimension || undefined, accrueUntil, limit: 10_000 })}`;
  const usage = useApi<UsageAnswer>(path);
  const refresh = () => setAccrueUntil(new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'));
  useLiveRefresh((event) => USAGE_EVENTS.has(event.type), refresh);
  useEffect(() => {
    const timer = setInterval(refresh, ACCRUAL_REFRESH_MS);
    return () => clearInterval(timer);
  }, []);
  const chart = useMemo(() => usageSeries(usage.data?.rows ?? [], dimension), [usage.data, dimension]);
  const totals = chart.series.map((s) => ({ label: s.label, colour: s.colour, hours: s.values.reduce((a, b) => a + b, 0) }));

  return (
    <section aria-labelledby="usage-heading">
      <h1 id="usage-heading">Usage</h1>
      <form className="toolbar" aria-label="Usage range" onSubmit={(e) => e.preventDefault()}>
        <div className="field inline">
          <label htmlFor="usage-window">Window</label>
          <select
            id="usage-window"
            value={window}
            onChange={(e) => {
              const next = e.target.value as Window;
              setWindow(next);
              setRange(defaultRange(next, new Date()));
            }}
          >
            <option value="hour">hour</option>
            <option value="day">day</option>
            <option value="month">month</option>
          </select>
        </div>
        <div className="field inline">
          <label htmlFor="usage-from">From</label>
          <input id="usage-from" type="date" value={range.from} onChange={(e) => e.target.value && setRange((r) => ({ ...r, from: e.target.value }))} />
        </div>
        <div className="field inline">
          <label htmlFor="usage-to">To (exclusive)</label>
          <input id="usage-to" type="date" value={range.to} onChange={(e) => e.target.value && setRange((r) => ({ ...r, to: e.target.value }))} />
        </div>
        <div className="field inline">
          <label htmlFor="usage-tz">Time zone</label>
          <select id="usage-tz" value={timeZone} onChange={(e) => setTimeZone(e.target.value)}>
            {(zones.includes(timeZone) ? zones : [timeZone, ...zones]).map((z) => (
              <option key={z} value={z}>
                {z}
              </option>
            ))}
          </select>
        </div>
        <div className="field inline">
          <label htmlFor="usage-group">By</label>
          <select id="usage-group" value={dimension} onChange={(e) => setDimension(e.target.value as Dimension)}>
            <option value="project">project</option>
            <option value="model">GPU model</option>
            {me.tenantId === null && <option value="tenant">tenant</option>}
            <option value="">total</option>
          </select>
        </div>
      </form>
      {usage.error !== undefined && <Failure error={usage.error} what="Usage could not be loaded" />}
      {!usage.data && usage.error === undefined && <Loading what="usage" />}
      {usage.data && (
        <>
          <p role="status" data-testid="usage-total">
            Total: <strong>{gpuHours(usage.data.totalGpuMs)}</strong> GPU-hours from {usage.data.from.slice(0, 10)} to {usage.data.to.slice(0, 10)} ({usage.data.timeZone}, by {usage.data.window})
          </p>
          <TimeChart range={[Date.parse(usage.data.from) / 1000, Date.parse(usage.data.to) / 1000]} xs={chart.xs} series={chart.series} timeZone={timeZone} yLabel="GPU-hours" label={`GPU-hours per ${window} in ${timeZone}: ${totals.map((t) => `${t.label} ${t.hours.toFixed(3)}`).join(', ') || 'no usage'}`} />
          <div className="table-wrap" tabIndex={0} role="region" aria-label="GPU-hours in the range">
            <table>
              <caption className="muted">GPU-hours in the range</caption>
              <thead>
                <tr>
                  <th scope="col">{dimension === 'model' ? 'GPU model' : dimension === 'project' ? 'Project' : dimension === 'tenant' ? 'Tenant' : 'Usage'}</th>
                  <th scope="col" className="num">
                    GPU-hours
                  </th>
                </tr>
              </thead>
              <tbody>
                {totals.map((t) => (
                  <tr key={t.label}>
                    <td>
                      <span className="swatch" style={{ background: t.colour }} aria-hidden="true" />
                      {t.label}
                    </td>
                    <td className="num">{t.hours.toFixed(3)}</td>
                  </tr>
                ))}
                {totals.length === 0 && (
                  <tr>
                    <td colSpan={2} className="muted">
                      No usage in this range.
                    </td>
                  </tr>
                )}
              </tbody>
            </table>
          </div>
        </>
      )}
    </section>
  );
}
