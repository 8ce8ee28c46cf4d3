/**
 * Proves the SLA report arithmetic on hand-computed figures: allocation availability as exact
 * decimals with the credit tiers of design.md (10 % below target, 25 % below 99.0, 50 % below
 * 95.0, boundaries exclusive), job success split into user and platform failures, time to requeue
 * after a node loss, node uptime and incidents, a hash that is stable and ignores the credits it
 * produced, and the CSV export.
 */
import { describe, expect, it } from 'vitest';
import { Money } from '@fastgpu/money';
import { reliabilityConfig } from '../reliability.config';
import { reportsToCsv } from './sla.csv';
import { periodBounds } from './sla.period';
import { breaches, buildSlaReport, canonicalJson, creditFor, nearestRank, type SlaFacts } from './sla.report';

const config = reliabilityConfig({ heartbeatIntervalMs: 5_000, missedHeartbeatsBeforeLost: 3 }, {}, {});
const policy = { allocationAvailability: config.sla.allocationAvailability, apiAvailability: config.sla.apiAvailability, requeueTargetMs: config.requeueTargetMs };
const oct = periodBounds('2026-10');
const t = (iso: string) => Date.parse(iso);

function facts(overrides: Partial<SlaFacts> = {}): SlaFacts {
  return {
    tenantId: 'acme',
    period: '2026-10',
    asOfMs: oct.endMs,
    final: true,
    windowEndSequence: 42,
    allocatedGpuMs: '1000000',
    interruptions: [
      // Node lost at 10:00:00 (its last heartbeat); placed again 2.6 s later: 2 GPUs × 2 600 ms unavailable.
      { subtaskId: 's1', jobId: 'j1', attempt: 1, nodeId: 'n1', gpus: 2, capacityType: 'on-demand', cause: 'node-lost', startedAtMs: t('2026-10-10T09:00:00.000Z'), placedAtMs: t('2026-10-10T08:59:59.000Z'), interruptedAtMs: t('2026-10-10T10:00:00.000Z'), resumedAtMs: t('2026-10-10T10:00:02.600Z'), resumedBy: 'placement' },
      // Preemptible capacity: listed and credited back, but outside the availability SLA.
      { subtaskId: 's2', jobId: 'j2', attempt: 1, nodeId: 'n1', gpus: 4, capacityType: 'preemptible', cause: 'preempted', startedAtMs: null, placedAtMs: t('2026-10-11T00:00:00.000Z'), interruptedAtMs: t('2026-10-11T00:00:01.000Z'), resumedAtMs: t('2026-10-11T00:10:00.000Z'), resumedBy: 'placement' },
    ],
    jobs: { succeeded: 7, failedUser: 2, failedPlatform: 1, cancelled: 1 },
    queueWait: { count: 3, p50: 1_000, p95: 5_000, p99: 5_000 },
    apiRequests: { total: 2_000, errors: 1 },
    nodes: [
      {
        nodeId: 'n1',
        gpuModel: 'a100',
        gpuCount: 8,
        registeredAtMs: t('2026-09-01T00:00:00.000Z'),
        reportsRejected: 1,
        heartbeatsRejected: 0,
        incidents: [{ incidentId: 'i1', kind: 'lost', startedAtMs: t('2026-10-10T10:00:00.000Z'), endedAtMs: t('2026-10-10T11:00:00.000Z'), detectedAtMs: t('2026-10-10T10:00:15.200Z'), reason: 'missed 3 heartbeats', automatic: true }],
      },
    ],
    slos: [],
    ...overrides,
  };
}

describe('SLA report', () => {
  it('computes allocation availability exactly and picks the 10 % tier just below 99.5 %', () => {
    const report = buildSlaReport(facts(), policy);
    // 1 000 000 / (1 000 000 + 5 200) = 99.48269001…% → shown truncated.
    expect(report.allocationAvailability).toEqual({ allocatedGpuMs: '1000000', unavailableGpuMs: '5200', availabilityPercent: '99.4826', targetPercent: '99.5', met: false, creditPercent: 10 });
    expect(report.interruptions).toMatchObject({ count: 2, unavailableGpuMs: 5_200 });
    // Interrupted work: 2 GPUs × 1 h run before the loss, + 4 GPUs × 1 s on the preemptible node.
    expect(report.interruptions.interruptedGpuMs).toBe(2 * 3_600_000 + 4 * 1_000);
    expect(report.interruptions.items.map((i) => [i.subtaskId, i.slaCovered, i.unavailableGpuMs])).toEqual([
      ['s1', true, 5_200],
      ['s2', false, 4 * 599_000],
    ]);
    expect(breaches(report)).toEqual([{ metric: 'gpu-allocation-availability', measured: '99.4826', target: '99.5', creditPercent: 10 }]);
  });

  it('separates user from platform failures, and reports API availability and requeue times', () => {
    const report = buildSlaReport(facts(), policy);
    expect(report.jobs).toEqual({ finished: 10, succeeded: 7, failedUser: 2, failedPlatform: 1, cancelled: 1, successPercent: '70.0000', platformSuccessPercent: '90.0000' });
    expect(report.apiAvailability).toEqual({ requests: 2_000, errors: 1, availabilityPercent: '99.9500', targetPercent: '99.9', met: true, creditPercent: 0 });
    expect(report.requeueAfterNodeLoss).toEqual({ count: 1, pending: 0, targetMs: 30_000, withinTarget: 1, p50Ms: 2_600, p95Ms: 2_600, maxMs: 2_600 });
    expect(report.queueWaitMs).toEqual({ count: 3, p50: 1_000, p95: 5_000, p99: 5_000 });
  });

  it('reports node uptime over the month and its incidents with the detection delay', () => {
    const [node] = buildSlaReport(facts(), policy).nodes;
    // 31 days = 2 678 400 000 ms, one hour lost: (2 678 400 000 − 3 600 000) / 2 678 400 000 = 99.86559…%.
    expect(node).toMatchObject({ nodeId: 'n1', observedMs: 2_678_400_000, downtimeMs: 3_600_000, drainedMs: 0, uptimePercent: '99.8655' });
    expect(node!.incidents).toEqual([{ incidentId: 'i1', kind: 'lost', startedAt: '2026-10-10T10:00:00.000Z', endedAt: '2026-10-10T11:00:00.000Z', durationMs: 3_600_000, detectionDelayMs: 15_200, reason: 'missed 3 heartbeats', automatic: true }]);
  });

  it('counts an unresolved interruption as unavailable up to the end of the window', () => {
    const open = facts({ interruptions: [{ ...facts().interruptions[0]!, resumedAtMs: null, resumedBy: null }], asOfMs: t('2026-10-10T10:00:10.000Z'), final: false });
    const report = buildSlaReport(open, policy);
    expect(report.asOf).toBe('2026-10-10T10:00:10.000Z');
    expect(report.allocationAvailability.unavailableGpuMs).toBe('20000');
    expect(report.requeueAfterNodeLoss).toMatchObject({ count: 0, pending: 1 });
  });

  it('applies the tiers with exclusive boundaries and a 50 % cap', () => {
    const tiers = config.sla.allocationAvailability;
    const at = (v: string) => creditFor(new Money(v), tiers);
    expect(at('99.5')).toEqual({ met: true, creditPercent: 0 });
    expect(at('99.4999999')).toEqual({ met: false, creditPercent: 10 });
    expect(at('99.0')).toEqual({ met: false, creditPercent: 10 });
    expect(at('98.9999')).toEqual({ met: false, creditPercent: 25 });
    expect(at('95.0')).toEqual({ met: false, creditPercent: 25 });
    expect(at('12')).toEqual({ met: false, creditPercent: 50 });
    expect(creditFor(null, tiers)).toEqual({ met: true, creditPercent: 0 });
    expect(buildSlaReport(facts({ allocatedGpuMs: '0', interruptions: [] }), policy).allocationAvailability).toMatchObject({ availabilityPercent: null, creditPercent: 0 });
  });

  it('hashes the canonical JSON: stable across key order, different when a figure changes, blind to credits', () => {
    const a = buildSlaReport(facts(), policy);
    const b = buildSlaReport(facts({ nodes: [...facts().nodes] }), policy);
    expect(a.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(b.hash).toBe(a.hash);
    expect(buildSlaReport(facts({ allocatedGpuMs: '1000001' }), policy).hash).not.toBe(a.hash);
    expect(canonicalJson({ b: 1, a: [{ d: 2, c: null }] })).toBe('{"a":[{"c":null,"d":2}],"b":1}');
  });

  it('exports CSV with one value per row under one header', () => {
    const report = buildSlaReport(facts(), policy);
    const csv = reportsToCsv([{ ...report, credits: [{ creditId: 'c1', metric: 'gpu-allocation-availability', measured: '99.4826', target: '99.5', creditPercent: 10, reportHash: report.hash, windowEndSequence: 42, issuedAt: '2026-11-01T01:00:00.000Z' }] }]);
    const lines = csv.trimEnd().split('\r\n');
    expect(lines[0]).toBe('tenant_id,period,section,item,metric,value');
    expect(lines).toContain('acme,2026-10,allocation,,availability_percent,99.4826');
    expect(lines).toContain('acme,2026-10,allocation,,credit_percent,10');
    expect(lines).toContain('acme,2026-10,jobs,,failed_platform,1');
    expect(lines).toContain('acme,2026-10,node,n1,uptime_percent,99.8655');
    // A value with a comma is quoted (RFC 4180).
    expect(lines).toContain('acme,2026-10,credit,c1,gpu-allocation-availability,"10% (measured 99.4826, target 99.5)"');
    expect(lines.every((l) => l.split(',').length >= 6)).toBe(true);
  });

  it('takes the nearest-rank percentile, as percentile_disc does', () => {
    expect(nearestRank([10, 20, 30, 40], 50)).toBe(20);
    expect(nearestRank([10, 20, 30, 40], 95)).toBe(40);
    expect(nearestRank([], 50)).toBeNull();
  });
});
