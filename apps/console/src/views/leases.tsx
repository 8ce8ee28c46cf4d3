import { useState, type FormEvent } from 'react';
import { api, newIdempotencyKey, query } from '../api';
import { ConfirmDialog, Failure, Field, Loading, NotDeployed, StateBadge, Time, gpuHours } from '../components/ui';
import { useApi, useLiveRefresh } from '../hooks';
import { useTitle } from '../router';
import type { Lease, LeasesPage } from '../types';

/** Leases the list shows per page (GET /v1/leases, newest first). */
const LEASES_PER_PAGE = 100;

/** Interactive leases: ask for N GPUs, watch the grant, release; every lease of the tenant, newest first. */
export function LeasesView() {
  useTitle('Leases');
  const first = useApi<LeasesPage>(`/v1/leases${query({ limit: LEASES_PER_PAGE })}`);
  // Older pages the user asked for ("Show older leases"), after the first.
  const [older, setOlder] = useState<{ leases: Lease[]; nextCursor: string | null } | null>(null);
  const [projectId, setProjectId] = useState('');
  const [gpuModels, setGpuModels] = useState('a100');
  const [gpus, setGpus] = useState('1');
  const [error, setError] = useState<unknown>(undefined);
  const [olderError, setOlderError] = useState<unknown>(undefined);
  const [releasing, setReleasing] = useState<string | null>(null);

  const reload = () => {
    setOlder(null);
    first.reload();
  };
  useLiveRefresh((event) => event.type.startsWith('Lease'), reload);

  const request = async (event: FormEvent) => {
    event.preventDefault();
    setError(undefined);
    try {
      await api<Lease>('/v1/leases?waitMs=0', { method: 'POST', headers: { 'idempotency-key': newIdempotencyKey() }, body: { projectId: projectId.trim(), gpuModels: gpuModels.split(/[\s,]+/).filter(Boolean), gpus: Number(gpus) } });
      reload();
    } catch (failure) {
      setError(failure);
    }
  };

  const nextCursor = older ? older.nextCursor : (first.data?.nextCursor ?? null);
  const showOlder = async () => {
    if (!nextCursor) return;
    setOlderError(undefined);
    try {
      const page = await api<LeasesPage>(`/v1/leases${query({ limit: LEASES_PER_PAGE, cursor: nextCursor })}`);
      setOlder((current) => ({ leases: [...(current?.leases ?? []), ...page.leases], nextCursor: page.nextCursor }));
    } catch (failure) {
      setOlderError(failure);
    }
  };
  const leases = first.data ? [...first.data.leases, ...(older?.leases ?? [])] : [];

  return (
    <section aria-labelledby="leases-heading">
      <h1 id="leases-heading">Leases</h1>
      <form onSubmit={request} aria-labelledby="lease-form-heading">
        <h2 id="lease-form-heading">Request GPUs</h2>
        <div className="form-grid">
          <Field id="lease-project" label="Project">
            <input id="lease-project" required value={projectId} onChange={(e) => setProjectId(e.target.value)} />
          </Field>
          <Field id="lease-models" label="GPU models">
            <input id="lease-models" required value={gpuModels} onChange={(e) => setGpuModels(e.target.value)} />
          </Field>
          <Field id="lease-gpus" label="GPUs">
            <input id="lease-gpus" type="number" min={1} required value={gpus} onChange={(e) => setGpus(e.target.value)} />
          </Field>
        </div>
        {error !== undefined && <Failure error={error} what="Not requested" />}
        <button type="submit" className="primary">
          Request lease
        </button>
      </form>
      <h2 id="lease-list-heading">Your leases</h2>
      {first.missing && <NotDeployed route="GET /v1/leases" />}
      {first.error !== undefined && !first.missing && <Failure error={first.error} what="The leases could not be loaded" />}
      {!first.data && first.error === undefined && <Loading what="the leases" />}
      {first.data && (
        <div className="table-wrap" tabIndex={0} role="region" aria-label="Your leases">
          <table aria-labelledby="lease-list-heading">
            <thead>
              <tr>
                <th scope="col">Lease</th>
                <th scope="col">Project</th>
                <th scope="col">State</th>
                <th scope="col">GPUs</th>
                <th scope="col">Node</th>
                <th scope="col">Granted</th>
                <th scope="col" className="num">
                  GPU-hours
                </th>
                <th scope="col">Action</th>
              </tr>
            </thead>
            <tbody>
              {leases.map((lease) => (
                <tr key={lease.leaseId}>
                  <td>
                    <code>{lease.leaseId}</code>
                  </td>
                  <td>{lease.projectId}</td>
                  <td>
                    <StateBadge state={lease.state} />
                  </td>
                  <td>
                    {lease.gpus} × {lease.gpuModel ?? lease.gpuModels.join('/')}
                  </td>
                  <td>{lease.nodeId ? `${lease.nodeId} [${(lease.gpuIndices ?? []).join(', ')}]` : '—'}</td>
                  <td>
                    <Time at={lease.grantedAt} />
                  </td>
                  <td className="num">{gpuHours(lease.gpuMs)}</td>
                  <td>
                    {(lease.state === 'requested' || lease.state === 'granted') && (
                      <button type="button" onClick={() => setReleasing(lease.leaseId)}>
                        Release lease {lease.leaseId.slice(-6)}
                      </button>
                    )}
                  </td>
                </tr>
              ))}
              {leases.length === 0 && (
                <tr>
                  <td colSpan={8} className="muted">
                    No leases yet.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
        </div>
      )}
      {olderError !== undefined && <Failure error={olderError} what="Older leases could not be loaded" />}
      {nextCursor && (
        <button type="button" onClick={() => void showOlder()}>
          Show older leases
        </button>
      )}
      {releasing && (
        <ConfirmDialog
          title="Release this lease?"
          confirmLabel="Release"
          action={() => api<Lease>(`/v1/leases/${encodeURIComponent(releasing)}`, { method: 'DELETE' })}
          onDone={() => {
            setReleasing(null);
            reload();
          }}
          onCancel={() => setReleasing(null)}
        >
          <p>Its GPUs go back to the pool and billing stops now.</p>
        </ConfirmDialog>
      )}
    </section>
  );
}
