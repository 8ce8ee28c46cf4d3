/**
 * Proves the node-loss story across the real services (intake, scheduler, metering, reliability)
 * on real NATS JetStream and Postgres, with simulated nodes beating every 200 ms: a job runs on a
 * node whose heartbeats then stop; reliability declares the node lost; the scheduler requeues the
 * sub-task onto the other node within 30 s of the last heartbeat and the job completes there; the
 * stopped node's late report is rejected and it is told to stop; metering ends the interrupted
 * allocation at the last heartbeat and bills the late report nowhere (no GPU-millisecond twice);
 * the tenant's SLA report shows the interruption and the time to requeue; the draft invoice
 * bills both attempts once and credits the interrupted time back as its own line.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deriveId, NodeCommand } from '@fastgpu/contracts';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { amountForGpuMs, formatMoney, roundToMinor } from '@fastgpu/money';
import { createBillingService } from '../../billing/src/billing.service';
import { intakeService } from '../../intake/src/intake.service';
import { meteringService } from '../../metering/src/metering.service';
import { SimulatedNode } from '../../node-simulator/src/simulated-node';
import { schedulerService } from '../../scheduler/src/scheduler.service';
import { ReliabilityModule } from '../src/reliability.module';
import type { ServedReport } from '../src/sla/sla.report';
import { LogTail } from './log-tail';

const ADMIN_KEY = 'test-admin-key-0123456789abcdef';
const HEARTBEAT_MS = 200;
/** 36 000 per GPU-hour is 0.01 per GPU-ms: every amount below is exact in cents. */
const PRICE_PER_GPU_HOUR = '36000';
// 10 missed beats of 200 ms (2 s): short enough for a test of seconds, long enough that event-loop
// stalls on a busy CI machine (two cores, test files in parallel) do not make a healthy node look dead.
const MISSED = 10;

let env: TestEnvironment;
let runtime: OwnedRuntime;
let started: StartedApp;
let log: LogTail;
const nodes = new Map<string, SimulatedNode>();

async function api(method: string, path: string, key: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${started.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...(method === 'POST' && path === '/v1/jobs' ? { 'idempotency-key': 'node-loss-1' } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

beforeAll(async () => {
  env = await createTestEnvironment({ adminKey: ADMIN_KEY, heartbeatIntervalMs: HEARTBEAT_MS, missedHeartbeatsBeforeLost: MISSED });
  runtime = await createRuntime(env.config);
  started = await startServices(
    runtime,
    [intakeService, schedulerService, meteringService, createBillingService(), { name: 'reliability', module: ReliabilityModule.withOptions({ slaAutoClose: false }) }],
    { port: 0, logger: false },
  );
  log = new LogTail(env.bus);
  await log.start();
  for (const nodeId of ['n1', 'n2']) {
    const node = new SimulatedNode(env.bus, { nodeId, gpuModel: 'a100', gpuCount: 2, gpuMemoryGb: 80 }, { heartbeatIntervalMs: HEARTBEAT_MS });
    await node.start();
    nodes.set(nodeId, node);
  }
});

afterAll(async () => {
  for (const node of nodes.values()) await node.stop();
  await log?.stop();
  await started?.close();
  await runtime?.close();
  await env?.cleanup();
});

describe('a node lost in the middle of a job', () => {
  it('is requeued elsewhere in time, its late report rejected, billed to its last heartbeat, and reported', async () => {
    expect((await api('POST', '/v1/tenants', ADMIN_KEY, { tenantId: 'acme', name: 'Acme', billingTimeZone: 'UTC', currency: 'USD' })).status).toBe(201);
    const key = (await api('POST', '/v1/tenants/acme/api-keys', ADMIN_KEY, { label: 'test' })).body as { secret: string };
    const priceBook = await api('POST', '/v1/price-books', ADMIN_KEY, {
      priceBookId: 'list',
      currency: 'USD',
      effectiveFrom: '2026-01-01T00:00:00.000Z',
      prices: [{ gpuModel: 'a100', capacityType: 'on-demand', pricePerGpuHour: PRICE_PER_GPU_HOUR, incrementMs: 1, minimumMs: 0 }],
    });
    expect(priceBook.status).toBe(201);
    const submitted = await api('POST', '/v1/jobs', key.secret, { projectId: 'proj', gpuModels: ['a100'], gpusPerSubtask: 2, subtaskCount: 1, runtimeSeconds: 3 });
    expect(submitted.status).toBe(202);
    const { jobId } = submitted.body as { jobId: string };

    const first = await log.waitFor('SubtaskStarted', (e) => e.data.jobId === jobId, 30_000);
    const lostNode = nodes.get(first.data.nodeId)!;
    const otherNodeId = first.data.nodeId === 'n1' ? 'n2' : 'n1';
    // Let a heartbeat or two land while the work runs, so some GPU time is billed before the loss.
    await new Promise((r) => setTimeout(r, HEARTBEAT_MS * 3));
    const partitionedAtMs = Date.now();
    lostNode.partition();
    await new Promise((r) => setTimeout(r, HEARTBEAT_MS));
    const lastBeat = await env.bus.jsm.streams.getMessage(env.bus.topology.streams.heartbeats, { last_by_subj: env.bus.topology.subjects.heartbeat(first.data.nodeId) });
    const lastBeatMs = lastBeat!.time.getTime();

    // The loss that follows the partition (on a loaded machine a starved heartbeat can make an
    // earlier, recovered loss; that one is not what this test is about).
    const lost = await log.waitFor('NodeLost', (e) => e.data.nodeId === first.data.nodeId && Date.parse(e.data.detectedAt) >= partitionedAtMs, 30_000);
    expect(lost.data.lastHeartbeatAt).toBe(new Date(lastBeatMs).toISOString());
    const replaced = await log.waitFor('SubtaskPlaced', (e) => e.data.subtaskId === first.data.subtaskId && e.data.attempt === 2, 30_000);
    expect(replaced.data.nodeId).toBe(otherNodeId);
    expect(replaced.data.leaseEpoch).not.toBe(first.data.leaseEpoch);
    expect(Date.parse(replaced.data.placedAt) - lastBeatMs).toBeLessThan(30_000);
    const done = await log.waitFor('JobCompleted', (e) => e.data.jobId === jobId, 30_000);
    expect(done.data.outcome).toBe('succeeded');

    // The lost node comes back with the report it held: stale, rejected, and the node told to stop.
    await eventually(() => lostNode.heldReports.length === 1, { message: 'the lost node did not finish its run' });
    lostNode.resumeHeartbeats();
    await lostNode.releaseHeldReports();
    const late = await log.waitFor('SubtaskCompleted', (e) => e.data.subtaskId === first.data.subtaskId && e.data.attempt === 1);
    const rejected = await log.waitFor('ReportRejected', (e) => e.causationid === late.id);
    expect(rejected.id).toBe(deriveId(late.id, 'ReportRejected'));
    const stop = await env.bus.jsm.streams.getMessage(env.bus.topology.streams.commands, { last_by_subj: env.bus.topology.subjects.command(first.data.nodeId) });
    expect(NodeCommand.parse(stop!.json())).toMatchObject({ kind: 'StopSubtask', commandId: deriveId(late.id, 'StopSubtask'), leaseEpoch: first.data.leaseEpoch });
    await log.waitFor('NodeRecovered', (e) => e.data.nodeId === first.data.nodeId);

    // Metering: attempt 1 ends at the last heartbeat and is marked interrupted; attempt 2 is whole.
    const usage = await eventually(() => {
      const records = log.all('UsageRecorded', (e) => e.data.subtaskId === first.data.subtaskId);
      return records.some((r) => r.data.attempt === 1) && records.some((r) => r.data.attempt === 2) ? records : undefined;
    }, { timeoutMs: 30_000, message: 'no usage for both attempts' });
    const attempt1 = usage.filter((u) => u.data.attempt === 1);
    expect(attempt1.every((u) => u.data.interrupted)).toBe(true);
    expect(Math.max(...attempt1.map((u) => Date.parse(u.data.endAt)))).toBe(lastBeatMs);
    expect(attempt1.reduce((sum, u) => sum + u.data.gpuMs, 0)).toBe(2 * (lastBeatMs - Date.parse(first.data.startedAt)));
    expect(usage.filter((u) => u.data.attempt === 2).every((u) => !u.data.interrupted)).toBe(true);
    await new Promise((r) => setTimeout(r, 500));
    expect(log.all('UsageRecorded', (e) => e.data.subtaskId === first.data.subtaskId && e.data.attempt === 1 && Date.parse(e.data.endAt) > lastBeatMs)).toEqual([]);

    // The tenant's SLA report counts the interruption and the time it took to run again.
    const report = await eventually(async () => {
      const response = await api('GET', '/v1/sla-reports', key.secret);
      const r = (response.body as { reports: ServedReport[] }).reports[0];
      return r && r.jobs.finished === 1 ? r : undefined;
    });
    const requeueMs = Date.parse(replaced.data.placedAt) - lastBeatMs;
    expect(report.requeueAfterNodeLoss).toMatchObject({ count: 1, withinTarget: 1, maxMs: requeueMs });
    expect(report.interruptions.items).toEqual([expect.objectContaining({ cause: 'node-lost', nodeId: first.data.nodeId, interruptedAt: lost.data.lastHeartbeatAt, unavailableGpuMs: 2 * requeueMs })]);
    expect(report.jobs).toMatchObject({ succeeded: 1, failedPlatform: 0 });

    // Billing: both attempts billed once, and the interrupted attempt credited back on its own line.
    const attempt1GpuMs = attempt1.reduce((sum, u) => sum + u.data.gpuMs, 0);
    const attempt2GpuMs = usage.filter((u) => u.data.attempt === 2).reduce((sum, u) => sum + u.data.gpuMs, 0);
    const money = (gpuMs: number) => formatMoney(roundToMinor(amountForGpuMs(gpuMs, PRICE_PER_GPU_HOUR), 'USD'), 'USD');
    type Line = { kind: string; quantityGpuMs: number | null; amount: string };
    const invoice = await eventually(async () => {
      const list = (await api('GET', '/v1/invoices', key.secret)).body as { invoices: Array<{ invoiceId: string }> };
      const id = list.invoices[0]?.invoiceId;
      if (!id) return undefined;
      const doc = (await api('GET', `/v1/invoices/${id}`, key.secret)).body as { lines: Line[]; total: string };
      const usageGpuMs = doc.lines.filter((l) => l.kind === 'usage').reduce((sum, l) => sum + (l.quantityGpuMs ?? 0), 0);
      return usageGpuMs === attempt1GpuMs + attempt2GpuMs && doc.lines.some((l) => l.kind === 'interruption-credit') ? doc : undefined;
    }, { timeoutMs: 30_000, message: 'no invoice with both attempts and the interruption credit' });
    const credit = invoice.lines.filter((l) => l.kind === 'interruption-credit');
    expect(credit.map((l) => l.quantityGpuMs)).toEqual([attempt1GpuMs]);
    expect(credit[0]!.amount).toBe(`-${money(attempt1GpuMs)}`);
    expect(invoice.total).toBe(money(attempt2GpuMs));
  });
});
