import { Inject, Injectable } from '@nestjs/common';
import { nameId, type DomainEvent, type EventData } from '@fastgpu/contracts';
import { isStreamVersionConflict, JetStreamEventStream } from '@fastgpu/eventsourcing';
import type { EventPublisher } from '@fastgpu/messaging';
import { publisherFor, RUNTIME, type Runtime } from '@fastgpu/runtime';
import { BillingLedger } from '../ledger/billing.ledger';
import { BillingMetrics } from '../ledger/billing.metrics';
import { BillingRejection } from '../invoices/invoice.decider';
import type { LifecycleActionKind } from '../ledger/invoice-lifecycle';
import { requestDiffers, type FinanceAction, type FinanceActionKind, type FinanceActionRow } from './finance-actions';

/** Who asked for a finance action, and why (every finance action carries both). */
export interface Actor {
  actor: string;
  reason: string;
}

/**
 * Idempotency-Key scope of grants, tax rates and billing profiles: the key alone (the tenant is part
 * of the request body, so a key reused for another tenant is another request: 409). Actions recorded
 * before this scope (keyed by tenant and key) are still found, so a retry across the change answers
 * them.
 */
export const TENANT_SETTINGS_SCOPE = 'tenant-settings';

/**
 * How billing's command handlers put a finance action on the log (what invoice commands and tenant
 * settings share): the action's id from the Idempotency-Key, the answer to a retried request, the
 * publish (with the invoice subject's expected last sequence when the action was decided against
 * that state) and the wait until the ledger applied it (read-your-writes).
 */
@Injectable()
export class FinanceActionPublisher {
  readonly publisher: EventPublisher;
  private readonly events: JetStreamEventStream;

  constructor(
    @Inject(RUNTIME) private readonly runtime: Runtime,
    @Inject(BillingLedger) private readonly ledger: BillingLedger,
    @Inject(BillingMetrics) private readonly metrics: BillingMetrics,
  ) {
    this.publisher = publisherFor(runtime, 'billing');
    this.events = new JetStreamEventStream(runtime.bus, this.publisher);
  }

  /** Now on the runtime's clock, as the instant an action is recorded at. */
  nowIso(): string {
    return this.runtime.clock.now().toISOString();
  }

  /** An action id: from the client's Idempotency-Key (a retry finds the same id), else `fallback`. */
  actionId(kind: FinanceActionKind | LifecycleActionKind, scope: string, key: string | undefined, fallback: () => string): string {
    return key ? nameId(kind, scope, key) : fallback();
  }

  /**
   * The answer to a retried request: the action its Idempotency-Key already recorded, when the
   * request is the same; 409 when the key was used for another request (it is never answered with
   * the original as if it were this one).
   */
  retried(existing: FinanceActionRow | undefined, requested: Record<string, unknown>): FinanceActionRow | undefined {
    if (!existing) return undefined;
    const field = requestDiffers(existing.payload, requested);
    if (field) {
      this.metrics.idempotencyConflicts.inc({ action: existing.kind });
      throw new BillingRejection(409, 'idempotency_key_reused', `this Idempotency-Key was used for another request (${field} differs); a new request needs a new key`, field);
    }
    this.metrics.idempotentReplays.inc({ action: existing.kind });
    return existing;
  }

  /** Sequence of the last event on a subject (0 when none): the state a decision is taken against. */
  lastSubjectSequence(subject: string): Promise<number> {
    return this.events.version(subject);
  }

  /**
   * Publishes a finance or lifecycle action and waits for the ledger to apply it. With
   * `expectedLastSubjectSequence`, the action only lands if nothing else happened on its subject
   * since the state it was decided against; otherwise it answers 409 `invoice_changed` and changes
   * nothing. Returns the event's stream sequence.
   */
  async publish<K extends FinanceActionKind | LifecycleActionKind>(kind: K, eventId: string, data: K extends FinanceActionKind ? FinanceAction<K> : EventData<K>, time: string, expectedLastSubjectSequence?: number): Promise<number> {
    const event = this.publisher.build(kind, data, { id: eventId, time, tenantId: (data as { tenantId: string }).tenantId, correlationId: eventId });
    let published;
    try {
      published = await this.publisher.publish(event as DomainEvent, expectedLastSubjectSequence === undefined ? {} : { expectedLastSubjectSequence });
    } catch (error) {
      if (isStreamVersionConflict(error)) {
        const landed = kind === 'InvoiceDraftDeleted' || kind === 'InvoiceReissued' ? 'another action' : 'another finance action';
        throw new BillingRejection(409, 'invoice_changed', `the invoice changed concurrently (${landed} landed first); nothing was recorded, read it again and retry`);
      }
      throw error;
    }
    await this.ledger.waitFor(published.sequence);
    return published.sequence;
  }
}
