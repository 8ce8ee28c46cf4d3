import { Fragment, useEffect, useState } from 'react';
import { api, query } from '../api';
import { ConfirmDialog, Failure, Loading, NotDeployed, StateBadge, Time } from '../components/ui';
import { useApi, useLiveRefresh } from '../hooks';
import { Link, useTitle } from '../router';
import type { DeadLetter, QueueItem, SchedulerStatus } from '../types';

const QUEUE_EVENTS = new Set(['JobSubmitted', 'SubtaskPlaced', 'SubtaskRequeued', 'SubtaskPreempted', 'JobCompleted', 'JobCancelRequested', 'LeaseRequested', 'LeaseGranted']);
/** Health checks change without events: the projections view asks again this often while open. */
const HEALTH_REFRESH_MS = 5000;

/** The scheduler's queue: its status, and the queued jobs in queue order with why each waits. */
export function QueuesView() {
  useTitle('Queues');
  const status = useApi<SchedulerStatus>('/v1/scheduler/status');
  const queue = useApi<{ queuedJobs: number; items: QueueItem[] }>('/v1/scheduler/queue?limit=1000');
  const refresh = () => (status.reload(), queue.reload());
  useLiveRefresh((event) => QUEUE_EVENTS.has(event.type), refresh);
  return (
    <section aria-labelledby="queues-heading">
      <h1 id="queues-heading">Queues</h1>
      {status.error !== undefined && <Failure error={status.error} what="Scheduler status" />}
      {status.data && (
        <dl className="facts" aria-label="Scheduler status">
          <dt>Leader</dt>
          <dd>{status.data.leader ? 'yes' : 'no'}</dd>
          <dt>Caught up</dt>
          <dd>
            {status.data.caughtUp ? 'yes' : 'no'} (sequence {status.data.lastSequence})
          </dd>
          <dt>Queued jobs</dt>
          <dd data-testid="queued-jobs">{status.data.queuedJobs}</dd>
          <dt>Nodes</dt>
          <dd>{status.data.nodes}</dd>
          <dt>Placements / preemptions</dt>
          <dd>
            {status.data.placements} / {status.data.preemptions}
          </dd>
          <dt>Last cycle</dt>
          <dd>{status.data.lastCycleMs.toFixed(1)} ms</dd>
        </dl>
      )}
      <h2 id="pending-heading">Queued jobs{queue.data ? ` (${queue.data.queuedJobs})` : ''}</h2>
      {queue.missing && <NotDeployed route="GET /v1/scheduler/queue" />}
      {queue.error !== undefined && !queue.missing && <Failure error={queue.error} what="The queue could not be loaded" />}
      {queue.data && (
        <div className="table-wrap" tabIndex={0} role="region" aria-label="Queued jobs">
          <table aria-labelledby="pending-heading">
            <thead>
              <tr>
                <th scope="col" className="num">
                  Position
                </th>
                <th scope="col">Job</th>
                <th scope="col">Tenant</th>
                <th scope="col">Class</th>
                <th scope="col">Pending / running</th>
                <th scope="col">Waiting for</th>
                <th scope="col">Submitted</th>
              </tr>
            </thead>
            <tbody>
              {queue.data.items.map((job) => (
                <tr key={job.jobId}>
                  <td className="num">{job.queuePosition ?? '—'}</td>
                  <td>
                    <Link to={`/jobs/${encodeURIComponent(job.jobId)}`}>{job.jobId}</Link>
                  </td>
                  <td>{job.tenantId}</td>
                  <td>
                    {job.priorityClass}
                    {job.priority ? ` (${job.priority})` : ''}
                  </td>
                  <td>
                    {job.pendingSubtasks} / {job.runningSubtasks}
                  </td>
                  <td>
                    {job.waiting ?? ''}
                    {job.code ? ` (${job.code})` : ''}
                  </td>
                  <td>
                    <Time at={job.submittedAt} />
                  </td>
                </tr>
              ))}
              {queue.data.items.length === 0 && (
                <tr>
                  <td colSpan={7} className="muted">
                    No job is waiting.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
        </div>
      )}
      {!queue.data && queue.error === undefined && <Loading what="the queue" />}
    </section>
  );
}

interface HealthCheck {
  ok: boolean;
  detail?: unknown;
}

function detailText(detail: unknown): string {
  if (detail === undefined || detail === null) return '';
  if (typeof detail === 'string') return detail;
  if (typeof detail === 'object') {
    return Object.entries(detail as Record<string, unknown>)
      .filter(([, v]) => v !== null && v !== undefined)
      .map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
      .join(' · ');
  }
  return String(detail);
}

/** Every health check: projections with their lag, stalls and errors; connections. */
export function ProjectionsView() {
  useTitle('Projections');
  const health = useApi<{ status: string; checks: Record<string, HealthCheck> }>('/v1/health');
  const { reload } = health;
  useEffect(() => {
    const timer = setInterval(reload, HEALTH_REFRESH_MS);
    return () => clearInterval(timer);
  }, [reload]);
  const checks = Object.entries(health.data?.checks ?? {}).sort(([a], [b]) => a.localeCompare(b));
  const sequenceOf = (check: HealthCheck) => {
    const value = (check.detail as { lastSequence?: unknown } | undefined)?.lastSequence;
    return typeof value === 'number' ? value : undefined;
  };
  /** The furthest any reader got: a projection's lag is how many events it is behind that. */
  const head = Math.max(0, ...checks.map(([, check]) => sequenceOf(check) ?? 0));
  return (
    <section aria-labelledby="projections-heading">
      <div className="view-head">
        <h1 id="projections-heading">Projections and health</h1>
        <button type="button" onClick={health.reload}>
          Refresh
        </button>
      </div>
      {health.error !== undefined && !health.data && <Failure error={health.error} what="Health could not be loaded" />}
      {health.data && (
        <>
          <p>
            Overall: <StateBadge state={health.data.status} />
          </p>
          <div className="table-wrap" tabIndex={0} role="region" aria-label="Health checks">
            <table>
              <thead>
                <tr>
                  <th scope="col">Check</th>
                  <th scope="col">State</th>
                  <th scope="col" className="num">
                    Behind (events)
                  </th>
                  <th scope="col">Detail (status, stalled sequence, error)</th>
                </tr>
              </thead>
              <tbody>
                {checks.map(([name, check]) => (
                  <tr key={name}>
                    <th scope="row">{name}</th>
                    <td>
                      <StateBadge state={check.ok ? 'ok' : 'down'} />
                    </td>
                    <td className="num">{sequenceOf(check) === undefined ? '' : head - (sequenceOf(check) ?? 0)}</td>
                    <td>{detailText(check.detail)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
      {!health.data && health.error === undefined && <Loading what="health" />}
    </section>
  );
}

/** Dead letters: what a consumer could not handle, why; inspect the body, redrive. */
export function DeadLettersView() {
  useTitle('Dead letters');
  const [after, setAfter] = useState<string | undefined>(undefined);
  const list = useApi<{ items: (DeadLetter & { eventType?: string | null; count?: number })[]; next: string | null }>(`/v1/dead-letters${query({ after, limit: 100 })}`);
  const [redrive, setRedrive] = useState<number | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [open, setOpen] = useState<number | null>(null);
  return (
    <section aria-labelledby="dlq-heading">
      <div className="view-head">
        <h1 id="dlq-heading">Dead letters</h1>
        <button type="button" onClick={list.reload}>
          Refresh
        </button>
      </div>
      {list.missing && <NotDeployed route="GET /v1/dead-letters" />}
      {done && (
        <p role="status" className="success">
          {done}
        </p>
      )}
      {list.error !== undefined && !list.missing && <Failure error={list.error} what="Dead letters could not be loaded" />}
      {!list.data && list.error === undefined && <Loading what="dead letters" />}
      {list.data && (
        <div className="table-wrap" tabIndex={0} role="region" aria-label="Dead letters">
          <table>
            <thead>
              <tr>
                <th scope="col">Sequence</th>
                <th scope="col">When</th>
                <th scope="col">Consumer</th>
                <th scope="col">Subject</th>
                <th scope="col">Reason</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {list.data.items.map((item) => (
                <Fragment key={item.seq}>
                  <tr>
                    <td>{item.seq}</td>
                    <td>
                      <Time at={item.time} />
                    </td>
                    <td>{item.consumer}</td>
                    <td>
                      <code>{item.subject}</code>
                    </td>
                    <td>
                      {item.reason}
                      {item.count && item.count > 1 ? ` (${item.count} times)` : ''}
                    </td>
                    <td className="actions">
                      <button type="button" aria-expanded={open === item.seq} onClick={() => setOpen(open === item.seq ? null : item.seq)}>
                        Inspect {item.seq}
                      </button>
                      <button type="button" onClick={() => setRedrive(item.seq)}>
                        Redrive {item.seq}
                      </button>
                    </td>
                  </tr>
                  {open === item.seq && (
                    <tr>
                      <td colSpan={6}>
                        <pre tabIndex={0} aria-label={`Body of dead letter ${item.seq}`}>
                          {typeof item.payload === 'string' ? item.payload : JSON.stringify(item.payload, null, 2)}
                        </pre>
                      </td>
                    </tr>
                  )}
                </Fragment>
              ))}
              {list.data.items.length === 0 && (
                <tr>
                  <td colSpan={6} className="muted">
                    No dead letters.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
        </div>
      )}
      <div className="actions">
        {after !== undefined && (
          <button type="button" onClick={() => setAfter(undefined)}>
            First page
          </button>
        )}
        {list.data?.next && (
          <button type="button" onClick={() => setAfter(list.data?.next ?? undefined)}>
            Next page
          </button>
        )}
      </div>
      {redrive !== null && (
        <ConfirmDialog
          title={`Redrive dead letter ${redrive}?`}
          confirmLabel="Redrive"
          action={() => api<{ republishedTo: string; sequence: number; duplicate: boolean }>(`/v1/dead-letters/${redrive}/redrive`, { method: 'POST', body: {} })}
          onDone={(answer) => {
            setDone(`Dead letter ${redrive} republished to ${answer.republishedTo} at sequence ${answer.sequence}${answer.duplicate ? ' (already redriven)' : ''}.`);
            setRedrive(null);
            list.reload();
          }}
          onCancel={() => setRedrive(null)}
        >
          <p>It is republished to its original subject and removed from the dead letters. If its cause is not fixed it fails again and comes back.</p>
        </ConfirmDialog>
      )}
    </section>
  );
}
