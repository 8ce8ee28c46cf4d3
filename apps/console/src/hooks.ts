import { useCallback, useEffect, useRef, useState } from 'react';
import { api, ApiFailure } from './api';
import { live, type LiveEvent } from './live';

/** The least time between two refetches a view makes because of live events. */
export const LIVE_REFETCH_MS_MIN = 1000;

export interface Loaded<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  /** The route is not deployed on this server (404 on the route itself). */
  missing: boolean;
  reload(): void;
}

/** GETs `path` (null: nothing to fetch), keeps the last answer while reloading. */
export function useApi<T>(path: string | null): Loaded<T> {
  const [state, setState] = useState<{ data?: T; error: unknown; loading: boolean; missing: boolean }>({ error: undefined, loading: path !== null, missing: false });
  const [generation, setGeneration] = useState(0);
  useEffect(() => {
    if (path === null) return;
    const controller = new AbortController();
    setState((s) => ({ ...s, loading: true }));
    api<T>(path, { signal: controller.signal }).then(
      (data) => setState({ data, error: undefined, loading: false, missing: false }),
      (error: unknown) => {
        if (controller.signal.aborted) return;
        const missing = error instanceof ApiFailure && error.status === 404 && /^no route /.test(error.message);
        setState((s) => ({ data: s.data, error, loading: false, missing }));
      },
    );
    return () => controller.abort();
  }, [path, generation]);
  const reload = useCallback(() => setGeneration((g) => g + 1), []);
  return { data: state.data, error: state.error, loading: state.loading, missing: state.missing, reload };
}

/**
 * Calls `refresh` when live events that `matters` accepts arrive: at once for the first, then
 * at most once per LIVE_REFETCH_MS_MIN however many follow (no refetch storms); and when the feed
 * says to reload (it did not replay what the tab missed).
 */
export function useLiveRefresh(matters: (event: LiveEvent) => boolean, refresh: () => void): void {
  const mattersRef = useRef(matters);
  const refreshRef = useRef(refresh);
  mattersRef.current = matters;
  refreshRef.current = refresh;
  useEffect(() => {
    let last = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const unsubscribe = live.subscribe((event) => {
      if (!mattersRef.current(event) || timer !== undefined) return;
      const wait = Math.max(0, last + LIVE_REFETCH_MS_MIN - Date.now());
      timer = setTimeout(() => {
        timer = undefined;
        last = Date.now();
        refreshRef.current();
      }, wait);
    });
    const unsubscribeReload = live.onReload(() => refreshRef.current());
    return () => {
      unsubscribe();
      unsubscribeReload();
      clearTimeout(timer);
    };
  }, []);
}

/** The value, updated only after it stopped changing for `delayMs` (filters typed into a big table). */
export function useDebounced<T>(value: T, delayMs: number): T {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => setSettled(value), delayMs);
    return () => clearTimeout(timer);
  }, [value, delayMs]);
  return settled;
}
