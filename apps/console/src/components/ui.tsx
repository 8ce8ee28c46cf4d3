import { useEffect, useRef, useState, type ReactNode } from 'react';
import { describeFailure } from '../api';

/** An error, announced to screen readers. */
export function Failure({ error, what }: { error: unknown; what?: string }) {
  return (
    <p role="alert" className="error">
      {what ? `${what}: ` : ''}
      {describeFailure(error)}
    </p>
  );
}

/** A route this server does not have yet (answered 404 "no route"). */
export function NotDeployed({ route }: { route: string }) {
  return (
    <p role="status" className="notice">
      This view needs <code>{route}</code>, which this server does not provide yet.
    </p>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p role="status" className="loading">
      Loading {what}…
    </p>
  );
}

/** A state as a coloured badge with its name in text (colour is never the only cue). */
export function StateBadge({ state }: { state: string }) {
  return <span className={`badge state-${state}`}>{state}</span>;
}

/** An instant, shown in the viewer's locale and zone, with the exact UTC instant as machine-readable time. */
export function Time({ at }: { at: string | null | undefined }) {
  if (!at) return <span className="muted">—</span>;
  return <time dateTime={at}>{formatInstant(at)}</time>;
}

const instantFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'short', timeStyle: 'medium' });
export function formatInstant(at: string): string {
  const date = new Date(at);
  return Number.isNaN(date.getTime()) ? at : instantFormat.format(date);
}

/** GPU-milliseconds as GPU-hours with 3 decimals. */
export function gpuHours(gpuMs: number | null | undefined): string {
  if (gpuMs === null || gpuMs === undefined) return '—';
  return (gpuMs / 3_600_000).toFixed(3);
}

export function formatDuration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  if (seconds < 120) return `${seconds} s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 120) return `${minutes} min`;
  return `${(minutes / 60).toFixed(1)} h`;
}

/**
 * A confirmation as a modal `<dialog>` (focus moves into it and returns to the opener; Escape
 * cancels). `children` may hold form fields; the action runs on Confirm and the dialog shows its
 * failure, or closes and hands the result to `onDone`.
 */
export function ConfirmDialog<T>({
  title,
  confirmLabel,
  children,
  action,
  onDone,
  onCancel,
  danger,
}: {
  title: string;
  confirmLabel: string;
  children?: ReactNode;
  action: () => Promise<T>;
  onDone: (result: T) => void;
  onCancel: () => void;
  danger?: boolean;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
    return () => dialog?.close();
  }, []);
  return (
    <dialog ref={ref} className="dialog" aria-labelledby="dialog-title" onCancel={onCancel}>
      <form
        method="dialog"
        onSubmit={(event) => {
          event.preventDefault();
          setBusy(true);
          setError(undefined);
          action().then(
            (result) => {
              setBusy(false);
              onDone(result);
            },
            (failure: unknown) => {
              setBusy(false);
              setError(failure);
            },
          );
        }}
      >
        <h2 id="dialog-title">{title}</h2>
        {children}
        {error !== undefined && <Failure error={error} />}
        <div className="actions">
          <button type="button" onClick={onCancel} disabled={busy}>
            Back
          </button>
          <button type="submit" className={danger ? 'danger' : 'primary'} disabled={busy}>
            {busy ? 'Working…' : confirmLabel}
          </button>
        </div>
      </form>
    </dialog>
  );
}

/** A labelled text field (the label names it for getByLabel). */
export function Field({ id, label, error, help, children }: { id: string; label: string; error?: string; help?: string; children: ReactNode }) {
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {children}
      {help && (
        <p id={`${id}-help`} className="help">
          {help}
        </p>
      )}
      {error && (
        <p id={`${id}-error`} className="field-error">
          {error}
        </p>
      )}
    </div>
  );
}
