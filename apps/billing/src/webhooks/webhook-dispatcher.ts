import { Webhook } from 'standardwebhooks';
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { BillingDatabase } from '@fastgpu/db';
import { retryDelayMs } from './webhook-events';

/**
 * Sends the deliveries the webhook projection enqueued: at least once, signed per Standard
 * Webhooks (`webhook-id` = the message id, stable across attempts; `webhook-timestamp` = the
 * attempt's time; `webhook-signature` = HMAC-SHA256 by the `standardwebhooks` library with the
 * endpoint's secret), retried with exponential backoff until a 2xx answer or `attemptsMax`
 * attempts. Every attempt is written to the delivery log. Deliveries are claimed with
 * `FOR UPDATE SKIP LOCKED` and a lease, so several billing processes can send side by side.
 */
export interface DispatchPolicy {
  retryBaseMs: number;
  retryMaxMs: number;
  attemptsMax: number;
  timeoutMs: number;
}

/** Bound on deliveries claimed per poll. */
export const DISPATCH_BATCH_MAX = 50;
/** Bound on the response body read from a receiver (it is only logged). */
const RESPONSE_TEXT_MAX = 500;

export interface DeliveryRow {
  delivery_id: string;
  message_id: string;
  endpoint_id: string;
  payload: string;
  status: 'pending' | 'succeeded' | 'failed';
  attempts: number;
}

export interface AttemptOutcome {
  deliveryId: string;
  attempt: number;
  statusCode: number | null;
  error: string | null;
  succeeded: boolean;
}

export class WebhookDispatcher {
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;
  private stopped = false;

  constructor(
    private readonly db: Kysely<BillingDatabase>,
    private readonly policy: DispatchPolicy,
    private readonly nowMs: () => number,
  ) {}

  start(pollIntervalMs: number): void {
    const tick = () => {
      if (this.stopped) return;
      this.running = this.dispatchDue()
        .catch(() => undefined)
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(tick, pollIntervalMs);
        });
    };
    this.timer = setTimeout(tick, 0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  /** Claims the deliveries due now (leased for the attempt's timeout) and attempts each once. */
  async dispatchDue(): Promise<AttemptOutcome[]> {
    const now = this.nowMs();
    const leaseUntil = new Date(now + this.policy.timeoutMs * 2);
    const claimed = await sql<DeliveryRow>`
      UPDATE billing_webhook_deliveries SET next_attempt_at = ${leaseUntil}
      WHERE delivery_id IN (
        SELECT delivery_id FROM billing_webhook_deliveries
        WHERE status = 'pending' AND next_attempt_at <= ${new Date(now)}
        ORDER BY next_attempt_at, delivery_id LIMIT ${DISPATCH_BATCH_MAX} FOR UPDATE SKIP LOCKED)
      RETURNING delivery_id, message_id, endpoint_id, payload, status, attempts`.execute(this.db);
    const outcomes: AttemptOutcome[] = [];
    for (const delivery of claimed.rows) outcomes.push(await this.attempt(delivery, false));
    return outcomes;
  }

  /**
   * One attempt of a delivery. Automatic attempts schedule the next one on failure (or fail the
   * delivery after `attemptsMax`); a manual redelivery is one attempt that schedules nothing.
   */
  async attempt(delivery: DeliveryRow, manual: boolean): Promise<AttemptOutcome> {
    const endpoint = await this.db.selectFrom('billing_webhook_endpoints').select(['url', 'secret', 'enabled']).where('endpoint_id', '=', delivery.endpoint_id).executeTakeFirst();
    const attempt = Number(delivery.attempts) + 1;
    const startedMs = this.nowMs();
    let statusCode: number | null = null;
    let error: string | null = null;
    if (!endpoint || !endpoint.enabled) {
      error = 'endpoint disabled';
    } else {
      try {
        const at = new Date(startedMs);
        const signature = new Webhook(endpoint.secret).sign(delivery.message_id, at, delivery.payload);
        const response = await fetch(endpoint.url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'user-agent': 'FastGPU-Webhooks/1',
            'webhook-id': delivery.message_id,
            'webhook-timestamp': String(Math.floor(startedMs / 1000)),
            'webhook-signature': signature,
          },
          body: delivery.payload,
          redirect: 'manual',
          signal: AbortSignal.timeout(this.policy.timeoutMs),
        });
        statusCode = response.status;
        const text = (await response.text()).slice(0, RESPONSE_TEXT_MAX);
        if (response.status < 200 || response.status > 299) error = `HTTP ${response.status}${text ? `: ${text}` : ''}`;
      } catch (failure) {
        error = (failure as Error).message;
      }
    }
    const succeeded = error === null;
    const durationMs = Math.max(0, this.nowMs() - startedMs);
    const retryIn = succeeded || manual || !endpoint?.enabled ? null : retryDelayMs(attempt, this.policy);
    const status = succeeded ? 'succeeded' : retryIn !== null ? 'pending' : manual && delivery.status === 'pending' ? 'pending' : 'failed';
    await this.db.transaction().execute(async (trx) => {
      await trx.insertInto('billing_webhook_attempts').values({ delivery_id: delivery.delivery_id, attempt, at: new Date(startedMs), status_code: statusCode, error, duration_ms: durationMs, manual }).execute();
      await trx
        .updateTable('billing_webhook_deliveries')
        .set({
          attempts: attempt,
          status,
          last_status_code: statusCode,
          last_error: error,
          ...(succeeded ? { delivered_at: new Date(this.nowMs()) } : {}),
          ...(retryIn !== null ? { next_attempt_at: new Date(startedMs + retryIn) } : {}),
        })
        .where('delivery_id', '=', delivery.delivery_id)
        .execute();
    });
    return { deliveryId: delivery.delivery_id, attempt, statusCode, error, succeeded };
  }
}
