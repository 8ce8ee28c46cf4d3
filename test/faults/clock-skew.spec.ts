/**
 * Proves, with every service running on real NATS and PostgreSQL, that a node's clock does not
 * decide what it is billed or whether it is alive. Two simulated nodes report with skewed clocks,
 * one ten minutes slow and one an hour fast; each runs a 2-GPU sub-task of 3 s. Both jobs succeed,
 * both allocations are billed what they ran (UsageRecorded and the usage rows within one heartbeat
 * interval of 2 GPUs × 3 s, where the old clamp billed the slow node nothing), neither node is
 * declared lost (the fast one's heartbeats were refused as "from the future" before), and each
 * node's skew is exported as fastgpu_node_clock_skew_seconds.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { nodeClockSkewSeconds } from '@fastgpu/observability';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { SimulatedNode } from '../../apps/node-simulator/src/simulated-node';
import { allServices } from '../../apps/fastgpu/src/services';
import { call, eventsOn, ofType, tenantKey } from './harness';

const ADMIN = 'faults-admin-key-0123456789abcdef';
const HEARTBEAT_MS = 500;
const MISSED = 3;
const SLOW_MS = -10 * 60_000;
const FAST_MS = 60 * 60_000;
const GPUS = 2;
const RUNTIME_MS = 3000;

let env: TestEnvironment;
let runtime: OwnedRuntime;
let app: StartedApp;
let slow: SimulatedNode;
let fast: SimulatedNode;

beforeAll(async () => {
  env = await createTestEnvironment({ adminKey: ADMIN, heartbeatIntervalMs: HEARTBEAT_MS, missedHeartbeatsBeforeLost: MISSED });
  runtime = await createRuntime(env.config);
  app = await startServices(runtime, allServices, { port: 0, logger: false });
  // One model each, so each job lands on the node meant for it.
  slow = new SimulatedNode(env.bus, { nodeId: 'slow', gpuModel: 'a100', gpuCount: GPUS, gpuMemoryGb: 80 }, { heartbeatIntervalMs: HEARTBEAT_MS, now: () => new Date(Date.now() + SLOW_MS) });
  fast = new SimulatedNode(env.bus, { nodeId: 'fast', gpuModel: 'h100', gpuCount: GPUS, gpuMemoryGb: 80 }, { heartbeatIntervalMs: HEARTBEAT_MS, now: () => new Date(Date.now() + FAST_MS) });
  await slow.start();
  await fast.start();
});

afterAll(async () => {
  await slow?.stop();
  await fast?.stop();
  await app?.close();
  await runtime?.close();
  await env?.cleanup();
});

describe('skewed node clocks', () => {
  it('bill what the nodes ran and never make a node lost', async () => {
    const key = await tenantKey(app, ADMIN, 'acme');
    const jobs: Record<string, string> = {};
    for (const [node, model] of [['slow', 'a100'], ['fast', 'h100']] as const) {
      const submitted = await call(app, 'POST', '/v1/jobs', key, { projectId: 'p1', gpuModels: [model], gpusPerSubtask: GPUS, subtaskCount: 1, runtimeSeconds: RUNTIME_MS / 1000 }, { 'idempotency-key': `skew-${node}` });
      expect(submitted.status).toBe(202);
      jobs[node] = submitted.body.jobId as string;
    }
    for (const [node, jobId] of Object.entries(jobs)) {
      const done = await eventually(async () => {
        const view = await call(app, 'GET', `/v1/jobs/${jobId}`, key);
        return view.body.state === 'succeeded' ? view.body : undefined;
      });
      expect(done.subtasks[0].nodeId).toBe(node);
    }

    // Billed what they ran: 2 GPUs × 3 s, within one heartbeat interval.
    const ran = GPUS * RUNTIME_MS;
    const usage = await eventually(async () => {
      const recorded = ofType(await eventsOn(env.bus, `${env.bus.topology.prefix}.evt.metering.usage.acme`), 'UsageRecorded');
      return recorded.length === 2 ? recorded : undefined;
    });
    for (const jobId of Object.values(jobs)) {
      const record = usage.find((u) => u.data.jobId === jobId)!;
      expect(record.data.gpuMs).toBeGreaterThanOrEqual(ran);
      expect(record.data.gpuMs).toBeLessThanOrEqual(ran + GPUS * HEARTBEAT_MS);
      const { rows } = await sql<{ gpu_ms: string }>`SELECT sum(gpu_ms)::int8 AS gpu_ms FROM metering_usage_hourly WHERE job_id = ${jobId}`.execute(env.database.db);
      expect(Number(rows[0]!.gpu_ms)).toBe(record.data.gpuMs);
    }

    // Alive: past several loss timeouts after the work, no NodeLost for either.
    await new Promise((resolve) => setTimeout(resolve, 2 * MISSED * HEARTBEAT_MS));
    const reliability = await eventsOn(env.bus, `${env.bus.topology.prefix}.evt.reliability.node.>`);
    expect(ofType(reliability, 'NodeLost')).toEqual([]);
    expect(ofType(reliability, 'ReportRejected')).toEqual([]);

    // The skew of each node, measured on its heartbeats (transit makes it read a little behind).
    const skews = new Map((await nodeClockSkewSeconds.get()).values.map((v) => [String(v.labels.node), v.value]));
    expect(skews.get('slow')).toBeGreaterThan(SLOW_MS / 1000 - 2);
    expect(skews.get('slow')).toBeLessThanOrEqual(SLOW_MS / 1000);
    expect(skews.get('fast')).toBeGreaterThan(FAST_MS / 1000 - 2);
    expect(skews.get('fast')).toBeLessThanOrEqual(FAST_MS / 1000);
  });
});
