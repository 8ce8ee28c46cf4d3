import { useMemo, useRef, useState } from 'react';
import { createColumnHelper, rowSortingFeature, tableFeatures, useTable, type SortingState } from '@tanstack/react-table';
import { useVirtualizer } from '@tanstack/react-virtual';
import { Failure, StateBadge, Time, gpuHours } from '../components/ui';
import { useDebounced } from '../hooks';
import { JOBS_LOADED_MAX, useJobs } from '../jobs-store';
import { displayItems, filterJobs, sortJobs, type GroupKey, type JobsSort, type SortKey } from '../jobs-view-model';
import { Link, useTitle } from '../router';
import { useSession } from '../session';
import { JOB_STATES, type JobSummary } from '../types';

/**
 * TanStack Table holds the columns, the header cells and the sort state (manual sorting: the rows
 * arrive sorted from jobs-view-model.ts) and renders the rows of the scroll window only.
 */
const features = tableFeatures({ rowSortingFeature });
const helper = createColumnHelper<typeof features, JobSummary>();
const jobColumn = helper.accessor('jobId', {
  header: 'Job',
  cell: (info) => (
    <Link to={`/jobs/${encodeURIComponent(info.getValue())}`} title={info.getValue()}>
      {info.getValue()}
    </Link>
  ),
});
const restColumns = [
  helper.accessor('projectId', { header: 'Project' }),
  helper.accessor('state', { header: 'State', cell: (info) => <StateBadge state={info.getValue()} /> }),
  helper.accessor('submittedAt', { header: 'Submitted', cell: (info) => <Time at={info.getValue()} /> }),
  helper.accessor('completedAt', { header: 'Completed', cell: (info) => <Time at={info.getValue()} /> }),
  helper.accessor('gpuMsObserved', { header: 'GPU-hours', cell: (info) => gpuHours(info.getValue()) }),
  helper.accessor('name', { header: 'Name', cell: (info) => info.getValue() ?? '' }),
];
const tenantColumns = helper.columns([jobColumn, ...restColumns]);
const platformColumns = helper.columns([jobColumn, helper.accessor('tenantId', { header: 'Tenant' }), ...restColumns]);

/** Fixed row height: rows are not measured, so scrolling 100,000 of them stays cheap. */
const ROW_PX = 36;
const FILTER_DEBOUNCE_MS = 200;
const NO_GROUPS_CLOSED: ReadonlySet<string> = new Set();

/** The jobs table: every job the key may see, live; filter, sort and group in the browser. */
export function JobsView() {
  useTitle('Jobs');
  const { me } = useSession();
  const { rows: data, complete, truncated, error } = useJobs();
  const platform = me.tenantId === null;

  const [search, setSearch] = useState('');
  const [stateFilter, setStateFilter] = useState('');
  const [groupBy, setGroupBy] = useState<GroupKey>('');
  const [collapsed, setCollapsed] = useState<ReadonlySet<string>>(NO_GROUPS_CLOSED);
  const [sorting, setSorting] = useState<SortingState>([{ id: 'submittedAt', desc: true }]);
  const text = useDebounced(search, FILTER_DEBOUNCE_MS);
  const sort = useMemo<JobsSort | null>(() => (sorting[0] ? { id: sorting[0].id as SortKey, desc: sorting[0].desc } : null), [sorting]);

  // Each stage recomputes only when its own inputs change (a live update re-runs all three; a sort only the last two).
  const filtered = useMemo(() => filterJobs(data, text, stateFilter), [data, text, stateFilter]);
  const sorted = useMemo(() => sortJobs(filtered, sort), [filtered, sort]);
  const items = useMemo(() => displayItems(sorted, groupBy, collapsed), [sorted, groupBy, collapsed]);

  const scrollRef = useRef<HTMLDivElement>(null);
  const virtualizer = useVirtualizer({ count: items.length, getScrollElement: () => scrollRef.current, estimateSize: () => ROW_PX, overscan: 12 });
  const windowItems = virtualizer.getVirtualItems();
  const first = windowItems[0]?.index ?? 0;
  const last = windowItems[windowItems.length - 1]?.index ?? -1;
  const windowJobs = useMemo(() => {
    const jobs: JobSummary[] = [];
    for (let i = first; i <= last; i++) {
      const item = items[i];
      if (item?.kind === 'job') jobs.push(item.job);
    }
    return jobs;
  }, [items, first, last]);

  const table = useTable(
    {
      features,
      columns: platform ? platformColumns : tenantColumns,
      data: windowJobs,
      getRowId: (row) => row.jobId,
      manualSorting: true,
      state: { sorting },
      onSortingChange: setSorting,
    },
    (state) => ({ sorting: state.sorting }),
  );
  const rowsById = new Map(table.getRowModel().rows.map((row) => [row.id, row]));
  const headers = table.getHeaderGroups()[0]?.headers ?? [];
  const padTop = windowItems[0]?.start ?? 0;
  const padBottom = windowItems.length ? virtualizer.getTotalSize() - (windowItems[windowItems.length - 1]?.end ?? 0) : 0;
  const toggleGroup = (value: string) =>
    setCollapsed((current) => {
      const next = new Set(current);
      if (!next.delete(value)) next.add(value);
      return next;
    });

  return (
    <section aria-labelledby="jobs-heading">
      <div className="view-head">
        <h1 id="jobs-heading">Jobs</h1>
        {me.role === 'tenant' && (
          <Link to="/jobs/new" className="button primary">
            Submit job
          </Link>
        )}
      </div>
      <form className="toolbar" role="search" aria-label="Find jobs" onSubmit={(e) => e.preventDefault()}>
        <div className="field inline">
          <label htmlFor="jobs-filter">Filter</label>
          <input id="jobs-filter" type="search" placeholder="job id, name, project…" value={search} onChange={(e) => setSearch(e.target.value)} />
        </div>
        <div className="field inline">
          <label htmlFor="jobs-state">State</label>
          <select id="jobs-state" value={stateFilter} onChange={(e) => setStateFilter(e.target.value)}>
            <option value="">any</option>
            {JOB_STATES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </div>
        <div className="field inline">
          <label htmlFor="jobs-group">Group by</label>
          <select id="jobs-group" value={groupBy} onChange={(e) => (setGroupBy(e.target.value as GroupKey), setCollapsed(NO_GROUPS_CLOSED))}>
            <option value="">nothing</option>
            <option value="projectId">project</option>
            <option value="state">state</option>
            {platform && <option value="tenantId">tenant</option>}
          </select>
        </div>
      </form>
      <p role="status" className="muted" data-testid="jobs-count">
        {sorted.length.toLocaleString()} of {data.length.toLocaleString()} jobs shown{complete ? '' : ' (loading more…)'}
        {truncated ? ` — the newest ${JOBS_LOADED_MAX.toLocaleString()} are loaded` : ''}
      </p>
      {error !== undefined && <Failure error={error} what="Jobs could not be loaded" />}
      <div className="table-scroll" ref={scrollRef} tabIndex={0} role="region" aria-label="Jobs table, scrollable">
        <table className="grid jobs" aria-rowcount={items.length + 1}>
          <thead>
            <tr aria-rowindex={1}>
              {headers.map((header) => {
                const direction = header.column.getIsSorted();
                return (
                  <th key={header.id} scope="col" className={`col-${header.column.id}`} aria-sort={direction === 'asc' ? 'ascending' : direction === 'desc' ? 'descending' : undefined}>
                    <button type="button" className="sort" onClick={header.column.getToggleSortingHandler()}>
                      <table.FlexRender header={header} />
                      <span aria-hidden="true">{direction === 'asc' ? ' ▲' : direction === 'desc' ? ' ▼' : ''}</span>
                    </button>
                  </th>
                );
              })}
            </tr>
          </thead>
          <tbody>
            {padTop > 0 && (
              <tr aria-hidden="true" className="spacer">
                <td colSpan={headers.length} style={{ height: padTop }} />
              </tr>
            )}
            {windowItems.map((virtual) => {
              const item = items[virtual.index];
              if (!item) return null;
              if (item.kind === 'group') {
                return (
                  <tr key={item.key} className="group-row" aria-rowindex={virtual.index + 2}>
                    <th scope="rowgroup" colSpan={headers.length}>
                      <button type="button" aria-expanded={item.expanded} onClick={() => toggleGroup(item.value)}>
                        <span aria-hidden="true">{item.expanded ? '▾ ' : '▸ '}</span>
                        {item.value || '—'} <span className="muted">({item.count.toLocaleString()})</span>
                      </button>
                    </th>
                  </tr>
                );
              }
              const row = rowsById.get(item.job.jobId);
              if (!row) return null;
              return (
                <tr key={row.id} aria-rowindex={virtual.index + 2}>
                  {row.getAllCells().map((cell) => (
                    <td key={cell.id} className={cell.column.id === "gpuMsObserved" ? 'num' : `col-${cell.column.id}`}>
                      <table.FlexRender cell={cell} />
                    </td>
                  ))}
                </tr>
              );
            })}
            {padBottom > 0 && (
              <tr aria-hidden="true" className="spacer">
                <td colSpan={headers.length} style={{ height: padBottom }} />
              </tr>
            )}
          </tbody>
        </table>
        {complete && items.length === 0 && <p className="empty">No jobs{data.length ? ' match the filter' : ' yet'}.</p>}
      </div>
    </section>
  );
}
