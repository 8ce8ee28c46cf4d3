import type { Subtask } from '../types';

const ROW_PX = 22;
const LABEL_PX = 70;
const WIDTH_PX = 900;
/** Most sub-tasks drawn; the table below lists every one. */
export const TIMELINE_ROWS_MAX = 200;

const COLOURS: Record<string, string> = {
  pending: '#e0a800',
  placed: '#5b8def',
  running: '#0b5cad',
  succeeded: '#1e7b3c',
  failed: '#b3261e',
  preempted: '#7c3aed',
  cancelled: '#6b7280',
};

/**
 * Sub-tasks on a time axis: a bar from placement (or start) to end (or now), coloured by state,
 * with the state in each bar's title. An image for sight; the sub-task table is its text.
 */
export function SubtaskTimeline({ subtasks, fromIso, nowMs }: { subtasks: Subtask[]; fromIso: string; nowMs: number }) {
  const shown = subtasks.slice(0, TIMELINE_ROWS_MAX);
  const fromMs = Date.parse(fromIso);
  const ends = shown.map((s) => (s.endedAt ? Date.parse(s.endedAt) : nowMs));
  const toMs = Math.max(fromMs + 1000, ...ends);
  const x = (ms: number) => LABEL_PX + ((ms - fromMs) / (toMs - fromMs)) * (WIDTH_PX - LABEL_PX - 10);
  const height = shown.length * ROW_PX + 24;
  const running = subtasks.filter((s) => s.state === 'running').length;
  const done = subtasks.filter((s) => s.state === 'succeeded').length;
  const label = `Timeline of ${subtasks.length} sub-tasks: ${done} succeeded, ${running} running, ${subtasks.length - done - running} other, over ${Math.round((toMs - fromMs) / 1000)} seconds since submission.`;
  return (
    <div className="timeline">
      <svg role="img" style={{ maxWidth: WIDTH_PX }} aria-label={label} width="100%" viewBox={`0 0 ${WIDTH_PX} ${height}`} data-testid="subtask-timeline">
        <text x={LABEL_PX} y={12} fontSize={11} fill="#4f5b66">
          submitted
        </text>
        <text x={WIDTH_PX - 10} y={12} fontSize={11} fill="#4f5b66" textAnchor="end">
          {Math.round((toMs - fromMs) / 1000)} s
        </text>
        {shown.map((s, i) => {
          const y = 18 + i * ROW_PX;
          const startIso = s.startedAt ?? s.placedAt;
          const start = startIso ? Date.parse(startIso) : undefined;
          const end = s.endedAt ? Date.parse(s.endedAt) : nowMs;
          return (
            <g key={s.subtaskId}>
              <text x={4} y={y + 14} fontSize={12} fill="#1b2631">
                #{s.index}
              </text>
              {start !== undefined && (
                <rect x={x(start)} y={y + 3} width={Math.max(2, x(end) - x(start))} height={ROW_PX - 6} fill={COLOURS[s.state] ?? '#6b7280'} rx={2}>
                  <title>{`#${s.index} ${s.state}, attempt ${s.attempt}${s.nodeId ? ` on ${s.nodeId}` : ''}`}</title>
                </rect>
              )}
              {start === undefined && (
                <text x={LABEL_PX} y={y + 14} fontSize={11} fill="#4f5b66">
                  {s.state}
                </text>
              )}
            </g>
          );
        })}
      </svg>
    </div>
  );
}
