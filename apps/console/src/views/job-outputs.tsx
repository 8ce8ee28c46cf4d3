import { useEffect, useState } from 'react';
import { authorization, describeFailure, download, query } from '../api';
import { Failure, Loading } from '../components/ui';
import { useApi } from '../hooks';
import { SseParser } from '../sse';
import type { Subtask } from '../types';

/** Most log text kept in the page; the rest is left to the API (`npm run events -- logs`). */
const LOG_CHARS_MAX = 1_000_000;

interface ResultsAnswer {
  results: { subtaskIndex: number; attempt: number; bytes: number; sha256: string; exitCode: number }[];
  aggregate: { bytes: number; sha256?: string } | null;
}

/** One attempt's stored log (GET /v1/jobs/{id}/logs, an event stream that ends when all is sent). */
function useLog(jobId: string, subtask: number, attempt: number, follow: boolean): { text: string; error?: string; done: boolean } {
  const [state, setState] = useState<{ text: string; error?: string; done: boolean }>({ text: '', done: false });
  useEffect(() => {
    const controller = new AbortController();
    setState({ text: '', done: false });
    void (async () => {
      try {
        const response = await fetch(`/v1/jobs/${encodeURIComponent(jobId)}/logs${query({ subtask, attempt, follow: follow ? 'true' : undefined })}`, { headers: { accept: 'text/event-stream', ...authorization() }, signal: controller.signal });
        if (!response.ok || !response.body) {
          const body = (await response.json().catch(() => ({}))) as { error?: { message?: string } };
          setState({ text: '', error: body.error?.message ?? `HTTP ${response.status}`, done: true });
          return;
        }
        const parser = new SseParser();
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let text = '';
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          for (const message of parser.feed(value)) {
            const line = JSON.parse(message.data) as { text?: string };
            if (typeof line.text === 'string') text = (text + line.text).slice(-LOG_CHARS_MAX);
          }
          setState({ text, done: false });
        }
        setState({ text, done: true });
      } catch (error) {
        if (!controller.signal.aborted) setState((s) => ({ text: s.text, error: describeFailure(error), done: true }));
      }
    })();
    return () => controller.abort();
  }, [jobId, subtask, attempt, follow]);
  return state;
}

export function JobLogs({ jobId, subtasks }: { jobId: string; subtasks: Subtask[] }) {
  const started = subtasks.filter((s) => s.attempt > 0);
  const [choice, setChoice] = useState<string>('');
  const [follow, setFollow] = useState(false);
  const chosen = started.find((s) => String(s.index) === choice) ?? started[0];
  if (!chosen) return <p className="muted">No sub-task has started yet, so there are no logs.</p>;
  return (
    <div>
      <div className="toolbar">
        <div className="field inline">
          <label htmlFor="log-subtask">Sub-task</label>
          <select id="log-subtask" value={String(chosen.index)} onChange={(e) => setChoice(e.target.value)}>
            {started.map((s) => (
              <option key={s.index} value={s.index}>
                #{s.index} (attempt {s.attempt})
              </option>
            ))}
          </select>
        </div>
        <label>
          <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.target.checked)} /> Follow while it runs
        </label>
      </div>
      <LogText jobId={jobId} subtask={chosen.index} attempt={chosen.attempt} follow={follow} />
    </div>
  );
}

function LogText({ jobId, subtask, attempt, follow }: { jobId: string; subtask: number; attempt: number; follow: boolean }) {
  const log = useLog(jobId, subtask, attempt, follow);
  return (
    <>
      {log.error && <p className="error">{log.error}</p>}
      <pre aria-label={`Log of sub-task ${subtask}, attempt ${attempt}`} tabIndex={0} data-testid="job-log">
        {log.text || (log.done ? '(no output stored for this attempt; simulated nodes run no program)' : 'Loading…')}
      </pre>
    </>
  );
}

export function JobResults({ jobId }: { jobId: string }) {
  const results = useApi<ResultsAnswer>(`/v1/jobs/${encodeURIComponent(jobId)}/results`);
  const [failure, setFailure] = useState<unknown>(undefined);
  if (results.error !== undefined) return <Failure error={results.error} what="Results" />;
  if (!results.data) return <Loading what="results" />;
  const get = (path: string, name: string) => void download(path, '*/*', name).catch(setFailure);
  if (results.data.results.length === 0) return <p className="muted">No results stored (a job with a workload and a result file stores them).</p>;
  return (
    <>
      {failure !== undefined && <Failure error={failure} what="Download" />}
      <div className="table-wrap" tabIndex={0} role="region" aria-label="Results">
        <table>
          <caption className="muted">Results by sub-task</caption>
          <thead>
            <tr>
              <th scope="col">Sub-task</th>
              <th scope="col">Attempt</th>
              <th scope="col" className="num">Bytes</th>
              <th scope="col">Exit code</th>
              <th scope="col">SHA-256</th>
              <th scope="col">Download</th>
            </tr>
          </thead>
          <tbody>
            {results.data.results.map((r) => (
              <tr key={`${r.subtaskIndex}-${r.attempt}`}>
                <td>#{r.subtaskIndex}</td>
                <td>{r.attempt}</td>
                <td className="num">{r.bytes}</td>
                <td>{r.exitCode}</td>
                <td>
                  <code>{r.sha256.slice(0, 16)}…</code>
                </td>
                <td>
                  <button type="button" onClick={() => get(`/v1/jobs/${encodeURIComponent(jobId)}/results/${r.subtaskIndex}`, `result-${r.subtaskIndex}`)}>
                    Download result {r.subtaskIndex}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {results.data.aggregate && (
        <button type="button" onClick={() => get(`/v1/jobs/${encodeURIComponent(jobId)}/results/aggregate`, 'results')}>
          Download aggregate ({results.data.aggregate.bytes} bytes)
        </button>
      )}
    </>
  );
}
