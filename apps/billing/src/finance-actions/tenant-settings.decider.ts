import type { DomainEvent, EventData } from '@fastgpu/contracts';
import { notFoundError, type BuildEvent, type Decider } from '@fastgpu/eventsourcing';
import { formatMoney, money } from '@fastgpu/money';
import { BillingRejection } from '../invoices/invoice.decider';
import { billingTenantInitialState, evolveBillingTenant, type BillingTenantState } from './billing-tenant.evolve';

/**
 * A tenant's billing settings as a decider over the tenant's billing subject
 * (`…billing.tenant.<tenantId>`): a prepaid credit grant (`CreditGranted`), tax rates
 * (`TaxRatesSet`) and the billing profile its documents name as the buyer
 * (`TenantBillingProfileSet`). Each is a new fact that no earlier setting forbids; what the
 * decider holds is that the tenant is known to billing (the shell reads it from the ledger and
 * passes it, null when unknown), a grant's amount fits its currency's minor unit, and an event
 * already on the subject (a retry that landed, or another instance first) is not appended again.
 * Pure: ids, time and the actor arrive in the command.
 */
interface SettingCommon {
  /** The event's id (derived from the Idempotency-Key, or new). */
  eventId: string;
  tenantId: string;
  /** The tenant as billing knows it (the ledger's row), null when billing does not know it. */
  tenant: { currency: string } | null;
  at: string;
  actor: string;
  reason: string;
}

export type TenantSettingCommand =
  | ({ kind: 'grantCredit'; amount: string; priority: number; expiresAt: string | null } & SettingCommon)
  | ({ kind: 'setTaxRates'; rates: Array<{ name: string; rate: string }>; effectiveFrom?: string } & SettingCommon)
  | ({ kind: 'setBillingProfile'; legalName: string; addressLines: string[]; country: string; taxId?: string } & SettingCommon);

const unknownTenant = (tenantId: string) => new BillingRejection(422, 'unknown_tenant', `tenant ${tenantId} is unknown to billing`, 'tenantId');

export function tenantSettingsDecider(build: BuildEvent): Decider<BillingTenantState, TenantSettingCommand, DomainEvent> {
  const meta = (c: TenantSettingCommand) => ({ id: c.eventId, time: c.at, tenantId: c.tenantId, correlationId: c.eventId });
  return {
    initialState: billingTenantInitialState,
    decide(command, state) {
      if (state.eventIds.has(command.eventId)) return [];
      const { tenant } = command;
      switch (command.kind) {
        case 'grantCredit': {
          if (!tenant) throw unknownTenant(command.tenantId);
          const amount = money(command.amount);
          if (!amount.eq(money(formatMoney(amount, tenant.currency)))) throw new BillingRejection(422, 'amount_precision', `amount must have at most the ${tenant.currency} minor digits`, 'amount');
          const data: EventData<'CreditGranted'> = {
            grantId: command.eventId,
            tenantId: command.tenantId,
            amount: formatMoney(amount, tenant.currency),
            currency: tenant.currency,
            priority: command.priority,
            expiresAt: command.expiresAt,
            grantedAt: command.at,
            actor: command.actor,
            reason: command.reason,
          };
          return [build('CreditGranted', data, meta(command))];
        }
        case 'setTaxRates': {
          if (!tenant) throw unknownTenant(command.tenantId);
          const data: EventData<'TaxRatesSet'> = {
            tenantId: command.tenantId,
            rates: command.rates,
            effectiveAt: command.at,
            ...(command.effectiveFrom ? { effectiveFrom: new Date(command.effectiveFrom).toISOString() } : {}),
            actor: command.actor,
            reason: command.reason,
          };
          return [build('TaxRatesSet', data, meta(command))];
        }
        case 'setBillingProfile': {
          if (!tenant) throw notFoundError('tenant_not_found', 'no such tenant');
          const data: EventData<'TenantBillingProfileSet'> = {
            tenantId: command.tenantId,
            legalName: command.legalName,
            addressLines: command.addressLines,
            country: command.country,
            ...(command.taxId ? { taxId: command.taxId } : {}),
            setAt: command.at,
            actor: command.actor,
            reason: command.reason,
          };
          return [build('TenantBillingProfileSet', data, meta(command))];
        }
        default: {
          const unreachable: never = command;
          throw new Error(`unknown tenant setting command ${JSON.stringify(unreachable)}`);
        }
      }
    },
    evolve: evolveBillingTenant,
  };
}
