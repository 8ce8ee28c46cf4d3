import { Inject, Injectable } from '@nestjs/common';
import { nameId, type DomainEvent } from '@fastgpu/contracts';
import { JetStreamEventStream } from '@fastgpu/eventsourcing';
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
 * What billing's command handlers share about finance actions (invoice commands, credit notes' ids
 * aside, and tenant settings): the action's id from the Idempotency-Key, the answer to a retried
 * request, the publisher, and — for tenant settings, which no decider guards — the publish and the
 * wait until the ledger applied it (read-your-writes). Actions on an invoice's subject are decided
 * on the kernel instead (invoice-commands.ts).
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
   * Publishes a tenant setting (a grant, tax rates, a billing profile: each on the tenant's billing
   * subject, each a new fact that no earlier one forbids) and waits for the ledger to apply it.
   * Returns the event's stream sequence.
   */
  async publish<K extends TenantSettingKind>(kind: K, eventId: string, data: FinanceAction<K>, time: string): Promise<number> {
    const event = this.publisher.build(kind, data, { id: eventId, time, tenantId: data.tenantId, correlationId: eventId });
    const published = await this.publisher.publish(event as DomainEvent);
    await this.ledger.waitFor(published.sequence);
    return published.sequence;
  }
}

/** The finance actions on a tenant's billing subject, published without a decider. */
export type TenantSettingKind = Extract<FinanceActionKind, 'CreditGranted' | 'TaxRatesSet' | 'TenantBillingProfileSet'>;
