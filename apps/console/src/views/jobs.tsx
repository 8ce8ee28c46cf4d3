import { useMemo, useRef, useState } from 'react';
import {
  columnFilteringFeature,
  columnGroupingFeature,
  createColumnHelper,
  createExpandedRowModel,
  createFilteredRowModel,
  createGroupedRowModel,
  createSortedRowModel,
  filterFn_equals,
  filterFn_includesString,
  globalFilteringFeature,
  rowExpandingFeature,
  rowSortingFeature,
  sortFn_alphanumeric,
  sortFn_basic,
  tableFeatures,
  useTable,
  type ColumnFiltersState,
  type ExpandedState,
  type GroupingState,
  type SortingState,
} from '@tanstack/react-table';
import { useVirtualizer } from '@tanstack/react-virtual';
import { Failure, StateBadge, Time, gpuHours } from '../components/ui';
import { useDebounced } from '../hooks';
import { JOBS_LOADED_MAX, useJobs } from '../jobs-store';
import { Link, useTitle } from '../router';
import { useSession } from '../session';
import { JOB_STATES, type JobSummary } from '../types';

const features = tableFeatures({
  columnFilteringFeature,
  globalFilteringFeature,
  rowSortingFeature,
  columnGroupingFeature,
  rowExpandingFeature,
  filteredRowModel: createFilteredRowModel(),
  sortedRowModel: createSortedRowModel(),
  groupedRowModel: createGroupedRowModel(),
  expandedRowModel: createExpandedRowModel(),
  filterFns: { includesString: filterFn_includesString, equals: filterFn_equals },
  sortFns: { alphanumeric: sortFn_alphanumeric, basic: sortFn_basic },
});

const helper = createColumnHelper<typeof features, JobSummary>();
const baseColumns = helper.columns([
  helper.accessor('jobId', { header: 'Job', sortFn: 'alphanumeric', enableGrouping: false }),
  helper.accessor('tenantId', { header: 'Tenant', sortFn: 'alphanumeric', filterFn: 'equals' }),
  helper.accessor('projectId', { header: 'Project', sortFn: 'alphanumeric', filterFn: 'equals' }),
  helper.accessor('state', { header: 'State', sortFn: 'alphanumeric', filterFn: 'equals' }),
  helper.accessor('submittedAt', { header: 'Submitted', sortFn: 'basic', enableGlobalFilter: false, enableGrouping: false }),
  helper.accessor('completedAt', { header: 'Completed', sortFn: 'basic', enableGlobalFilter: false, enableGrouping: false, sortUndefined: 'last' }),
  helper.accessor('gpuMsObserved', { header: 'GPU-hours', sortFn: 'basic', enableGlobalFilter: false, enableGrouping: false }),
  helper.accessor('name', { header: 'Name', sortFn: 'alphanumeric', enableGrouping: false }),
]);
const tenantColumns = baseColumns.filter((column) => (column as { accessorKey?: string }).accessorKey !== 'tenantId');

/** Fixed row height: rows are not measured, so scrolling 100,000 of them stays cheap. */
const ROW_PX = 36;
const FILTER_DEBOUNCE_MS = 200;

/** The jobs table: every job the key may see, live; filter, sort and group in the browser. */
export function JobsView() {
  useTitle('Jobs');
  const { me } = useSession();
  const { rows: data, complete, truncated, error } = useJobs();
  const platform = me.tenantId === null;
  const columns = platform ? baseColumns : tenantColumns;

  const [search, setSearch] = useState('');
  const [stateFilter, setStateFilter] = useState('');
  const [groupBy, setGroupBy] = useState<'' | 'projectId' | 'state' | 'tenantId'>('');
  const [sorting, setSorting] = useState<SortingState>([{ id: 'submittedAt', desc: true }]);
  const [expanded, setExpanded] = useState<ExpandedState>(true);
  const globalFilter = useDebounced(search.trim(), FILTER_DEBOUNCE_MS);
  const columnFilters = useMemo<ColumnFiltersState>(() => (stateFilter ? [{ id: 'state', value: stateFilter }] : []), [stateFilter]);
  const grouping = useMemo<GroupingState>(() => (groupBy ? [groupBy] : []), [groupBy]);

  const table = useTable(
    {
      features,
      columns,
      data,
      getRowId: (row) => row.jobId,
      state: { sorting, globalFilter, columnFilters, grouping, expanded },
      onSortingChange: setSorting,
      onExpandedChange: setExpanded,
      globalFilterFn: 'includesString',
      groupedColumnMode: false,
      autoResetExpanded: false,
    },
    (state) => ({ sorting: state.sorting }),
  );
  const rows = table.getRowModel().rows;
  const leafCount = groupBy ? rows.filter((r) => !r.getIsGrouped()).length : rows.length;

  const scrollRef = useRef<HTMLDivElement>(null);
  const virtualizer = useVirtualizer({ count: rows.length, getScrollElement: () => scrollRef.current, estimateSize: () => ROW_PX, overscan: 12 });
  const items = virtualizer.getVirtualItems();
  const padTop = items.length ? (items[0]?.start ?? 0) : 0;
  const padBottom = items.length ? virtualizer.getTotalSize() - (items[items.length - 1]?.end ?? 0) : 0;
  const headers = table.getHeaderGroups()[0]?.headers ?? [];

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
      <form className="toolbar" role="search" aria-label="Filter jobs" onSubmit={(e) => e.preventDefault()}>
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
          <select id="jobs-group" value={groupBy} onChange={(e) => setGroupBy(e.target.value as typeof groupBy)}>
            <option value="">nothing</option>
            <option value="projectId">project</option>
            <option value="state">state</option>
            {platform && <option value="tenantId">tenant</option>}
          </select>
        </div>
      </form>
      <p role="status" className="muted" data-testid="jobs-count">
        {leafCount.toLocaleString()} of {data.length.toLocaleString()} jobs shown{complete ? '' : ' (loading more…)'}
        {truncated ? ` — the newest ${JOBS_LOADED_MAX.toLocaleString()} are loaded` : ''}
      </p>
      {error !== undefined && <Failure error={error} what="Jobs could not be loaded" />}
      <div className="table-scroll" ref={scrollRef} tabIndex={0} role="region" aria-label="Jobs table, scrollable">
        <table className="grid jobs" aria-rowcount={rows.length + 1}>
          <thead>
            <tr aria-rowindex={1}>
              {headers.map((header) => {
                const sorted = header.column.getIsSorted();
                return (
                  <th key={header.id} scope="col" className={`col-${header.column.id}`} aria-sort={sorted === 'asc' ? 'ascending' : sorted === 'desc' ? 'descending' : undefined}>
                    <button type="button" className="sort" onClick={header.column.getToggleSortingHandler()}>
                      <table.FlexRender header={header} />
                      <span aria-hidden="true">{sorted === 'asc' ? ' ▲' : sorted === 'desc' ? ' ▼' : ''}</span>
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
            {items.map((item) => {
              const row = rows[item.index];
              if (!row) return null;
              if (row.getIsGrouped()) {
                const count = row.subRows.length;
                return (
                  <tr key={row.id} className="group-row" aria-rowindex={item.index + 2}>
                    <th scope="rowgroup" colSpan={headers.length}>
                      <button type="button" aria-expanded={row.getIsExpanded()} onClick={row.getToggleExpandedHandler()}>
                        {String(row.groupingValue ?? '—')} <span className="muted">({count.toLocaleString()})</span>
                      </button>
                    </th>
                  </tr>
                );
              }
              const job = row.original;
              return (
                <tr key={row.id} aria-rowindex={item.index + 2}>
                  <td className="col-jobId">
                    <Link to={`/jobs/${encodeURIComponent(job.jobId)}`} title={job.jobId}>
                      {job.jobId}
                    </Link>
                  </td>
                  {platform && <td>{job.tenantId}</td>}
                  <td>{job.projectId}</td>
                  <td>
                    <StateBadge state={job.state} />
                  </td>
                  <td>
                    <Time at={job.submittedAt} />
                  </td>
                  <td>
                    <Time at={job.completedAt} />
                  </td>
                  <td className="num">{gpuHours(job.gpuMsObserved)}</td>
                  <td>{job.name ?? ''}</td>
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
        {complete && rows.length === 0 && <p className="empty">No jobs{data.length ? ' match the filter' : ' yet'}.</p>}
      </div>
    </section>
  );
}
