import { authorization } from './api';
import { SseParser } from './sse';

/** One event of the live feed (GET /v1/live), as its `data:` line carries it. */
export interface LiveEvent {
  seq: number;
  type: string;
  time: string;
  tenantId: string | null;
  subject: string;
  data: Record<string, unknown>;
}

export type LiveStatus = 'connecting' | 'live' | 'reconnecting' | 'unavailable' | 'stopped';

type Listener = (event: LiveEvent) => void;
type StatusListener = (status: LiveStatus) => void;

/** Waits between reconnects: doubling from the first to the last. */
const RECONNECT_DELAY_MS_FIRST = 500;
const RECONNECT_DELAY_MS_MAX = 15_000;
/** While the route answers 404 (not deployed yet), ask again this seldom. */
const UNAVAILABLE_RETRY_MS = 30_000;

/**
 * The tab's one connection to the live feed, shared by every view: views subscribe to events
 * and apply them to what they show. It reads the stream with fetch (the key stays in a header),
 * and reconnects with Last-Event-ID so no event between two connections is lost.
 */
export class LiveHub {
  private readonly listeners = new Set<Listener>();
  private readonly statusListeners = new Set<StatusListener>();
  private readonly reloadListeners = new Set<() => void>();
  private lastEventId: string | null = null;
  private controller: AbortController | null = null;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private delayMs = RECONNECT_DELAY_MS_FIRST;
  status: LiveStatus = 'stopped';

  start(): void {
    if (this.controller) return;
    this.connect();
  }

  stop(): void {
    clearTimeout(this.retryTimer);
    this.controller?.abort();
    this.controller = null;
    this.lastEventId = null;
    this.setStatus('stopped');
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Called when the server did not replay what the tab missed (a Last-Event-ID too far back: it
   * sends a `reload` message and goes on live): views refetch what they show.
   */
  onReload(listener: () => void): () => void {
    this.reloadListeners.add(listener);
    return () => this.reloadListeners.delete(listener);
  }

  onStatus(listener: StatusListener): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  private setStatus(status: LiveStatus): void {
    if (status === this.status) return;
    this.status = status;
    for (const listener of this.statusListeners) listener(status);
  }

  private connect(): void {
    const controller = new AbortController();
    this.controller = controller;
    this.setStatus(this.lastEventId === null ? 'connecting' : 'reconnecting');
    void this.read(controller).then(
      (retryMs) => this.scheduleReconnect(controller, retryMs),
      () => this.scheduleReconnect(controller, undefined),
    );
  }

  private scheduleReconnect(controller: AbortController, retryMs: number | undefined): void {
    if (controller.signal.aborted || this.controller !== controller) return;
    const wait = retryMs ?? this.delayMs;
    this.delayMs = Math.min(this.delayMs * 2, RECONNECT_DELAY_MS_MAX);
    if (retryMs === undefined) this.setStatus('reconnecting');
    this.retryTimer = setTimeout(() => {
      if (this.controller === controller) this.connect();
    }, wait);
  }

  /** Reads one connection until it ends; answers a wait before the next one when the server asked for one. */
  private async read(controller: AbortController): Promise<number | undefined> {
    const headers: Record<string, string> = { accept: 'text/event-stream', ...authorization() };
    if (this.lastEventId !== null) headers['last-event-id'] = this.lastEventId;
    const response = await fetch('/v1/live', { headers, signal: controller.signal, cache: 'no-store' });
    if (response.status === 404) {
      this.setStatus('unavailable');
      return UNAVAILABLE_RETRY_MS;
    }
    if (!response.ok || !response.body) {
      const retryAfterSeconds = Number(response.headers.get('retry-after'));
      return Number.isFinite(retryAfterSeconds) && retryAfterSeconds > 0 ? retryAfterSeconds * 1000 : undefined;
    }
    this.setStatus('live');
    this.delayMs = RECONNECT_DELAY_MS_FIRST;
    const parser = new SseParser();
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return undefined;
      for (const message of parser.feed(value)) {
        if (message.id !== null) this.lastEventId = message.id;
        if (message.event === 'reload') {
          for (const listener of [...this.reloadListeners]) listener();
          continue;
        }
        let event: LiveEvent;
        try {
          event = JSON.parse(message.data) as LiveEvent;
        } catch {
          continue;
        }
        for (const listener of this.listeners) listener(event);
      }
    }
  }
}

/** The tab's hub. */
export const live = new LiveHub();

/** The job an event is about, when it names one. */
export function jobIdOf(event: LiveEvent): string | undefined {
  const id = event.data.jobId;
  return typeof id === 'string' ? id : undefined;
}
