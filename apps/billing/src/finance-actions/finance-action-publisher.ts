import { Inject, Injectable } from '@nestjs/common';
import { nameId, type DomainEvent } from '@fastgpu/contracts';
import { handleCommand, JetStreamEventStream, type BuildEvent, type Decider, type HandledCommand } from '@fastgpu/eventsourcing';
import type { EventPublisher } from '@fastgpu/messaging';
import { publisherFor, RUNTIME, type Runtime } from '@fastgpu/runtime';
import { BillingLedger } from '../ledger/billing.ledger';
import { BillingMetrics } from '../ledger/billing.metrics';
import { BillingRejection } from '../invoices/invoice.decider';
import type { LifecycleActionKind } from '../ledger/invoice-lifecycle';
import { requestDiffers, type FinanceActionKind, type FinanceActionRow } from './finance-actions';
import type { BillingTenantState } from './billing-tenant.evolve';

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
 * aside, tenant settings, period closes, review decisions): the action's id from the
 * Idempotency-Key, the answer to a retried request, the publisher, and the run of a command on a
 * tenant's billing subject through the kernel followed by the wait until the ledger applied it
 * (read-your-writes). Actions on an invoice's subject run on the kernel in invoice-commands.ts and
 * credit-notes.service.ts.
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

  /** The decider of a tenant's billing subject, built with this publisher's events. */
  decider<C>(makeDecider: (build: BuildEvent) => Decider<BillingTenantState, C, DomainEvent>): Decider<BillingTenantState, C, DomainEvent> {
    return makeDecider((type, data, meta) => this.publisher.build(type, data, meta));
  }

  /**
   * Runs a command on a tenant's billing subject (`…billing.tenant.<tenantId>`) through the kernel
   * (libs/eventsourcing `handleCommand`: decided on the subject's events, appended against its last
   * sequence, decided again when another writer landed first) and waits until the ledger applied
   * the subject up to where the command left it.
   */
  async onBillingTenant<C>(decider: Decider<BillingTenantState, C, DomainEvent>, tenantId: string, command: C): Promise<HandledCommand<BillingTenantState, DomainEvent>> {
    const handled = await handleCommand(this.events, decider, this.runtime.bus.topology.subjects.billingTenant(tenantId), command);
    await this.ledger.waitFor(handled.version);
    return handled;
  }
}
