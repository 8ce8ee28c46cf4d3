import type { NatsConnection, Status } from '@nats-io/transport-node';
import type { HealthCheck } from './index';

/**
 * Follows a NATS connection's status events. The client reconnects by itself (for ever, see
 * `connectBus`), so a connection that is not closed may still be down: from a `disconnect` until
 * the next `reconnect` nothing is published or received. Readiness says so, and readers that judge
 * silence (reliability's liveness loop) ask when the connection last came back.
 */
export class ConnectionWatch {
  private up = true;
  private downSinceMs: number | null = null;
  private lastReconnectMs: number | null = null;
  private disconnects = 0;
  private readonly listeners = new Set<(connected: boolean, atMs: number) => void>();
  private readonly iterator: AsyncIterable<Status>;

  constructor(
    private readonly nc: NatsConnection,
    private readonly nowMs: () => number = Date.now,
  ) {
    this.iterator = nc.status();
    void this.follow();
  }

  /** Whether the connection is up now (not closed, not between a disconnect and its reconnect). */
  get connected(): boolean {
    return this.up && !this.nc.isClosed();
  }

  /** When the connection last came back after a disconnect (local clock), or null if it never dropped. */
  get reconnectedAtMs(): number | null {
    return this.lastReconnectMs;
  }

  onChange(listener: (connected: boolean, atMs: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Readiness: not ready while the connection is down or closed, with how long it has been down. */
  healthCheck(): HealthCheck {
    return {
      check: () => {
        if (this.nc.isClosed()) return { ok: false, detail: 'NATS connection closed' };
        if (this.nc.isDraining()) return { ok: false, detail: 'NATS connection draining' };
        if (!this.up) return { ok: false, detail: `NATS disconnected for ${this.nowMs() - (this.downSinceMs ?? this.nowMs())} ms (reconnecting)` };
        return { ok: true, detail: { disconnects: this.disconnects } };
      },
    };
  }

  stop(): void {
    // The client's status iterator can be stopped (QueuedIterator), though its declared type is only AsyncIterable.
    (this.iterator as { stop?(): void }).stop?.();
    this.listeners.clear();
  }

  private async follow(): Promise<void> {
    for await (const status of this.iterator) {
      if (status.type === 'disconnect' && this.up) this.change(false);
      else if (status.type === 'reconnect' && !this.up) this.change(true);
    }
  }

  private change(connected: boolean): void {
    const atMs = this.nowMs();
    this.up = connected;
    if (connected) {
      this.lastReconnectMs = atMs;
      this.downSinceMs = null;
    } else {
      this.disconnects++;
      this.downSinceMs = atMs;
    }
    for (const listener of this.listeners) listener(connected, atMs);
  }
}
