import { Inject, Injectable } from '@nestjs/common';
import { nameId, newEntityId } from '@fastgpu/contracts';
import { notFoundError } from '@fastgpu/eventsourcing';
import { formatMoney, money } from '@fastgpu/money';
import { RUNTIME, type Runtime } from '@fastgpu/runtime';
import { BillingLedger } from '../ledger/billing.ledger';
import { BillingRejection } from '../invoices/invoice.decider';
import type { BillingProfileRequest, BillingProfileResponse } from '../billing-profiles/billing-profiles.schema';
import { financeAction, type FinanceAction, type FinanceActionRow } from './finance-actions';
import { FinanceActionPublisher, TENANT_SETTINGS_SCOPE, type Actor } from './finance-action-publisher';

/**
 * Finance settings of a tenant that shape its invoices, each a finance action on the tenant's
 * billing subject: prepaid credit grants (`CreditGranted`), tax rates (`TaxRatesSet`) and the
 * billing profile its documents name as the buyer (`TenantBillingProfileSet`). The Idempotency-Key
 * rule of every finance route holds (same key and request: what was recorded; another request: 409).
 */
@Injectable()
export class TenantSettingsService {
  constructor(
    @Inject(RUNTIME) private readonly runtime: Runtime,
    @Inject(BillingLedger) private readonly ledger: BillingLedger,
    @Inject(FinanceActionPublisher) private readonly actions: FinanceActionPublisher,
  ) {}

  async grantCredit(input: { tenantId: string; amount: string; priority: number; expiresAt: string | null; actionId?: string } & Actor): Promise<FinanceAction<'CreditGranted'>> {
    const grantId = this.actions.actionId('CreditGranted', TENANT_SETTINGS_SCOPE, input.actionId, newEntityId);
    const store = this.ledger.store();
    if (input.actionId) {
      const existing = this.actions.retried((await financeAction(store, grantId)) ?? (await financeAction(store, nameId('CreditGranted', input.tenantId, input.actionId))), { tenantId: input.tenantId, amount: input.amount, priority: input.priority, expiresAt: input.expiresAt, reason: input.reason });
      if (existing) return existing.payload as FinanceAction<'CreditGranted'>;
    }
    const tenant = await store.tenant(input.tenantId);
    if (!tenant) throw new BillingRejection(422, 'unknown_tenant', `tenant ${input.tenantId} is unknown to billing`, 'tenantId');
    const amount = money(input.amount);
    if (!amount.eq(money(formatMoney(amount, tenant.currency)))) throw new BillingRejection(422, 'amount_precision', `amount must have at most the ${tenant.currency} minor digits`, 'amount');
    const at = this.actions.nowIso();
    const data: FinanceAction<'CreditGranted'> = {
      grantId,
      tenantId: input.tenantId,
      amount: formatMoney(amount, tenant.currency),
      currency: tenant.currency,
      priority: input.priority,
      expiresAt: input.expiresAt,
      grantedAt: at,
      actor: input.actor,
      reason: input.reason,
    };
    await this.actions.publish('CreditGranted', grantId, data, at);
    return data;
  }

  async setTaxRates(input: { tenantId: string; rates: Array<{ name: string; rate: string }>; effectiveFrom?: string; actionId?: string } & Actor): Promise<FinanceAction<'TaxRatesSet'>> {
    const eventId = this.actions.actionId('TaxRatesSet', TENANT_SETTINGS_SCOPE, input.actionId, newEntityId);
    const store = this.ledger.store();
    if (input.actionId) {
      const existing = this.actions.retried((await financeAction(store, eventId)) ?? (await financeAction(store, nameId('TaxRatesSet', input.tenantId, input.actionId))), { tenantId: input.tenantId, rates: input.rates, effectiveFrom: input.effectiveFrom, reason: input.reason });
      if (existing) return existing.payload as FinanceAction<'TaxRatesSet'>;
    }
    const tenant = await store.tenant(input.tenantId);
    if (!tenant) throw new BillingRejection(422, 'unknown_tenant', `tenant ${input.tenantId} is unknown to billing`, 'tenantId');
    const at = this.actions.nowIso();
    const data: FinanceAction<'TaxRatesSet'> = {
      tenantId: input.tenantId,
      rates: input.rates,
      effectiveAt: at,
      ...(input.effectiveFrom ? { effectiveFrom: new Date(input.effectiveFrom).toISOString() } : {}),
      actor: input.actor,
      reason: input.reason,
    };
    await this.actions.publish('TaxRatesSet', eventId, data, at);
    return data;
  }

  /**
   * Sets a tenant's billing profile (`TenantBillingProfileSet`): the buyer its documents name from
   * the next cutoff on (a finalized invoice keeps the one in force at its cutoff). The
   * Idempotency-Key rule of every finance route holds: the same key and request answer the profile
   * recorded, another request 409.
   */
  async setBillingProfile(input: BillingProfileRequest & { tenantId: string; actionId?: string; actor: string }): Promise<BillingProfileResponse> {
    const eventId = this.actions.actionId('TenantBillingProfileSet', TENANT_SETTINGS_SCOPE, input.actionId, newEntityId);
    const store = this.ledger.store();
    const requested = { tenantId: input.tenantId, legalName: input.legalName, addressLines: input.addressLines, country: input.country, taxId: input.taxId, reason: input.reason };
    if (input.actionId) {
      const existing = this.actions.retried(await financeAction(store, eventId), requested);
      if (existing) return billingProfileAnswer(existing);
    }
    if (!(await store.tenant(input.tenantId))) throw notFoundError('tenant_not_found', 'no such tenant');
    const at = this.actions.nowIso();
    const data: FinanceAction<'TenantBillingProfileSet'> = {
      tenantId: input.tenantId,
      legalName: input.legalName,
      addressLines: input.addressLines,
      country: input.country,
      ...(input.taxId ? { taxId: input.taxId } : {}),
      setAt: at,
      actor: input.actor,
      reason: input.reason,
    };
    await this.actions.publish('TenantBillingProfileSet', eventId, data, at);
    const recorded = await financeAction(this.ledger.store(), eventId);
    if (!recorded) throw new Error(`the ledger did not record billing profile ${eventId}`);
    return billingProfileAnswer(recorded);
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
