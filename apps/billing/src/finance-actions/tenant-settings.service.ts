import { Inject, Injectable } from '@nestjs/common';
import { nameId, newEntityId, type DomainEvent } from '@fastgpu/contracts';
import { notFoundError, type Decider } from '@fastgpu/eventsourcing';
import { RUNTIME, type Runtime } from '@fastgpu/runtime';
import { BillingLedger } from '../ledger/billing.ledger';
import type { BillingProfileRequest, BillingProfileResponse } from '../billing-profiles/billing-profiles.schema';
import { financeAction, type FinanceAction, type FinanceActionKind, type FinanceActionRow } from './finance-actions';
import { FinanceActionPublisher, TENANT_SETTINGS_SCOPE, type Actor } from './finance-action-publisher';
import type { BillingTenantState } from './billing-tenant.evolve';
import { tenantSettingsDecider, type TenantSettingCommand } from './tenant-settings.decider';

/**
 * Finance settings of a tenant that shape its invoices, each a finance action on the tenant's
 * billing subject: prepaid credit grants (`CreditGranted`), tax rates (`TaxRatesSet`) and the
 * billing profile its documents name as the buyer (`TenantBillingProfileSet`). The shell of
 * tenant-settings.decider.ts: it answers a retried request from what the ledger recorded (the
 * Idempotency-Key rule of every finance route: same key and request, what was recorded; another
 * request, 409), reads the tenant from the ledger, and runs the command on the kernel.
 */
@Injectable()
export class TenantSettingsService {
  private readonly decider: Decider<BillingTenantState, TenantSettingCommand, DomainEvent>;

  constructor(
    @Inject(RUNTIME) private readonly runtime: Runtime,
    @Inject(BillingLedger) private readonly ledger: BillingLedger,
    @Inject(FinanceActionPublisher) private readonly actions: FinanceActionPublisher,
  ) {
    this.decider = actions.decider(tenantSettingsDecider);
  }

  async grantCredit(input: { tenantId: string; amount: string; priority: number; expiresAt: string | null; actionId?: string } & Actor): Promise<FinanceAction<'CreditGranted'>> {
    const grantId = this.actions.actionId('CreditGranted', TENANT_SETTINGS_SCOPE, input.actionId, newEntityId);
    const requested = { tenantId: input.tenantId, amount: input.amount, priority: input.priority, expiresAt: input.expiresAt, reason: input.reason };
    const store = this.ledger.store();
    if (input.actionId) {
      const existing = this.actions.retried((await financeAction(store, grantId)) ?? (await financeAction(store, nameId('CreditGranted', input.tenantId, input.actionId))), requested);
      if (existing) return existing.payload as FinanceAction<'CreditGranted'>;
    }
    const { amount, priority, expiresAt } = input;
    return this.decide('CreditGranted', { kind: 'grantCredit', ...(await this.common(grantId, input)), amount, priority, expiresAt }, requested);
  }

  async setTaxRates(input: { tenantId: string; rates: Array<{ name: string; rate: string }>; effectiveFrom?: string; actionId?: string } & Actor): Promise<FinanceAction<'TaxRatesSet'>> {
    const eventId = this.actions.actionId('TaxRatesSet', TENANT_SETTINGS_SCOPE, input.actionId, newEntityId);
    const requested = { tenantId: input.tenantId, rates: input.rates, effectiveFrom: input.effectiveFrom, reason: input.reason };
    const store = this.ledger.store();
    if (input.actionId) {
      const existing = this.actions.retried((await financeAction(store, eventId)) ?? (await financeAction(store, nameId('TaxRatesSet', input.tenantId, input.actionId))), requested);
      if (existing) return existing.payload as FinanceAction<'TaxRatesSet'>;
    }
    return this.decide('TaxRatesSet', { kind: 'setTaxRates', ...(await this.common(eventId, input)), rates: input.rates, ...(input.effectiveFrom ? { effectiveFrom: input.effectiveFrom } : {}) }, requested);
  }

  /**
   * Sets a tenant's billing profile (`TenantBillingProfileSet`): the buyer its documents name from
   * the next cutoff on (a finalized invoice keeps the one in force at its cutoff).
   */
  async setBillingProfile(input: BillingProfileRequest & { tenantId: string; actionId?: string; actor: string }): Promise<BillingProfileResponse> {
    const eventId = this.actions.actionId('TenantBillingProfileSet', TENANT_SETTINGS_SCOPE, input.actionId, newEntityId);
    const requested = { tenantId: input.tenantId, legalName: input.legalName, addressLines: input.addressLines, country: input.country, taxId: input.taxId, reason: input.reason };
    if (input.actionId) {
      const existing = this.actions.retried(await financeAction(this.ledger.store(), eventId), requested);
      if (existing) return billingProfileAnswer(existing);
    }
    const { legalName, addressLines, country, taxId } = input;
    await this.decide('TenantBillingProfileSet', { kind: 'setBillingProfile', ...(await this.common(eventId, input)), legalName, addressLines, country, ...(taxId ? { taxId } : {}) }, requested);
    const recorded = await financeAction(this.ledger.store(), eventId);
    if (!recorded) throw new Error(`the ledger did not record billing profile ${eventId}`);
    return billingProfileAnswer(recorded);
  }

  /** What every setting command carries: its id, the tenant as the ledger knows it, the time and the actor. */
  private async common(eventId: string, input: { tenantId: string } & Actor) {
    const tenant = await this.ledger.store().tenant(input.tenantId);
    return { eventId, tenantId: input.tenantId, tenant: tenant ? { currency: tenant.currency } : null, at: this.actions.nowIso(), actor: input.actor, reason: input.reason };
  }

  /**
   * Runs a setting on the kernel and answers its payload. When its event was on the subject
   * already (a retry that landed before its first answer), the answer is what the ledger recorded,
   * by the Idempotency-Key rule.
   */
  private async decide<K extends FinanceActionKind>(kind: K, command: TenantSettingCommand, requested: Record<string, unknown>): Promise<FinanceAction<K>> {
    const { events } = await this.actions.onBillingTenant(this.decider, command.tenantId, command);
    const decided = events.find((e) => e.type === kind) as DomainEvent<K> | undefined;
    if (decided) return decided.data;
    const recorded = this.actions.retried(await financeAction(this.ledger.store(), command.eventId), requested);
    if (!recorded) throw new Error(`the ledger did not record ${kind} ${command.eventId}`);
    return recorded.payload as FinanceAction<K>;
  }

  /** The billing profile in force for a tenant now (404 when none was set, or for another tenant's caller). */
  async billingProfile(tenantId: string, tenantScope: string | null): Promise<BillingProfileResponse> {
    if (tenantScope !== null && tenantScope !== tenantId) throw notFoundError('billing_profile_not_found', 'no billing profile for this tenant');
    await this.ledger.catchUp();
    const row = (await this.runtime.db
      .selectFrom('billing_finance_actions')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('kind', '=', 'TenantBillingProfileSet')
      .orderBy('sequence', 'desc')
      .executeTakeFirst()) as FinanceActionRow | undefined;
    if (!row) throw notFoundError('billing_profile_not_found', 'no billing profile for this tenant');
    return billingProfileAnswer(row);
  }
}

/** A recorded `TenantBillingProfileSet` as the profile routes answer it. */
function billingProfileAnswer(row: FinanceActionRow): BillingProfileResponse {
  const p = row.payload as FinanceAction<'TenantBillingProfileSet'>;
  return { tenantId: p.tenantId, legalName: p.legalName, addressLines: p.addressLines, country: p.country, taxId: p.taxId ?? null, setAt: p.setAt, actor: p.actor, reason: p.reason, eventId: row.event_id, eventSequence: Number(row.sequence) };
}
