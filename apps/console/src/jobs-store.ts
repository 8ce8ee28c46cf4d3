import { useEffect, useSyncExternalStore } from 'react';
import { api, query } from './api';
import { applyJobEvents, UnloadedJobEvents } from './jobs-live';
import { live, type LiveEvent } from './live';
import type { JobSummary, JobsPage } from './types';

/** Most jobs the table holds (the newest); older ones are reached by their link or the API. */
export const JOBS_LOADED_MAX = 100_000;
/** Rows per page asked of GET /v1/jobs (its maximum). */
const PAGE_ROWS = 500;
/** Live events are applied in batches this often, so a burst changes the rows once. */
const LIVE_BATCH_MS = 250;
/** While pages load, the table gets the rows so far at most this often (each update re-sorts them). */
const LOAD_PUBLISH_MS = 1000;

export interface JobsSnapshot {
  rows: readonly JobSummary[];
  /** Every page is in (or JOBS_LOADED_MAX reached). */
  complete: boolean;
  truncated: boolean;
  error: unknown;
}

/**
 * The jobs the key may see, loaded once per sign-in and kept current by the live feed (not by
 * refetching): the jobs table and the queues read it.
 */
class JobsStore {
  private snapshot: JobsSnapshot = { rows: [], complete: false, truncated: false, error: undefined };
  /**
   * The rows as they are now, appended to while pages load; the snapshot holds a copy of it
   * (published rows are never changed in place: the table sees a change by a new array).
   */
  private working: JobSummary[] = [];
  private readonly index = new Map<string, number>();
  /** Live events of jobs whose page has not arrived yet: merged into their rows when it does. */
  private readonly unloaded = new UnloadedJobEvents();
  private readonly listeners = new Set<() => void>();
  private pending: LiveEvent[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private started = false;
  private generation = 0;
  private unsubscribe: () => void = () => undefined;
  private unsubscribeReload: () => void = () => undefined;

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  getSnapshot = (): JobsSnapshot => this.snapshot;

  private set(next: Partial<JobsSnapshot>): void {
    this.snapshot = { ...this.snapshot, ...next };
    for (const listener of this.listeners) listener();
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    const generation = ++this.generation;
    this.unsubscribe = live.subscribe((event) => {
      if (generation !== this.generation || typeof event.data.jobId !== 'string') return;
      this.pending.push(event);
      this.timer ??= setTimeout(() => this.flush(), LIVE_BATCH_MS);
    });
    // The feed did not replay what was missed: every row is read again.
    this.unsubscribeReload = live.onReload(() => {
      if (generation !== this.generation) return;
      this.reset();
      this.start();
    });
    void this.load(generation);
  }

  /** Forgets everything (sign-out). */
  reset(): void {
    this.generation++;
    this.started = false;
    this.unsubscribe();
    this.unsubscribeReload();
    this.pending = [];
    clearTimeout(this.timer);
    this.timer = undefined;
    this.index.clear();
    this.unloaded.clear();
    this.working = [];
    this.snapshot = { rows: [], complete: false, truncated: false, error: undefined };
  }

  private flush(): void {
    this.timer = undefined;
    const events = this.pending;
    this.pending = [];
    // Once every page is in, a job not loaded is past JOBS_LOADED_MAX (or not this key's): nothing to keep.
    const rows = applyJobEvents(this.working, this.index, events, this.snapshot.complete ? undefined : this.unloaded);
    if (rows === this.working) return;
    this.working = rows.slice();
    this.set({ rows });
  }

  private async load(generation: number): Promise<void> {
    let cursor: string | undefined;
    let publishedAt = 0;
    try {
      for (;;) {
        const page = await api<JobsPage>(`/v1/jobs${query({ limit: PAGE_ROWS, cursor })}`);
        if (generation !== this.generation) return;
        for (const job of page.jobs) {
          if (this.index.has(job.jobId)) continue;
          this.index.set(job.jobId, this.working.length);
          this.working.push(this.unloaded.merge(job));
        }
        const full = this.working.length >= JOBS_LOADED_MAX;
        if (!page.nextCursor || full) {
          this.unloaded.clear();
          this.set({ rows: this.working.slice(), complete: true, truncated: full && page.nextCursor !== null });
          return;
        }
        // The first page at once, then the rows so far every LOAD_PUBLISH_MS (each update re-sorts them all).
        if (Date.now() - publishedAt >= LOAD_PUBLISH_MS) {
          publishedAt = Date.now();
          this.set({ rows: this.working.slice() });
        }
        cursor = page.nextCursor;
      }
    } catch (error) {
      if (generation === this.generation) this.set({ error, rows: this.working.slice(), complete: true });
    }
  }
}

export const jobsStore = new JobsStore();

export function useJobs(): JobsSnapshot {
  useEffect(() => jobsStore.start(), []);
  return useSyncExternalStore(jobsStore.subscribe, jobsStore.getSnapshot);
}
