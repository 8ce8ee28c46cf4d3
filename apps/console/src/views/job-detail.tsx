import { useEffect, useState } from 'react';
import { api, ApiFailure } from '../api';
import { SubtaskTimeline } from '../components/timeline';
import { ConfirmDialog, Failure, Loading, StateBadge, Time, formatDuration, gpuHours } from '../components/ui';
import { useApi, useLiveRefresh } from '../hooks';
import { jobIdOf } from '../live';
import { Link, useTitle } from '../router';
import { useSession } from '../session';
import type { JobView } from '../types';
import { JobLogs, JobResults } from './job-outputs';

const ENDED = new Set(['succeeded', 'failed', 'cancelled']);
/** While sub-tasks run, the timeline's "now" moves this often. */
const CLOCK_TICK_MS = 1000;

function useNow(active: boolean): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!active) return;
    const timer = setInterval(() => setNow(Date.now()), CLOCK_TICK_MS);
    return () => clearInterval(timer);
  }, [active]);
  return now;
}

/** A job (deep link /console/jobs/:jobId): state, why it waits, sub-tasks on a timeline, logs and results. */
export function JobDetailView({ jobId }: { jobId: string }) {
  const { me } = useSession();
  const path = `/v1/jobs/${encodeURIComponent(jobId)}`;
  const job = useApi<JobView>(path);
  useLiveRefresh((event) => jobIdOf(event) === jobId, job.reload);
  const [confirming, setConfirming] = useState(false);
  const [cancelled, setCancelled] = useState<string | null>(null);
  const ended = job.data ? ENDED.has(job.data.state) : false;
  const now = useNow(job.data !== undefined && !ended);
  useTitle(job.data ? `Job ${job.data.name ?? jobId}` : job.error instanceof ApiFailure && job.error.status === 404 ? 'Job not found' : 'Job');

  if (job.error instanceof ApiFailure && job.error.status === 404 && !job.missing) {
    return (
      <section aria-labelledby="job-heading">
        <h1 id="job-heading">Job not found</h1>
        <p>
          There is no job <code>{jobId}</code> for this key. <Link to="/jobs">Back to the jobs</Link>.
        </p>
      </section>
    );
  }
  if (!job.data) return job.error !== undefined ? <Failure error={job.error} what="The job could not be loaded" /> : <Loading what="the job" />;
  const j = job.data;
  const s = j.scheduling;
  const subtaskCounts = j.subtasks.reduce<Record<string, number>>((counts, t) => ({ ...counts, [t.state]: (counts[t.state] ?? 0) + 1 }), {});
  return (
    <section aria-labelledby="job-heading">
      <p>
        <Link to="/jobs">← Jobs</Link>
      </p>
      <div className="view-head">
        <h1 id="job-heading">Job {j.name ?? j.jobId}</h1>
        {me.role === 'tenant' && !ended && j.state !== 'cancelling' && (
          <button type="button" className="danger" onClick={() => setConfirming(true)}>
            Cancel job
          </button>
        )}
      </div>
      <p className="job-state">
        State: <StateBadge state={j.state} /> <span className="muted" data-testid="job-state">{j.state}</span>
      </p>
      {cancelled && (
        <p role="status" className="success">
          {cancelled}
        </p>
      )}
      {job.error !== undefined && <Failure error={job.error} what="Refresh failed" />}
      <dl className="facts">
        <dt>Job id</dt>
        <dd>
          <code>{j.jobId}</code>
        </dd>
        {me.tenantId === null && (
          <>
            <dt>Tenant</dt>
            <dd>{j.tenantId}</dd>
          </>
        )}
        <dt>Project</dt>
        <dd>{j.projectId}</dd>
        <dt>Submitted</dt>
        <dd>
          <Time at={j.submittedAt} />
        </dd>
        <dt>Completed</dt>
        <dd>
          <Time at={j.completedAt} />
        </dd>
        <dt>GPU-hours observed</dt>
        <dd>{gpuHours(j.gpuMsObserved)}</dd>
        <dt>Sub-tasks</dt>
        <dd>
          {j.subtasks.length} ({Object.entries(subtaskCounts).map(([state, n]) => `${n} ${state}`).join(', ')})
        </dd>
        {j.reason && (
          <>
            <dt>Reason</dt>
            <dd>{j.reason}</dd>
          </>
        )}
      </dl>
      {s && (s.waiting || s.queuePosition !== undefined) && !ended && (
        <section aria-labelledby="pending-heading" className="notice">
          <h2 id="pending-heading">Why it waits</h2>
          <dl className="facts">
            {s.waiting && (
              <>
                <dt>Waiting for</dt>
                <dd data-testid="pending-reason">
                  {s.waiting}
                  {s.code ? ` (${s.code})` : ''}
                </dd>
              </>
            )}
            {s.queuePosition !== undefined && (
              <>
                <dt>Queue position</dt>
                <dd data-testid="queue-position">{s.queuePosition}</dd>
              </>
            )}
            {s.pendingSubtasks !== undefined && (
              <>
                <dt>Pending / running sub-tasks</dt>
                <dd>
                  {s.pendingSubtasks} / {s.runningSubtasks ?? 0}
                </dd>
              </>
            )}
            {s.reservation?.startAt && (
              <>
                <dt>Reserved start</dt>
                <dd>
                  <Time at={s.reservation.startAt} />
                </dd>
              </>
            )}
          </dl>
        </section>
      )}
      <h2>Timeline</h2>
      <SubtaskTimeline subtasks={j.subtasks} fromIso={j.submittedAt} nowMs={j.completedAt ? Date.parse(j.completedAt) : now} />
      <h2 id="subtasks-heading">Sub-tasks and attempts</h2>
      <div className="table-wrap" tabIndex={0} role="region" aria-label="Sub-tasks and attempts">
        <table aria-labelledby="subtasks-heading">
          <thead>
            <tr>
              <th scope="col">#</th>
              <th scope="col">State</th>
              <th scope="col">Attempt</th>
              <th scope="col">GPUs</th>
              <th scope="col">Node</th>
              <th scope="col">Placed</th>
              <th scope="col">Started</th>
              <th scope="col">Ended</th>
              <th scope="col">Run time</th>
              <th scope="col">Exit</th>
              <th scope="col">Reason</th>
            </tr>
          </thead>
          <tbody>
            {j.subtasks.map((t) => (
              <tr key={t.subtaskId}>
                <td>{t.index}</td>
                <td>
                  <StateBadge state={t.state} />
                </td>
                <td>{t.attempt}</td>
                <td>
                  {t.gpus}
                  {t.gpuModel ? ` × ${t.gpuModel}` : ''}
                </td>
                <td>{t.nodeId ?? '—'}</td>
                <td>
                  <Time at={t.placedAt} />
                </td>
                <td>
                  <Time at={t.startedAt} />
                </td>
                <td>
                  <Time at={t.endedAt} />
                </td>
                <td>{formatDuration(t.runtimeMs)}</td>
                <td>{t.exitCode ?? '—'}</td>
                <td>{t.reason ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <h2>Logs</h2>
      <JobLogs jobId={j.jobId} subtasks={j.subtasks} />
      <h2>Results</h2>
      <JobResults key={ended ? 'ended' : 'running'} jobId={j.jobId} />
      {confirming && (
        <ConfirmDialog
          title="Cancel this job?"
          confirmLabel="Cancel job"
          danger
          action={() => api<JobView>(`/v1/jobs/${encodeURIComponent(jobId)}`, { method: 'DELETE' })}
          onDone={(answer) => {
            setConfirming(false);
            setCancelled(`Cancel requested: the job is ${answer.state}.`);
            job.reload();
          }}
          onCancel={() => setConfirming(false)}
        >
          <p>Pending sub-tasks are removed and running ones stopped. This cannot be undone.</p>
        </ConfirmDialog>
      )}
    </section>
  );
}
