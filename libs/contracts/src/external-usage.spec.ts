/**
 * Proves the external-usage rule metering and billing's accrual share: the tenant must be the one
 * the subject and the envelope name, a start claims at most EXTERNAL_ALLOCATION_GPUS_MAX GPUs, and
 * a producer time is ahead, late or within the horizon of its receipt (against stream time, with
 * the grace added to the back bound).
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_LATENESS_HORIZON, EXTERNAL_ALLOCATION_GPUS_MAX, externalGpusRefusal, externalTenantRefusal, externalTimeVerdict, STREAM_TIME_GRACE_MS, streamTimeHorizon } from './external-usage';

describe('the external-usage rule', () => {
  it('takes the tenant from the subject and the envelope', () => {
    expect(externalTenantRefusal('p.evt.external.tenant.acme', 'acme', 'acme')).toBeNull();
    expect(externalTenantRefusal('p.evt.external.tenant.acme', 'acme', null)).toBeNull();
    expect(externalTenantRefusal('p.evt.external.tenant.globex', 'acme', null)).toBe('tenantId acme does not match the subject p.evt.external.tenant.globex');
    expect(externalTenantRefusal('p.evt.agent.node.acme', 'acme', null)).toMatch(/does not match the subject/);
    expect(externalTenantRefusal('p.evt.external.tenant.acme', 'acme', 'globex')).toBe('tenantId acme does not match the envelope tenant globex');
  });
  it('bounds the GPUs of one allocation', () => {
    expect(externalGpusRefusal(EXTERNAL_ALLOCATION_GPUS_MAX)).toBeNull();
    expect(externalGpusRefusal(EXTERNAL_ALLOCATION_GPUS_MAX + 1)).toBe(`gpus ${EXTERNAL_ALLOCATION_GPUS_MAX + 1} is more than ${EXTERNAL_ALLOCATION_GPUS_MAX}`);
  });
  it('judges a producer time against the horizon of its receipt', () => {
    const received = 100 * 86_400_000;
    const h = DEFAULT_LATENESS_HORIZON;
    expect(externalTimeVerdict(received + h.aheadMs, received, h)).toBe('within');
    expect(externalTimeVerdict(received + h.aheadMs + 1, received, h)).toBe('ahead');
    expect(externalTimeVerdict(received - h.backMs, received, h)).toBe('within');
    expect(externalTimeVerdict(received - h.backMs - 1, received, h)).toBe('late');
    expect(externalTimeVerdict(0, undefined, h)).toBe('within');
    const stream = streamTimeHorizon();
    expect(stream).toEqual({ backMs: h.backMs + STREAM_TIME_GRACE_MS, aheadMs: h.aheadMs });
    expect(externalTimeVerdict(received - h.backMs - 1, received, stream)).toBe('within');
  });
});
