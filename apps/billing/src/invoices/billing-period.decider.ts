import type { DomainEvent } from '@fastgpu/contracts';
import type { BuildEvent, Decider } from '@fastgpu/eventsourcing';
import { periodBounds } from '@fastgpu/money';
import { accrualRange, type OpenAllocation } from '../ledger/accrual';
import { billingTenantInitialState, evolveBillingTenant, type BillingTenantState } from '../finance-actions/billing-tenant.evolve';

/**
 * Closing a tenant's billing period (`BillingPeriodClosed`) as a decider over the tenant's
 * billing subject (`…billing.tenant.<tenantId>`): the ledger then cuts every running allocation of
 * the tenant at the period's end onto its invoices (accrual.ts). A close is decided only once the
 * period has ended at the command's time (the end by the billing period rule, in the tenant's
 * billing time zone), only when some running allocation has time before that end not cut yet, and
 * only once per id (the id names the ledger position it was decided at, so two instances closing
 * at the same position append one close). What only the ledger knows arrives in the command: the
 * tenant's zone and its running allocations. Pure: the id, time and actor arrive in it too.
 */
export interface ClosePeriodCommand {
  kind: 'closePeriod';
  /** nameId('BillingPeriodClosed', tenantId, period, the ledger's cutoff). */
  eventId: string;
  tenantId: string;
  period: string;
  billingTimeZone: string;
  /** The tenant's running allocations, as the ledger holds them. */
  running: readonly OpenAllocation[];
  at: string;
  actor: string;
  reason: string;
}

/**
 * Whether closing `period` at `atMs` cuts anything: the period has ended and some running
 * allocation has time before its end not cut yet. The decider's rule, which the shell also asks
 * before it reads the log for tenants that cannot have anything to cut.
 */
export function periodCloseCuts(running: readonly OpenAllocation[], period: string, billingTimeZone: string, atMs: number): boolean {
  const periodEndMs = periodBounds(period, billingTimeZone).endMs;
  return atMs >= periodEndMs && running.some((a) => accrualRange(a, periodEndMs) !== null);
}

export function billingPeriodDecider(build: BuildEvent): Decider<BillingTenantState, ClosePeriodCommand, DomainEvent> {
  return {
    initialState: billingTenantInitialState,
    decide(command, state) {
      if (state.eventIds.has(command.eventId)) return [];
      if (!periodCloseCuts(command.running, command.period, command.billingTimeZone, Date.parse(command.at))) return [];
      const data = { tenantId: command.tenantId, period: command.period, closedAt: command.at, actor: command.actor, reason: `${command.reason}: running allocations accrued to the end of ${command.period}` };
      return [build('BillingPeriodClosed', data, { id: command.eventId, time: command.at, tenantId: command.tenantId, correlationId: command.eventId })];
    },
    evolve: evolveBillingTenant,
  };
}
