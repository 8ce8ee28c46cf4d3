import { useMemo, useRef, useState } from 'react';
import { useVirtualizer } from '@tanstack/react-virtual';
import { api } from '../api';

import { ConfirmDialog, Failure, Loading, NotDeployed, StateBadge, Time } from '../components/ui';
import { useApi, useDebounced, useLiveRefresh } from '../hooks';
import { useTitle } from '../router';
import type { FleetNode } from '../types';
import { PALETTE } from '../usage-series';

const ROW_PX = 40;
const FLEET_EVENTS = /^(Subtask(Placed|Started|Completed|Failed|Preempted|Requeued|Abandoned)|Node(Registered|Lost|Recovered|Drained|Undrained)|Lease(Granted|Released)|JobCompleted)$/;

interface NodesAnswer {
  nodes: { nodeId: string; gpuModel: string; gpuCount: number; freeGpus: number; status: 'ready' | 'drained' | 'lost' }[];
}

/** The colour of a tenant: stable across reloads (a hash of its id into the palette). */
export function tenantColour(tenantId: string): string {
  let hash = 0;
  for (let i = 0; i < tenantId.length; i++) hash = (hash * 31 + tenantId.charCodeAt(i)) >>> 0;
  return PALETTE[hash % PALETTE.length] as string;
}

/** GET /v1/nodes in the fleet's shape, for a server without /v1/fleet (no holders: used GPUs shown as held by "?"). */
function fromNodes(answer: NodesAnswer): FleetNode[] {
  return answer.nodes.map((n) => ({
    nodeId: n.nodeId,
    gpuModel: n.gpuModel,
    state: n.status === 'ready' ? 'healthy' : n.status,
    lastHeartbeat: null,
    gpuCount: n.gpuCount,
    freeGpus: n.freeGpus,
    labels: {},
    gpus: Array.from({ length: n.gpuCount }, (_, index) => ({ index, holder: index < n.gpuCount - n.freeGpus ? { kind: 'subtask', tenantId: '?', jobId: null, subtaskId: null, leaseId: null, attempt: 0, since: '' } : null })),
  }));
}

/** Nodes × GPUs, each GPU coloured by the tenant holding it; live; drain and undrain. */
export function FleetView() {
  useTitle('Fleet');
  const fleet = useApi<{ nodes: FleetNode[] }>('/v1/fleet');
  const nodesFallback = useApi<NodesAnswer>(fleet.missing ? '/v1/nodes' : null);
  const reload = fleet.missing ? nodesFallback.reload : fleet.reload;
  useLiveRefresh((event) => FLEET_EVENTS.test(event.type), reload);
  const all = useMemo(() => (fleet.missing ? (nodesFallback.data ? fromNodes(nodesFallback.data) : undefined) : fleet.data?.nodes), [fleet.missing, fleet.data, nodesFallback.data]);
  const [search, setSearch] = useState('');
  const [state, setState] = useState('');
  const needle = useDebounced(search.trim().toLowerCase(), 150);
  const nodes = useMemo(() => (all ?? []).filter((n) => (!state || n.state === state) && (!needle || n.nodeId.toLowerCase().includes(needle) || n.gpuModel.toLowerCase().includes(needle))), [all, state, needle]);
  const tenants = useMemo(() => {
    const counts = new Map<string, number>();
    for (const n of all ?? []) for (const g of n.gpus) if (g.holder) counts.set(g.holder.tenantId, (counts.get(g.holder.tenantId) ?? 0) + 1);
    return [...counts.entries()].sort(([a], [b]) => a.localeCompare(b));
  }, [all]);
  const [confirm, setConfirm] = useState<{ nodeId: string; drain: boolean } | null>(null);
  const [done, setDone] = useState<string | null>(null);

  const scrollRef = useRef<HTMLDivElement>(null);
  const virtualizer = useVirtualizer({ count: nodes.length, getScrollElement: () => scrollRef.current, estimateSize: () => ROW_PX, overscan: 10 });
  const items = virtualizer.getVirtualItems();
  const padTop = items[0]?.start ?? 0;
  const padBottom = items.length ? virtualizer.getTotalSize() - (items[items.length - 1]?.end ?? 0) : 0;
  const error = fleet.missing ? nodesFallback.error : fleet.error;
  const used = (all ?? []).reduce((sum, n) => sum + n.gpus.filter((g) => g.holder).length, 0);
  const total = (all ?? []).reduce((sum, n) => sum + n.gpus.length, 0);

  return (
    <section aria-labelledby="fleet-heading">
      <h1 id="fleet-heading">Fleet</h1>
      {fleet.missing && <NotDeployed route="GET /v1/fleet" />}
      {fleet.missing && <p className="muted">Showing GET /v1/nodes instead: GPU counts without their holders.</p>}
      <form className="toolbar" role="search" aria-label="Find nodes" onSubmit={(e) => e.preventDefault()}>
        <div className="field inline">
          <label htmlFor="fleet-filter">Node or model</label>
          <input id="fleet-filter" type="search" value={search} onChange={(e) => setSearch(e.target.value)} />
        </div>
        <div className="field inline">
          <label htmlFor="fleet-state">State</label>
          <select id="fleet-state" value={state} onChange={(e) => setState(e.target.value)}>
            <option value="">any</option>
            <option value="healthy">healthy</option>
            <option value="draining">draining</option>
            <option value="drained">drained</option>
            <option value="lost">lost</option>
          </select>
        </div>
      </form>
      {done && (
        <p role="status" className="success">
          {done}
        </p>
      )}
      {error !== undefined && <Failure error={error} what="The fleet could not be loaded" />}
      {!all && error === undefined && <Loading what="the fleet" />}
      {all && (
        <>
          <p role="status" className="muted" data-testid="fleet-summary">
            {nodes.length.toLocaleString()} of {all.length.toLocaleString()} nodes shown · {used.toLocaleString()} of {total.toLocaleString()} GPUs held
          </p>
          <ul className="legend" aria-label="Tenants holding GPUs">
            <li>
              <span className="swatch" style={{ background: '#fff' }} aria-hidden="true" />
              free
            </li>
            {tenants.map(([tenant, count]) => (
              <li key={tenant}>
                <span className="swatch" style={{ background: tenantColour(tenant) }} aria-hidden="true" />
                {tenant} ({count} GPUs)
              </li>
            ))}
          </ul>
          <div className="table-scroll" ref={scrollRef} tabIndex={0} role="region" aria-label="Nodes and GPUs, scrollable">
            <table className="grid fleet" aria-rowcount={nodes.length + 1}>
              <thead>
                <tr aria-rowindex={1}>
                  <th scope="col" className="col-node">
                    Node
                  </th>
                  <th scope="col" className="col-model">
                    Model
                  </th>
                  <th scope="col" className="col-state">
                    State
                  </th>
                  <th scope="col">GPUs</th>
                  <th scope="col" className="col-hb">
                    Last heartbeat
                  </th>
                  <th scope="col" className="col-action">
                    Action
                  </th>
                </tr>
              </thead>
              <tbody>
                {padTop > 0 && (
                  <tr aria-hidden="true" className="spacer">
                    <td colSpan={6} style={{ height: padTop }} />
                  </tr>
                )}
                {items.map((item) => {
                  const node = nodes[item.index];
                  if (!node) return null;
                  return (
                    <tr key={node.nodeId} aria-rowindex={item.index + 2} className={`node-${node.state}`} data-testid={`node-${node.nodeId}`}>
                      <th scope="row" className="col-node">
                        {node.nodeId}
                      </th>
                      <td>{node.gpuModel}</td>
                      <td>
                        <StateBadge state={node.state} />
                      </td>
                      <td>
                        <span className="gpus">
                          {node.gpus.map((g) => (
                            <span
                              key={g.index}
                              role="img"
                              className={g.holder ? 'gpu held' : 'gpu free'}
                              style={g.holder ? { background: tenantColour(g.holder.tenantId), color: '#fff' } : undefined}
                              aria-label={g.holder ? `GPU ${g.index}: ${g.holder.tenantId}${g.holder.jobId ? `, job ${g.holder.jobId}` : g.holder.leaseId ? `, lease ${g.holder.leaseId}` : ''}` : `GPU ${g.index}: free`}
                              title={g.holder ? `GPU ${g.index} held by ${g.holder.tenantId}${g.holder.subtaskId ? ` (sub-task ${g.holder.subtaskId}, attempt ${g.holder.attempt})` : g.holder.leaseId ? ` (lease ${g.holder.leaseId})` : ''}${g.holder.since ? ` since ${g.holder.since}` : ''}` : `GPU ${g.index} free`}
                              data-holder={g.holder?.tenantId ?? ''}
                            >
                              {g.holder ? g.holder.tenantId.slice(0, 2) : ''}
                            </span>
                          ))}
                        </span>
                      </td>
                      <td className="col-hb">
                        <Time at={node.lastHeartbeat} />
                      </td>
                      <td className="col-action">
                        {node.state === 'healthy' ? (
                          <button type="button" onClick={() => setConfirm({ nodeId: node.nodeId, drain: true })}>
                            Drain {node.nodeId}
                          </button>
                        ) : node.state === 'drained' || node.state === 'draining' ? (
                          <button type="button" onClick={() => setConfirm({ nodeId: node.nodeId, drain: false })}>
                            Undrain {node.nodeId}
                          </button>
                        ) : null}
                      </td>
                    </tr>
                  );
                })}
                {padBottom > 0 && (
                  <tr aria-hidden="true" className="spacer">
                    <td colSpan={6} style={{ height: padBottom }} />
                  </tr>
                )}
              </tbody>
            </table>
          </div>
        </>
      )}
      {confirm && (
        <ConfirmDialog
          title={confirm.drain ? `Drain ${confirm.nodeId}?` : `Undrain ${confirm.nodeId}?`}
          confirmLabel={confirm.drain ? 'Drain node' : 'Undrain node'}
          danger={confirm.drain}
          action={() => api<{ status: string; sequence: number }>(`/v1/nodes/${encodeURIComponent(confirm.nodeId)}/${confirm.drain ? 'drain' : 'undrain'}`, { method: 'POST', body: confirm.drain ? { reason: 'drained from the console' } : undefined })}
          onDone={(answer) => {
            setDone(`${confirm.nodeId}: ${answer.status} (event at sequence ${answer.sequence}).`);
            setConfirm(null);
            reload();
          }}
          onCancel={() => setConfirm(null)}
        >
          <p>{confirm.drain ? 'No new work is placed on it; work already running there finishes (it shows as draining until its GPUs are empty).' : 'It takes new work again.'}</p>
        </ConfirmDialog>
      )}
    </section>
  );
}
