/**
 * Proves the SLA report and credit on real NATS JetStream and Postgres, from events alone: an
 * October with a node lost for the rest of the month, a sub-task requeued 10 minutes after the
 * node's last heartbeat, a late report from the lost node (rejected, not counted), and a job
 * failed by the user. The report (HTTP JSON and CSV) matches hand-computed figures; closing the
 * month stores it once and issues one 25 % credit citing its hash and event window; closing again
 * issues nothing new; tenants see only their own report; API responses feed the API availability
 * SLO; the SRE command prints the same reports; the read model rebuilt from sequence 1
 * is row for row the live one.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nameId, newEventId, type DomainEvent, type EventData, type EventType } from '@fastgpu/contracts';
import { EventPublisher } from '@fastgpu/messaging';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, eventually, insertTestApiKey, type TestEnvironment } from '@fastgpu/testing';
import { runReplayCommand } from '@fastgpu/replay';
import { ReliabilityEngine } from '../src/reliability.engine';
import { slaReplayable } from '../src/sla/sla.replayable';
import { runSlaCommand } from '../src/cli/sla.command';
import { ReliabilityModule } from '../src/reliability.module';
import type { ServedReport } from '../src/sla/sla.report';
import { LogTail } from './log-tail';

const ADMIN_KEY = 'test-admin-key-0123456789abcdef';
const ACME_KEY = 'fgk_acme-tenant-key-for-sla-tests';
const OTHER_KEY = 'fgk_other-tenant-key-for-sla-tests';

let env: TestEnvironment;
let runtime: OwnedRuntime;
let started: StartedApp;
let engine: ReliabilityEngine;
let publisher: EventPublisher;
let log: LogTail;

async function emit<T extends EventType>(type: T, data: EventData<T>, time: string): Promise<DomainEvent> {
  const id = newEventId();
  const event = publisher.build(type, data, { id, time, tenantId: 'tenantId' in data ? (data as { tenantId: string }).tenantId : null, correlationId: id }) as DomainEvent;
  await publisher.publish(event);
  return event;
}

async function get(path: string, key: string): Promise<Response> {
  return fetch(`${started.url}${path}`, { headers: { authorization: `Bearer ${key}` } });
}

const job = (jobId: string, submittedAt: string, gpus: number) => ({
  jobId,
  tenantId: 'acme',
  projectId: 'proj',
  gpuModels: ['a100'],
  gpusPerSubtask: gpus,
  subtaskCount: 1,
  runtimeMs: 3_600_000,
  priorityClass: 'standard' as const,
  priority: 0,
  preemptible: false,
  gang: false,
  capacityType: 'on-demand' as const,
  dependsOn: [],
  submittedAt,
});
const placed = (jobId: string, subtaskId: string, attempt: number, leaseEpoch: number, nodeId: string, gpus: number, placedAt: string) => ({
  jobId,
  tenantId: 'acme',
  projectId: 'proj',
  subtaskId,
  attempt,
  nodeId,
  gpuModel: 'a100',
  gpus,
  gpuIndices: Array.from({ length: gpus }, (_, i) => i),
  leaseEpoch,
  capacityType: 'on-demand' as const,
  runtimeMs: 3_600_000,
  placedAt,
});
const report = (subtaskId: string, jobId: string, attempt: number, leaseEpoch: number, nodeId: string) => ({ jobId, tenantId: 'acme', subtaskId, attempt, nodeId, leaseEpoch });

let lateReport: DomainEvent;

beforeAll(async () => {
  env = await createTestEnvironment({ adminKey: ADMIN_KEY });
  runtime = await createRuntime(env.config);
  for (const [keyId, tenantId, secret] of [
    ['k-acme', 'acme', ACME_KEY],
    ['k-other', 'other', OTHER_KEY],
  ] as const) {
    await insertTestApiKey(runtime.db, { keyId, tenantId, role: 'tenant', issuedAt: new Date(), secret });
  }
  started = await startServices(runtime, [{ name: 'reliability', module: ReliabilityModule.withOptions({ slaAutoClose: false }) }], { port: 0, logger: false });
  engine = started.app.get(ReliabilityEngine);
  publisher = new EventPublisher(env.bus.js, env.bus.topology, 'test/history');
  log = new LogTail(env.bus);
  await log.start();

  // October, as the log tells it.
  for (const nodeId of ['oct-n1', 'oct-n2']) {
    await emit('NodeRegistered', { nodeId, gpuModel: 'a100', gpuCount: 8, gpuMemoryGb: 80, labels: {}, agentEpoch: 1, registeredAt: '2026-10-01T00:00:00.000Z' }, '2026-10-01T00:00:00.000Z');
  }
  await emit('JobSubmitted', job('j1', '2026-10-05T00:00:00.000Z', 4), '2026-10-05T00:00:00.000Z');
  await emit('SubtaskPlaced', placed('j1', 's1', 1, 1, 'oct-n1', 4, '2026-10-05T00:00:03.000Z'), '2026-10-05T00:00:03.000Z');
  await emit('SubtaskStarted', { ...report('s1', 'j1', 1, 1, 'oct-n1'), startedAt: '2026-10-05T00:00:04.000Z' }, '2026-10-05T00:00:04.000Z');
  await emit('NodeLost', { nodeId: 'oct-n1', lastHeartbeatAt: '2026-10-05T02:00:00.000Z', detectedAt: '2026-10-05T02:00:15.000Z', reason: 'missed 3 heartbeats' }, '2026-10-05T02:00:15.000Z');
  await emit('SubtaskRequeued', { jobId: 'j1', tenantId: 'acme', subtaskId: 's1', previousAttempt: 1, reason: 'node lost', requeuedAt: '2026-10-05T02:00:16.000Z' }, '2026-10-05T02:00:16.000Z');
  await emit('SubtaskPlaced', placed('j1', 's1', 2, 2, 'oct-n2', 4, '2026-10-05T02:10:00.000Z'), '2026-10-05T02:10:00.000Z');
  await emit('SubtaskStarted', { ...report('s1', 'j1', 2, 2, 'oct-n2'), startedAt: '2026-10-05T02:10:01.000Z' }, '2026-10-05T02:10:01.000Z');
  lateReport = await emit('SubtaskCompleted', { ...report('s1', 'j1', 1, 1, 'oct-n1'), exitCode: 0, endedAt: '2026-10-05T03:00:00.000Z' }, '2026-10-05T03:00:00.000Z');
  await emit('SubtaskCompleted', { ...report('s1', 'j1', 2, 2, 'oct-n2'), exitCode: 0, endedAt: '2026-10-05T06:10:00.000Z' }, '2026-10-05T06:10:00.000Z');
  await emit('JobCompleted', { jobId: 'j1', tenantId: 'acme', projectId: 'proj', outcome: 'succeeded', subtasksSucceeded: 1, subtasksFailed: 0, subtasksCancelled: 0, gpuMsObserved: 1, completedAt: '2026-10-05T06:10:01.000Z' }, '2026-10-05T06:10:01.000Z');
  await emit('JobSubmitted', job('j2', '2026-10-06T00:00:00.000Z', 1), '2026-10-06T00:00:00.000Z');
  await emit('SubtaskPlaced', placed('j2', 's2', 1, 1, 'oct-n2', 1, '2026-10-06T00:00:01.000Z'), '2026-10-06T00:00:01.000Z');
  await emit('SubtaskFailed', { ...report('s2', 'j2', 1, 1, 'oct-n2'), exitCode: 3, fault: 'user', reason: 'exit code 3', endedAt: '2026-10-06T00:30:01.000Z' }, '2026-10-06T00:30:01.000Z');
  await emit('JobCompleted', { jobId: 'j2', tenantId: 'acme', projectId: 'proj', outcome: 'failed', reason: 'exit code 3', subtasksSucceeded: 0, subtasksFailed: 1, subtasksCancelled: 0, gpuMsObserved: 1, completedAt: '2026-10-06T00:30:02.000Z' }, '2026-10-06T00:30:02.000Z');
  // The liveness loop rejects the late report; wait for it so the month is read with it.
  await log.waitFor('ReportRejected', (e) => e.causationid === lateReport.id);
  expect(await engine.projectionCaughtUp()).toBe(true);
});

afterAll(async () => {
  await log?.stop();
  await started?.close();
  await runtime?.close();
  await env?.cleanup();
});

// Hand-computed (on-demand capacity, GPU-ms):
//   s1 attempt 1: 4 GPUs × (02:00:00 − 00:00:03) = 4 × 7 197 000 = 28 788 000 (ends at the last heartbeat)
//   s1 attempt 2: 4 GPUs × (06:10:00 − 02:10:00) = 57 600 000
//   s2 attempt 1: 1 GPU  × 30 min                 =  1 800 000      → allocated 88 188 000
//   unavailable: 4 GPUs × (02:10:00 − 02:00:00)   =  2 400 000
//   availability = 88 188 000 / 90 588 000 = 97.35064…% → below 99.0 → 25 % credit
//   oct-n1 lost from Oct 5 02:00 to the month's end: 2 325 600 000 of 2 678 400 000 ms → 13.1720 % up
describe('the October SLA report and credit', () => {
  let closed: Awaited<ReturnType<ReliabilityEngine['closePeriod']>>;

  it('closes the month once, storing the report and issuing one credit that cites it', async () => {
    closed = await engine.closePeriod('2026-10');
    expect(closed.map((c) => c.tenantId)).toEqual(['acme']);
    const [{ report, credits }] = closed as [(typeof closed)[number]];
    expect(report.allocationAvailability).toEqual({ allocatedGpuMs: '88188000', unavailableGpuMs: '2400000', availabilityPercent: '97.3506', targetPercent: '99.5', met: false, creditPercent: 25 });
    const creditId = nameId('SlaCreditIssued', 'acme', '2026-10', 'gpu-allocation-availability');
    expect(credits).toEqual([creditId]);
    const credit = await log.waitFor('SlaCreditIssued', (e) => e.data.creditId === creditId);
    expect(credit.data).toMatchObject({ tenantId: 'acme', period: '2026-10', metric: 'gpu-allocation-availability', measured: '97.3506', target: '99.5', creditPercent: 25, reportHash: report.hash, windowEndSequence: report.windowEndSequence });
    // The report's window covers the whole October history, and ends before the credit it produced.
    expect(report.windowEndSequence).toBeGreaterThanOrEqual(log.sequenceOf(lateReport.id)!);
    expect(report.windowEndSequence).toBeLessThan(log.sequenceOf(credit.id)!);

    const again = await engine.closePeriod('2026-10');
    expect(again[0]!.report.hash).toBe(report.hash);
    await new Promise((r) => setTimeout(r, 300));
    expect(log.all('SlaCreditIssued')).toHaveLength(1);
  });

  it('serves the tenant its closed report as JSON with the hand-computed figures and the credit', async () => {
    const creditId = nameId('SlaCreditIssued', 'acme', '2026-10', 'gpu-allocation-availability');
    await eventually(async () => (await engine.sla.credits('acme', '2026-10')).length === 1);
    const response = await get('/v1/sla-reports?period=2026-10', ACME_KEY);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { period: string; reports: ServedReport[] };
    expect(body.reports).toHaveLength(1);
    const [r] = body.reports as [ServedReport];
    expect(r.hash).toBe(closed[0]!.report.hash);
    expect(r.final).toBe(true);
    expect(r.asOf).toBe('2026-11-01T00:00:00.000Z');
    expect(r.jobs).toEqual({ finished: 2, succeeded: 1, failedUser: 1, failedPlatform: 0, cancelled: 0, successPercent: '50.0000', platformSuccessPercent: '100.0000' });
    // percentile_disc over [1 000, 3 000] ms.
    expect(r.queueWaitMs).toEqual({ count: 2, p50: 1_000, p95: 3_000, p99: 3_000 });
    expect(r.requeueAfterNodeLoss).toEqual({ count: 1, pending: 0, targetMs: 30_000, withinTarget: 0, p50Ms: 600_000, p95Ms: 600_000, maxMs: 600_000 });
    expect(r.interruptions.items).toEqual([
      expect.objectContaining({ subtaskId: 's1', attempt: 1, nodeId: 'oct-n1', cause: 'node-lost', interruptedAt: '2026-10-05T02:00:00.000Z', resumedAt: '2026-10-05T02:10:00.000Z', resumedBy: 'placement', interruptedGpuMs: 4 * 7_196_000, unavailableGpuMs: 2_400_000 }),
    ]);
    const n1 = r.nodes.find((n) => n.nodeId === 'oct-n1')!;
    expect(n1).toMatchObject({ observedMs: 2_678_400_000, downtimeMs: 2_325_600_000, uptimePercent: '13.1720', reportsRejectedTotal: 1 });
    expect(n1.incidents).toEqual([expect.objectContaining({ kind: 'lost', startedAt: '2026-10-05T02:00:00.000Z', endedAt: null, detectionDelayMs: 15_000 })]);
    expect(r.nodes.find((n) => n.nodeId === 'oct-n2')).toMatchObject({ downtimeMs: 0, uptimePercent: '100.0000' });
    expect(r.slos.find((s) => s.slo === 'job-start-latency')).toMatchObject({ status: 'ok', period: { total: 2, bad: 0 } });
    expect(r.credits).toEqual([expect.objectContaining({ creditId, creditPercent: 25, reportHash: r.hash, windowEndSequence: r.windowEndSequence })]);
  });

  it('serves CSV, keeps tenants apart, and lets sre/admin see every tenant', async () => {
    const csv = await get('/v1/sla-reports?period=2026-10&format=csv', ACME_KEY);
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    const lines = (await csv.text()).trimEnd().split('\r\n');
    expect(lines[0]).toBe('tenant_id,period,section,item,metric,value');
    expect(lines).toContain('acme,2026-10,allocation,,availability_percent,97.3506');
    expect(lines).toContain('acme,2026-10,allocation,,credit_percent,25');

    const other = (await (await get('/v1/sla-reports?period=2026-10', OTHER_KEY)).json()) as { reports: ServedReport[] };
    expect(other.reports).toHaveLength(1);
    expect(other.reports[0]).toMatchObject({ tenantId: 'other', allocationAvailability: { allocatedGpuMs: '0', availabilityPercent: null, creditPercent: 0 }, interruptions: { count: 0 } });
    expect((await get('/v1/sla-reports?period=2026-10&tenantId=acme', OTHER_KEY)).status).toBe(404);

    const all = (await (await get('/v1/sla-reports?period=2026-10', ADMIN_KEY)).json()) as { reports: ServedReport[] };
    expect(all.reports.map((x) => x.tenantId)).toEqual(['acme']);
    expect((await get('/v1/sla-reports?period=2026-13', ACME_KEY)).status).toBe(400);
    expect((await get('/v1/sla-reports?period=2026-10', 'fgk_wrong')).status).toBe(401);

    // Every response above was counted for the API availability SLO; 4xx are the caller's, not errors.
    await engine.recorder.flush();
    const api = (await engine.sloStates()).find((state) => state.slo === 'api-availability')!;
    expect(api.period.total).toBeGreaterThanOrEqual(7);
    expect(api.period.bad).toBe(0);
    expect(api.status).toBe('ok');
  });

  it('rebuilds from the log into identical rows', async () => {
    const out: string[] = [];
    const io = { out: (line: string) => out.push(line), err: () => undefined };
    const code = await runReplayCommand(['reliability-sla'], { 'reliability-sla': slaReplayable }, { bus: env.bus, db: runtime.db, io });
    expect(out.join('\n')).toMatch(/reliability-sla: compared at sequence \d+: identical/);
    expect(code).toBe(0);
  });

  it('prints the same reports from the SRE command line, as JSON and CSV', async () => {
    const run = async (args: string[]) => {
      const out: string[] = [];
      const err: string[] = [];
      const code = await runSlaCommand(args, { db: runtime.db, config: engine.config, nowMs: Date.now(), out: (t) => out.push(t), err: (t) => err.push(t) });
      return { code, out: out.join('\n'), err: err.join('\n') };
    };
    const json = await run(['--period', '2026-10', '--tenant', 'acme']);
    expect(json.code).toBe(0);
    const parsed = JSON.parse(json.out) as { reports: ServedReport[] };
    expect(parsed.reports[0]).toMatchObject({ tenantId: 'acme', hash: closed[0]!.report.hash, allocationAvailability: { availabilityPercent: '97.3506', creditPercent: 25 } });
    const csv = await run(['--period', '2026-10', '--format', 'csv']);
    expect(csv.out.split('\r\n')).toContain('acme,2026-10,allocation,,availability_percent,97.3506');
    const slo = await run(['--slo']);
    expect((JSON.parse(slo.out) as Array<{ slo: string }>).map((s) => s.slo)).toEqual(['api-availability', 'job-start-latency', 'metering-freshness']);
    const bad = await run(['--period', '2026-13']);
    expect(bad).toMatchObject({ code: 2, err: expect.stringMatching(/--period must be YYYY-MM/) });
  });
});
