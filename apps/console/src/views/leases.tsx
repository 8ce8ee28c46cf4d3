import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { api, newIdempotencyKey } from '../api';
import { ConfirmDialog, Failure, Field, StateBadge, Time, gpuHours } from '../components/ui';
import { useLiveRefresh } from '../hooks';
import { useTitle } from '../router';
import type { Lease } from '../types';

/** The API lists no leases; the console remembers the ids this tab requested or opened. */
const REMEMBERED_KEY = 'fastgpu.console.leases';
const REMEMBERED_MAX = 100;

function remembered(): string[] {
  try {
    const ids = JSON.parse(sessionStorage.getItem(REMEMBERED_KEY) ?? '[]') as unknown;
    return Array.isArray(ids) ? ids.filter((id): id is string => typeof id === 'string') : [];
  } catch {
    return [];
  }
}
function remember(ids: string[]): void {
  sessionStorage.setItem(REMEMBERED_KEY, JSON.stringify(ids.slice(0, REMEMBERED_MAX)));
}

/** Interactive leases: ask for N GPUs, watch the grant, release. */
export function LeasesView() {
  useTitle('Leases');
  const [ids, setIds] = useState<string[]>(remembered);
  const [leases, setLeases] = useState<Record<string, Lease | { error: unknown }>>({});
  const [projectId, setProjectId] = useState('');
  const [gpuModels, setGpuModels] = useState('a100');
  const [gpus, setGpus] = useState('1');
  const [lookup, setLookup] = useState('');
  const [error, setError] = useState<unknown>(undefined);
  const [releasing, setReleasing] = useState<string | null>(null);

  const refresh = useCallback(async (which: string[]) => {
    const answers = await Promise.all(which.map((id) => api<Lease>(`/v1/leases/${encodeURIComponent(id)}`).then((l) => [id, l] as const, (e: unknown) => [id, { error: e }] as const)));
    setLeases((current) => ({ ...current, ...Object.fromEntries(answers) }));
  }, []);
  useEffect(() => void refresh(ids), [ids, refresh]);
  useLiveRefresh((event) => typeof event.data.leaseId === 'string' && ids.includes(event.data.leaseId), () => void refresh(ids));
  const add = (id: string) => {
    const next = [id, ...ids.filter((x) => x !== id)];
    remember(next);
    setIds(next);
  };

  const request = async (event: FormEvent) => {
    event.preventDefault();
    setError(undefined);
    try {
      const lease = await api<Lease>('/v1/leases?waitMs=0', { method: 'POST', headers: { 'idempotency-key': newIdempotencyKey() }, body: { projectId: projectId.trim(), gpuModels: gpuModels.split(/[\s,]+/).filter(Boolean), gpus: Number(gpus) } });
      add(lease.leaseId);
    } catch (failure) {
      setError(failure);
    }
  };

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
      <form
        className="toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          if (lookup.trim()) add(lookup.trim());
          setLookup('');
        }}
      >
        <div className="field inline">
          <label htmlFor="lease-lookup">Open a lease by id</label>
          <input id="lease-lookup" value={lookup} onChange={(e) => setLookup(e.target.value)} />
        </div>
        <button type="submit">Open lease</button>
      </form>
      <h2 id="lease-list-heading">Leases of this tab</h2>
      <div className="table-wrap" tabIndex={0} role="region" aria-label="Leases of this tab">
        <table aria-labelledby="lease-list-heading">
          <thead>
            <tr>
              <th scope="col">Lease</th>
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
            {ids.map((id) => {
              const lease = leases[id];
              if (!lease || 'error' in lease) {
                return (
                  <tr key={id}>
                    <td>{id}</td>
                    <td colSpan={6}>{lease ? <Failure error={lease.error} /> : 'Loading…'}</td>
                  </tr>
                );
              }
              return (
                <tr key={id}>
                  <td>
                    <code>{id}</code>
                  </td>
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
                      <button type="button" onClick={() => setReleasing(id)}>
                        Release lease {id.slice(-6)}
                      </button>
                    )}
                  </td>
                </tr>
              );
            })}
            {ids.length === 0 && (
              <tr>
                <td colSpan={7} className="muted">
                  No leases requested in this tab.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
      {releasing && (
        <ConfirmDialog
          title="Release this lease?"
          confirmLabel="Release"
          action={() => api<Lease>(`/v1/leases/${encodeURIComponent(releasing)}`, { method: 'DELETE' })}
          onDone={(lease) => {
            setLeases((current) => ({ ...current, [lease.leaseId]: lease }));
            setReleasing(null);
          }}
          onCancel={() => setReleasing(null)}
        >
          <p>Its GPUs go back to the pool and billing stops now.</p>
        </ConfirmDialog>
      )}
    </section>
  );
}
