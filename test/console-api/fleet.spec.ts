/**
 * Proves the SRE routes the console's fleet view reads, on real NATS and Postgres with simulated
 * GPU nodes: GET /v1/fleet names each node's state and last stored heartbeat and, per GPU index,
 * the tenant's sub-task attempt holding it (a drained node with work still running is
 * `draining`), while the tenant's live feed shows its job submitted, placed and started and
 * nothing of the fleet, and the SRE's shows the drain; GET /v1/scheduler/queue lists the job that
 * cannot be placed with its position and reason; GET /v1/health gives each projection's lag
 * behind the event stream; GET /v1/slo gives the three SLOs with their alert windows; a tenant
 * or finance key gets 403 in the house error shape on each.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { intakeService } from '../../apps/intake/src/intake.service';
import { startSimulatedFleet, type SimulatedNode } from '../../apps/node-simulator/src/simulated-node';
import { reliabilityService } from '../../apps/reliability/src/reliability.service';
import { schedulerService } from '../../apps/scheduler/src/scheduler.service';
import { openSse } from './sse';

const ADMIN = 'test-admin-key-0123456789abcdef';
let env: TestEnvironment;
let runtime: OwnedRuntime;
let app: StartedApp;
let nodes: SimulatedNode[] = [];
const keys = { tenant: '', sre: '', finance: '' };

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- answers are checked field by field
async function http(method: string, path: string, key: string, body?: unknown): Promise<{ status: number; body: any }> {
  const response = await fetch(`${app.url}${path}`, { method, headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

beforeAll(async () => {
  env = await createTestEnvironment({ adminKey: ADMIN, heartbeatIntervalMs: 200 });
  runtime = await createRuntime(env.config);
  app = await startServices(runtime, [intakeService, schedulerService, reliabilityService], { port: 0, logger: false });
  nodes = await startSimulatedFleet(env.bus, 'a100:2x2', { speed: 1, heartbeatIntervalMs: 200 });
  expect((await http('POST', '/v1/tenants', ADMIN, { tenantId: 'fleet-tenant', name: 'Fleet tenant' })).status).toBe(201);
  keys.tenant = (await http('POST', '/v1/tenants/fleet-tenant/api-keys', ADMIN, { role: 'tenant' })).body.secret;
  keys.sre = (await http('POST', '/v1/api-keys', ADMIN, { role: 'sre' })).body.secret;
  keys.finance = (await http('POST', '/v1/api-keys', ADMIN, { role: 'finance' })).body.secret;
});

afterAll(async () => {
  for (const node of nodes) await node.stop();
  await app?.close();
  await runtime?.close();
  await env?.cleanup();
});

describe('SRE routes of the console', () => {
  it('shows who holds each GPU, the node states and heartbeats, and the queue with its reasons', async () => {
    await eventually(async () => (await http('GET', '/v1/fleet', keys.sre)).body?.nodes?.length === 2, { message: 'the two simulated nodes never registered' });
    // The tenant's and the SRE's live feeds, from before the submission.
    const tenantFeed = await openSse(`${app.url}/v1/live`, { authorization: `Bearer ${keys.tenant}` });
    const sreFeed = await openSse(`${app.url}/v1/live`, { authorization: `Bearer ${keys.sre}` });
    // Three sub-tasks of two GPUs on two nodes of two GPUs: two run for ten minutes, one waits.
    const submitted = await fetch(`${app.url}/v1/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${keys.tenant}`, 'content-type': 'application/json', 'idempotency-key': 'fleet-1' },
      body: JSON.stringify({ projectId: 'demo', gpuModels: ['a100'], gpusPerSubtask: 2, subtaskCount: 3, runtimeSeconds: 600 }),
    });
    expect(submitted.status).toBe(202);
    const { jobId } = (await submitted.json()) as { jobId: string };

    const fleet = await eventually(
      async () => {
        const answer = await http('GET', '/v1/fleet', keys.sre);
        const held = answer.body.nodes.flatMap((n: { gpus: Array<{ holder: unknown }> }) => n.gpus.filter((g) => g.holder !== null));
        return held.length === 4 && answer.body.nodes.every((n: { lastHeartbeat: string | null }) => n.lastHeartbeat !== null) ? answer.body : undefined;
      },
      { message: 'four GPUs never showed as held' },
    );
    for (const node of fleet.nodes) {
      expect(node).toMatchObject({ gpuModel: 'a100', state: 'healthy', gpuCount: 2, freeGpus: 0 });
      expect(node.gpus.map((g: { index: number }) => g.index)).toEqual([0, 1]);
      expect(Date.parse(node.lastHeartbeat)).toBeGreaterThan(Date.parse(submitted.headers.get('date')!) - 60_000);
      for (const gpu of node.gpus) expect(gpu.holder).toMatchObject({ kind: 'subtask', tenantId: 'fleet-tenant', jobId, attempt: 1, leaseId: null, subtaskId: expect.any(String), since: expect.any(String) });
      // Both GPUs of a node belong to the same sub-task.
      expect(node.gpus[0].holder.subtaskId).toBe(node.gpus[1].holder.subtaskId);
    }

    const queue = await eventually(
      async () => {
        const answer = await http('GET', '/v1/scheduler/queue', keys.sre);
        return answer.body.items[0]?.code ? answer.body : undefined;
      },
      { message: 'the waiting job never got a reason' },
    );
    expect(queue.queuedJobs).toBe(1);
    expect(queue.items).toEqual([expect.objectContaining({ jobId, tenantId: 'fleet-tenant', projectId: 'demo', priorityClass: 'standard', pendingSubtasks: 1, runningSubtasks: 2, queuePosition: 1, code: 'capacity' })]);
    expect((await http('GET', '/v1/scheduler/queue?limit=0', keys.sre)).status).toBe(400);

    // A drained node with its sub-task still running is draining, not drained.
    const nodeId = fleet.nodes[0].nodeId as string;
    expect((await http('POST', `/v1/nodes/${nodeId}/drain`, keys.sre, { reason: 'console test' })).status).toBe(202);
    const drained = (await http('GET', '/v1/fleet', keys.sre)).body.nodes.find((n: { nodeId: string }) => n.nodeId === nodeId);
    expect(drained.state).toBe('draining');

    // Live: the tenant saw its job submitted, placed and started from the services themselves, and nothing of the fleet.
    try {
      const ofJob = (type: string) => (m: { event?: string; data: string }) => m.event === type && (JSON.parse(m.data) as { data: { jobId?: string } }).data.jobId === jobId;
      for (const type of ['JobSubmitted', 'SubtaskCreated', 'SubtaskPlaced', 'SubtaskStarted']) await tenantFeed.waitFor(ofJob(type), `the tenant's ${type}`);
      await sreFeed.waitFor((m) => m.event === 'NodeDrained' && m.data.includes(nodeId), 'the drain on the sre feed');
      await sreFeed.waitFor(ofJob('SubtaskStarted'), "the tenant's SubtaskStarted on the sre feed");
      expect(tenantFeed.messages.every((m) => (JSON.parse(m.data) as { tenantId: string }).tenantId === 'fleet-tenant')).toBe(true);
      expect(tenantFeed.messages.some((m) => m.event === 'NodeDrained' || m.event === 'NodeRegistered')).toBe(false);
    } finally {
      tenantFeed.close();
      sreFeed.close();
    }
  });

  it("gives each projection's lag behind the event stream in /v1/health", async () => {
    const caughtUp = await eventually(
      async () => {
        const streamLast = (await env.bus.jsm.streams.info(env.bus.topology.streams.events)).state.last_seq;
        const detail = (await http('GET', '/v1/health', keys.sre)).body.checks['projection:intake-jobs'].detail;
        return detail.lag === 0 && detail.lastSequence === streamLast ? detail : undefined;
      },
      { message: 'intake-jobs never showed lag 0 at the stream\'s last sequence' },
    );
    expect(caughtUp).toMatchObject({ status: 'running', lag: 0 });
    expect((await http('GET', '/v1/health', keys.sre)).body.checks.nats).not.toHaveProperty('detail.lag');
  });

  it('gives the SLO burn states', async () => {
    const answer = await http('GET', '/v1/slo', keys.sre);
    expect(answer.status).toBe(200);
    expect(answer.body.slos.map((s: { slo: string }) => s.slo)).toEqual(['api-availability', 'job-start-latency', 'metering-freshness']);
    for (const slo of answer.body.slos) {
      expect(slo.status).toMatch(/^(ok|ticket|page)$/);
      expect(slo.alerts.map((a: { name: string }) => a.name)).toEqual(['page-quick', 'page-slow', 'ticket-quick', 'ticket-slow']);
    }
    expect(answer.body.slos[0].alerts[0]).toMatchObject({ severity: 'page', factor: '14.4', shortWindowMs: 300_000, longWindowMs: 3_600_000 });
  });

  it('refuses tenant and finance keys with 403 in the house error shape', async () => {
    for (const key of [keys.tenant, keys.finance]) {
      for (const path of ['/v1/fleet', '/v1/scheduler/queue', '/v1/slo']) {
        const answer = await http('GET', path, key);
        expect([path, answer.status]).toEqual([path, 403]);
        expect(answer.body).toEqual({ error: { code: 'forbidden', message: expect.stringContaining('may not call this endpoint') } });
      }
    }
  });
});
