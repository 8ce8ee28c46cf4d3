/**
 * Proves the tenant settings decider as given (the tenant's billing subject) / when (grant a
 * credit, set tax rates, set the billing profile) / then (the event decided, or the refusal):
 * each setting is decided for a tenant billing knows, with its amount at the currency's minor unit
 * and a future effective date as an instant; a tenant billing does not know is refused (422 for a
 * grant or tax rates, 404 for a profile) and an amount finer than the currency's minor unit is
 * refused 422; a setting whose event is on the subject already decides nothing (a retry that
 * landed), while another setting after it is decided as usual.
 */
import { describe, expect, it } from 'vitest';
import { makeEvent, subjectFor, topology, type DomainEvent } from '@fastgpu/contracts';
import { spec, type BuildEvent } from '@fastgpu/eventsourcing';
import { tenantSettingsDecider, type TenantSettingCommand } from './tenant-settings.decider';
import { refusalOf } from '../invoices/refusal.testing';

const topo = topology('spec');
const build: BuildEvent = (type, data, meta) => makeEvent(type, data, { ...meta, source: 'billing' }, subjectFor(topo, type, data));
const decider = tenantSettingsDecider(build);
const at = '2026-11-05T10:00:00.000Z';
const who = { actor: 'finance-key', reason: 'contract signed' };
const ids = ['0190d000-0000-7000-8000-000000000001', '0190d000-0000-7000-8000-000000000002', '0190d000-0000-7000-8000-000000000003'] as const;
const meta = (id: string) => ({ id, time: at, tenantId: 'acme', correlationId: id });
const known = { currency: 'USD' };

const grant = (amount: string, tenant: { currency: string } | null = known, eventId: string = ids[0]): TenantSettingCommand => ({ kind: 'grantCredit', eventId, tenantId: 'acme', tenant, amount, priority: 5, expiresAt: null, at, ...who });
const taxRates = (tenant: { currency: string } | null = known): TenantSettingCommand => ({ kind: 'setTaxRates', eventId: ids[1], tenantId: 'acme', tenant, rates: [{ name: 'VAT', rate: '0.2' }], effectiveFrom: '2026-12-01T00:00:00Z', at, ...who });
const profile = (tenant: { currency: string } | null = known): TenantSettingCommand => ({ kind: 'setBillingProfile', eventId: ids[2], tenantId: 'acme', tenant, legalName: 'Acme GmbH', addressLines: ['Hauptstr. 1', 'Berlin'], country: 'DE', taxId: 'DE123', at, ...who });

const granted = (amount: string, eventId: string = ids[0]) => build('CreditGranted', { grantId: eventId, tenantId: 'acme', amount, currency: 'USD', priority: 5, expiresAt: null, grantedAt: at, ...who }, meta(eventId));
const ratesSet = build('TaxRatesSet', { tenantId: 'acme', rates: [{ name: 'VAT', rate: '0.2' }], effectiveAt: at, effectiveFrom: '2026-12-01T00:00:00.000Z', ...who }, meta(ids[1]));
const profileSet = build('TenantBillingProfileSet', { tenantId: 'acme', legalName: 'Acme GmbH', addressLines: ['Hauptstr. 1', 'Berlin'], country: 'DE', taxId: 'DE123', setAt: at, ...who }, meta(ids[2]));

const refused = (given: readonly DomainEvent[], command: TenantSettingCommand) => refusalOf(decider, given, command);

describe('tenant settings decider', () => {
  it('grants a credit at the currency minor unit, with the event id as the grant id', () => {
    spec(decider).given([]).when(grant('100.5')).then([granted('100.50')]);
  });

  it('sets tax rates, a future effective date as an instant, and the billing profile', () => {
    spec(decider).given([]).when(taxRates()).then([ratesSet]);
    spec(decider).given([ratesSet]).when(profile()).then([profileSet]);
  });

  it('refuses a tenant billing does not know, and an amount finer than the minor unit', () => {
    expect(refused([], grant('10.00', null))).toEqual([422, 'unknown_tenant']);
    expect(refused([], taxRates(null))).toEqual([422, 'unknown_tenant']);
    expect(refused([], profile(null))).toEqual(['not-found', 'tenant_not_found']);
    expect(refused([], grant('10.001'))).toEqual([422, 'amount_precision']);
  });

  it('decides nothing for a setting already on the subject, and the next one as usual', () => {
    spec(decider).given([granted('100.50')]).when(grant('100.5')).then([]);
    spec(decider).given([ratesSet, profileSet]).when(profile()).then([]);
    spec(decider).given([granted('100.50')]).when(grant('7', known, ids[1])).then([granted('7.00', ids[1])]);
  });
});
