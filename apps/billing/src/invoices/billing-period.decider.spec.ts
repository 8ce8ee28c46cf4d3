/**
 * Proves the billing-period close decider as given (the tenant's billing subject) / when (close a
 * period) / then (the BillingPeriodClosed decided, or nothing): a period is closed only once it has
 * ended at the command's time, by the billing period rule in the tenant's zone (a tenant in
 * Asia/Tokyo closes October at 15:00 UTC on 31 October, not at midnight UTC); only when a running
 * allocation has time before the period's end not cut yet (not one cut to the end already, nor one
 * that started after it, nor one that ended); and once per id, whatever else the subject holds.
 */
import { describe, it } from 'vitest';
import { makeEvent, subjectFor, topology } from '@fastgpu/contracts';
import { spec, type BuildEvent } from '@fastgpu/eventsourcing';
import { emptyAllocation, type OpenAllocation } from '../ledger/accrual';
import { billingPeriodDecider, type ClosePeriodCommand } from './billing-period.decider';

const topo = topology('spec');
const build: BuildEvent = (type, data, meta) => makeEvent(type, data, { ...meta, source: 'billing' }, subjectFor(topo, type, data));
const decider = billingPeriodDecider(build);
const who = { actor: 'billing-scheduler', reason: 'grace period after the billing period elapsed' };
const closeId = '0190d000-0000-7000-8000-000000000001';

const running = (startAt: string, extra: Partial<OpenAllocation> = {}): OpenAllocation => ({
  ...emptyAllocation('l:lease-1', 'lease'),
  tenantId: 'acme',
  projectId: 'p',
  gpuModel: 'a100',
  capacityType: 'on-demand',
  gpus: 2,
  startMs: Date.parse(startAt),
  ...extra,
});
const close = (at: string, allocations: OpenAllocation[], billingTimeZone = 'UTC', eventId = closeId): ClosePeriodCommand => ({ kind: 'closePeriod', eventId, tenantId: 'acme', period: '2026-10', billingTimeZone, running: allocations, at, ...who });
const closed = (at: string, eventId = closeId) =>
  build('BillingPeriodClosed', { tenantId: 'acme', period: '2026-10', closedAt: at, actor: who.actor, reason: `${who.reason}: running allocations accrued to the end of 2026-10` }, { id: eventId, time: at, tenantId: 'acme', correlationId: eventId });

describe('billing period close decider', () => {
  it('closes an ended period that has a running allocation to cut', () => {
    spec(decider).given([]).when(close('2026-11-01T00:00:00.000Z', [running('2026-10-20T00:00:00.000Z')])).then([closed('2026-11-01T00:00:00.000Z')]);
  });

  it('closes nothing before the period has ended, by the billing period rule in the tenant zone', () => {
    spec(decider).given([]).when(close('2026-10-31T23:59:59.999Z', [running('2026-10-20T00:00:00.000Z')])).then([]);
    // October in Asia/Tokyo (UTC+9) ends at 2026-10-31T15:00Z.
    spec(decider).given([]).when(close('2026-10-31T14:59:59.999Z', [running('2026-10-20T00:00:00.000Z')], 'Asia/Tokyo')).then([]);
    spec(decider).given([]).when(close('2026-10-31T15:00:00.000Z', [running('2026-10-20T00:00:00.000Z')], 'Asia/Tokyo')).then([closed('2026-10-31T15:00:00.000Z')]);
  });

  it('closes nothing when no running allocation has time before the end left to cut', () => {
    const at = '2026-11-02T00:00:00.000Z';
    spec(decider).given([]).when(close(at, [])).then([]);
    spec(decider).given([]).when(close(at, [running('2026-10-20T00:00:00.000Z', { accruedFromMs: Date.parse('2026-10-20T00:00:00.000Z'), accruedUntilMs: Date.parse('2026-11-01T00:00:00.000Z') })])).then([]);
    spec(decider).given([]).when(close(at, [running('2026-11-01T06:00:00.000Z')])).then([]);
    spec(decider).given([]).when(close(at, [running('2026-10-20T00:00:00.000Z', { ended: true })])).then([]);
  });

  it('closes once per id: a close already on the subject is not appended again, another position closes again', () => {
    const at = '2026-11-01T00:00:00.000Z';
    spec(decider).given([closed(at)]).when(close(at, [running('2026-10-20T00:00:00.000Z')])).then([]);
    const laterId = '0190d000-0000-7000-8000-000000000002';
    spec(decider).given([closed(at)]).when(close(at, [running('2026-10-20T00:00:00.000Z')], 'UTC', laterId)).then([closed(at, laterId)]);
  });
});
