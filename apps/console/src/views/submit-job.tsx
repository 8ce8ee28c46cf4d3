import { useRef, useState, type FormEvent } from 'react';
import { api, ApiFailure, describeFailure, newIdempotencyKey } from '../api';
import { Field, Failure } from '../components/ui';
import { navigate, useTitle } from '../router';
import type { JobView } from '../types';

interface Draft {
  projectId: string;
  name: string;
  gpuModels: string;
  gpusPerSubtask: string;
  subtaskCount: string;
  runtimeSeconds: string;
  priorityClass: 'standard' | 'high' | 'preemptible';
  gang: boolean;
  preemptible: boolean;
}

const EMPTY: Draft = { projectId: '', name: '', gpuModels: 'a100', gpusPerSubtask: '1', subtaskCount: '1', runtimeSeconds: '60', priorityClass: 'standard', gang: false, preemptible: false };

/** The request body the API takes (POST /v1/jobs and its dry run). Numbers the user left empty are left out. */
export function jobRequest(d: Draft): Record<string, unknown> {
  const number = (text: string) => (text.trim() === '' ? undefined : Number(text));
  return {
    projectId: d.projectId.trim(),
    ...(d.name.trim() ? { name: d.name.trim() } : {}),
    gpuModels: d.gpuModels.split(/[\s,]+/).filter(Boolean),
    gpusPerSubtask: number(d.gpusPerSubtask),
    subtaskCount: number(d.subtaskCount),
    runtimeSeconds: number(d.runtimeSeconds),
    priorityClass: d.priorityClass,
    gang: d.gang,
    preemptible: d.preemptible,
  };
}

/** The form field an API error names (`gpuModels.0` → gpuModels). */
function fieldOf(error: unknown): string | undefined {
  return error instanceof ApiFailure && error.field ? error.field.split(/[.[]/)[0] : undefined;
}

interface DryRun {
  wouldPlace: boolean;
  subtaskCount: number;
  placedNow: number;
  waiting?: string;
  code?: string;
}

/** Submit a job: labelled fields, the API's own validation messages beside the field they name. */
export function SubmitJobView() {
  useTitle('Submit job');
  const [draft, setDraft] = useState<Draft>(EMPTY);
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const [dryRun, setDryRun] = useState<DryRun | string | null>(null);
  // One key per submission attempt of the same body: a retry after a lost answer is the same job.
  const idempotency = useRef<{ body: string; key: string } | null>(null);
  const set = <K extends keyof Draft>(name: K, value: Draft[K]) => setDraft((d) => ({ ...d, [name]: value }));
  const field = fieldOf(error);
  const errorFor = (name: string) => (field === name ? describeFailure(error).replace(/ \([^)]*\)$/, '') : undefined);
  const invalid = (name: string) => (field === name ? true : undefined);
  const describedBy = (name: string) => (field === name ? `job-${name}-error` : undefined);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const body = jobRequest(draft);
    const text = JSON.stringify(body);
    if (idempotency.current?.body !== text) idempotency.current = { body: text, key: newIdempotencyKey() };
    setBusy(true);
    setError(undefined);
    try {
      const job = await api<JobView>('/v1/jobs', { method: 'POST', body, headers: { 'idempotency-key': idempotency.current.key } });
      navigate(`/jobs/${encodeURIComponent(job.jobId)}`);
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };

  const check = async () => {
    setDryRun(null);
    try {
      setDryRun(await api<DryRun>('/v1/jobs:dry-run', { method: 'POST', body: jobRequest(draft) }));
    } catch (failure) {
      setDryRun(describeFailure(failure));
    }
  };

  return (
    <section aria-labelledby="submit-heading">
      <h1 id="submit-heading">Submit job</h1>
      <form onSubmit={submit} noValidate aria-describedby={error !== undefined && !field ? 'submit-error' : undefined}>
        <div className="form-grid">
          <Field id="job-projectId" label="Project" error={errorFor('projectId')} help="Usage and invoices are grouped by project.">
            <input id="job-projectId" required value={draft.projectId} onChange={(e) => set('projectId', e.target.value)} aria-invalid={invalid('projectId')} aria-describedby={describedBy('projectId') ?? 'job-projectId-help'} />
          </Field>
          <Field id="job-name" label="Name (optional)" error={errorFor('name')}>
            <input id="job-name" value={draft.name} onChange={(e) => set('name', e.target.value)} aria-invalid={invalid('name')} aria-describedby={describedBy('name')} />
          </Field>
          <Field id="job-gpuModels" label="GPU models" error={errorFor('gpuModels')} help="Comma-separated, in order of preference, e.g. a100, h100.">
            <input id="job-gpuModels" required value={draft.gpuModels} onChange={(e) => set('gpuModels', e.target.value)} aria-invalid={invalid('gpuModels')} aria-describedby={describedBy('gpuModels') ?? 'job-gpuModels-help'} />
          </Field>
          <Field id="job-gpusPerSubtask" label="GPUs per sub-task" error={errorFor('gpusPerSubtask')}>
            <input id="job-gpusPerSubtask" type="number" inputMode="numeric" min={1} required value={draft.gpusPerSubtask} onChange={(e) => set('gpusPerSubtask', e.target.value)} aria-invalid={invalid('gpusPerSubtask')} aria-describedby={describedBy('gpusPerSubtask')} />
          </Field>
          <Field id="job-subtaskCount" label="Sub-tasks" error={errorFor('subtaskCount')}>
            <input id="job-subtaskCount" type="number" inputMode="numeric" min={1} value={draft.subtaskCount} onChange={(e) => set('subtaskCount', e.target.value)} aria-invalid={invalid('subtaskCount')} aria-describedby={describedBy('subtaskCount')} />
          </Field>
          <Field id="job-runtimeSeconds" label="Run time per sub-task (seconds)" error={errorFor('runtimeSeconds')}>
            <input id="job-runtimeSeconds" type="number" inputMode="numeric" min={1} required value={draft.runtimeSeconds} onChange={(e) => set('runtimeSeconds', e.target.value)} aria-invalid={invalid('runtimeSeconds')} aria-describedby={describedBy('runtimeSeconds')} />
          </Field>
          <Field id="job-priorityClass" label="Priority class" error={errorFor('priorityClass')}>
            <select id="job-priorityClass" value={draft.priorityClass} onChange={(e) => set('priorityClass', e.target.value as Draft['priorityClass'])} aria-invalid={invalid('priorityClass')}>
              <option value="standard">standard</option>
              <option value="high">high</option>
              <option value="preemptible">preemptible</option>
            </select>
          </Field>
        </div>
        <fieldset className="checks">
          <legend>Placement</legend>
          <label>
            <input type="checkbox" checked={draft.gang} onChange={(e) => set('gang', e.target.checked)} /> Gang: start all together
          </label>
          <label>
            <input type="checkbox" checked={draft.preemptible} onChange={(e) => set('preemptible', e.target.checked)} /> Preemptible
          </label>
        </fieldset>
        {error !== undefined && !field && (
          <div id="submit-error">
            <Failure error={error} what="Not submitted" />
          </div>
        )}
        {error !== undefined && field && (
          <p role="alert" className="error">
            Not submitted: check the field marked below ({field}).
          </p>
        )}
        <div className="actions">
          <button type="submit" className="primary" disabled={busy}>
            {busy ? 'Submitting…' : 'Submit job'}
          </button>
          <button type="button" onClick={() => void check()}>
            Check placement
          </button>
        </div>
      </form>
      {dryRun !== null && (
        <div role="status" className={typeof dryRun === 'string' ? 'error' : 'notice'}>
          {typeof dryRun === 'string'
            ? dryRun
            : dryRun.wouldPlace
              ? `Would place now: ${dryRun.placedNow} of ${dryRun.subtaskCount} sub-tasks.`
              : `Would wait: ${dryRun.waiting ?? 'no capacity'}${dryRun.code ? ` (${dryRun.code})` : ''}.`}
        </div>
      )}
    </section>
  );
}
