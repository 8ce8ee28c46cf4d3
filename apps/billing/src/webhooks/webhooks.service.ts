import { randomBytes } from 'node:crypto';
import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { newEntityId } from '@fastgpu/contracts';
import { notFoundError, validationError } from '@fastgpu/eventsourcing';
import { lastSequence, ProjectionRunner } from '@fastgpu/messaging';
import type { Kysely, Selectable } from 'kysely';
import type { BillingDatabase, BillingWebhookDeliveriesTable, BillingWebhookEndpointsTable } from '@fastgpu/db';
import { RUNTIME, type Runtime } from '@fastgpu/runtime';
import { BILLING_OPTIONS, type BillingOptions } from '../billing.config';
import { BillingLedger } from '../ledger/billing.ledger';
import { WebhookDispatcher, type AttemptOutcome } from './webhook-dispatcher';
import { webhookProjection } from './webhooks.projection';

/** Bytes of randomness in an endpoint's signing secret (Standard Webhooks: 24 to 64). */
const SECRET_BYTES = 32;

export interface EndpointView {
  endpointId: string;
  tenantId: string | null;
  url: string;
  events: string[];
  description: string;
  enabled: boolean;
  fromSequence: number;
  createdBy: string;
  createdAt: string;
}

/**
 * Billing webhooks: endpoints registered by finance (per tenant or global), the live outbox
 * projection that enqueues deliveries, the dispatcher that sends them, and the delivery log with
 * manual redelivery.
 */
@Injectable()
export class WebhooksService implements OnModuleInit, OnModuleDestroy {
  readonly runner: ProjectionRunner;
  readonly dispatcher: WebhookDispatcher;
  /** Billing's tables, typed (the runtime's handle). */
  private readonly db: Kysely<BillingDatabase>;

  constructor(
    @Inject(RUNTIME) private readonly runtime: Runtime,
    @Inject(BillingLedger) private readonly ledger: BillingLedger,
    @Inject(BILLING_OPTIONS) private readonly options: BillingOptions,
  ) {
    const nowMs = () => runtime.clock.now().getTime();
    this.db = runtime.db;
    this.runner = new ProjectionRunner(runtime.bus, runtime.db, webhookProjection({ awaitLedger: (sequence) => ledger.waitFor(sequence), nowMs }));
    this.dispatcher = new WebhookDispatcher(this.db, options.webhooks, nowMs);
    runtime.health.register('projection:billing-webhooks', {
      check: () => {
        const health = this.runner.health;
        return { ok: health.status === 'running', detail: health };
      },
    });
  }

  async onModuleInit(): Promise<void> {
    await this.runner.start();
    this.dispatcher.start(this.options.webhooks.pollIntervalMs);
  }

  async onModuleDestroy(): Promise<void> {
    await this.dispatcher.stop();
    await this.runner.stop();
  }

  /** Registers an endpoint; its secret is shown once, here. It receives events after the stream's current end. */
  async register(input: { url: string; tenantId: string | null; events: string[]; description: string }, actor: string): Promise<EndpointView & { secret: string }> {
    if (input.tenantId !== null && !(await this.ledger.store().tenant(input.tenantId))) throw validationError('unknown_tenant', `tenant ${input.tenantId} is unknown to billing`, 'tenantId');
    const endpointId = newEntityId();
    const secret = `whsec_${randomBytes(SECRET_BYTES).toString('base64')}`;
    const fromSequence = await lastSequence(this.runtime.bus, this.runtime.bus.topology.streams.events);
    const createdAt = this.runtime.clock.now();
    await this.db
      .insertInto('billing_webhook_endpoints')
      .values({ endpoint_id: endpointId, tenant_id: input.tenantId, url: input.url, secret, event_types: JSON.stringify(input.events), description: input.description, enabled: true, from_sequence: fromSequence, created_by: actor, created_at: createdAt })
      .execute();
    return { ...(await this.endpoint(endpointId)), secret };
  }

  async endpoints(): Promise<EndpointView[]> {
    const rows = await this.db.selectFrom('billing_webhook_endpoints').selectAll().orderBy('created_at').orderBy('endpoint_id').execute();
    return rows.map(endpointView);
  }

  async endpoint(endpointId: string): Promise<EndpointView> {
    const row = await this.db.selectFrom('billing_webhook_endpoints').selectAll().where('endpoint_id', '=', endpointId).executeTakeFirst();
    if (!row) throw notFoundError('webhook_endpoint_not_found', 'no such webhook endpoint');
    return endpointView(row);
  }

  /** Stops deliveries to an endpoint (pending ones fail at their next attempt); its log stays. */
  async disable(endpointId: string): Promise<EndpointView> {
    const result = await this.db.updateTable('billing_webhook_endpoints').set({ enabled: false, disabled_at: this.runtime.clock.now() }).where('endpoint_id', '=', endpointId).executeTakeFirst();
    if (Number(result.numUpdatedRows) === 0) throw notFoundError('webhook_endpoint_not_found', 'no such webhook endpoint');
    return this.endpoint(endpointId);
  }

  async deliveries(filter: { endpointId?: string; status?: 'pending' | 'succeeded' | 'failed'; eventType?: string; limit: number }) {
    let query = this.db.selectFrom('billing_webhook_deliveries').selectAll();
    if (filter.endpointId) query = query.where('endpoint_id', '=', filter.endpointId);
    if (filter.status) query = query.where('status', '=', filter.status);
    if (filter.eventType) query = query.where('event_type', '=', filter.eventType);
    const rows = await query.orderBy('event_sequence').orderBy('delivery_id').limit(filter.limit).execute();
    return rows.map(deliveryView);
  }

  /** One delivery with every attempt (the delivery log). */
  async delivery(deliveryId: string) {
    const row = await this.db.selectFrom('billing_webhook_deliveries').selectAll().where('delivery_id', '=', deliveryId).executeTakeFirst();
    if (!row) throw notFoundError('webhook_delivery_not_found', 'no such webhook delivery');
    const attempts = await this.db.selectFrom('billing_webhook_attempts').selectAll().where('delivery_id', '=', deliveryId).orderBy('attempt').execute();
    return {
      ...deliveryView(row),
      payload: JSON.parse(row.payload) as unknown,
      attempts: attempts.map((a) => ({ attempt: a.attempt, at: new Date(a.at).toISOString(), statusCode: a.status_code, error: a.error, durationMs: a.duration_ms, manual: a.manual })),
    };
  }

  /** Redelivery by hand: one attempt now, with the same webhook-id and a fresh signature. */
  async redeliver(deliveryId: string): Promise<AttemptOutcome> {
    const row = await this.db.selectFrom('billing_webhook_deliveries').select(['delivery_id', 'message_id', 'endpoint_id', 'payload', 'status', 'attempts']).where('delivery_id', '=', deliveryId).executeTakeFirst();
    if (!row) throw notFoundError('webhook_delivery_not_found', 'no such webhook delivery');
    return this.dispatcher.attempt(row, true);
  }
}

function endpointView(row: Selectable<BillingWebhookEndpointsTable>): EndpointView {
  return {
    endpointId: row.endpoint_id,
    tenantId: row.tenant_id,
    url: row.url,
    events: row.event_types,
    description: row.description,
    enabled: row.enabled,
    fromSequence: Number(row.from_sequence),
    createdBy: row.created_by,
    createdAt: new Date(row.created_at).toISOString(),
  };
}

function deliveryView(row: Selectable<BillingWebhookDeliveriesTable>) {
  return {
    deliveryId: row.delivery_id,
    messageId: row.message_id,
    endpointId: row.endpoint_id,
    eventType: row.event_type,
    eventId: row.event_id,
    eventSequence: Number(row.event_sequence),
    tenantId: row.tenant_id,
    status: row.status,
    attemptCount: row.attempts,
    nextAttemptAt: row.status === 'pending' ? new Date(row.next_attempt_at).toISOString() : null,
    lastStatusCode: row.last_status_code,
    lastError: row.last_error,
    createdAt: new Date(row.created_at).toISOString(),
    deliveredAt: row.delivered_at ? new Date(row.delivered_at).toISOString() : null,
  };
}
