/**
 * Proves one job is one trace from intake to metering on real NATS and Postgres: a job
 * submitted over HTTP with a caller's `traceparent` is placed by the scheduler, run by a
 * simulated node and metered; the in-memory exporter then holds, in that one trace, the
 * intake HTTP SERVER span and spans of the scheduler's and metering's work on the job's
 * events, and the scheduler's placement events carry the trace in their envelope.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import type { DomainEvent } from '@fastgpu/contracts';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { startTelemetry } from '@fastgpu/telemetry';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { MetricsModule } from '@fastgpu/observability';
import { intakeService } from '../../apps/intake/src/intake.service';
import { schedulerService } from '../../apps/scheduler/src/scheduler.service';
import { meteringService } from '../../apps/metering/src/metering.service';
import { startSimulatedFleet, type SimulatedNode } from '../../apps/node-simulator/src/simulated-node';

const exporter = new InMemorySpanExporter();
const telemetry = startTelemetry({ serviceName: 'sre-trace-test', exporter });
const ADMIN = 'test-admin-key-0123456789abcdef';

let env: TestEnvironment;
let runtime: OwnedRuntime;
let started: StartedApp;
let fleet: SimulatedNode[] = [];

async function post(pathname: string, body: unknown, key: string, headers: Record<string, string> = {}): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const response = await fetch(`${started.url}${pathname}`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, ...headers } });
  expect(response.status, await response.clone().text()).toBeLessThan(300);
  return response.json();
}

beforeAll(async () => {
  env = await createTestEnvironment({ adminKey: ADMIN, simulatorSpeed: 0.001, heartbeatIntervalMs: 200 });
  runtime = await createRuntime(env.config);
  started = await startServices(runtime, [intakeService, schedulerService, meteringService, { name: 'intake', module: MetricsModule }], { port: 0, logger: false });
  fleet = await startSimulatedFleet(runtime.bus, 'a100:8x1', { speed: 0.001, heartbeatIntervalMs: 200 });
});
afterAll(async () => {
  for (const node of fleet) await node.stop();
  await started?.close();
  await runtime?.close();
  await env?.cleanup();
  await telemetry.shutdown();
});

describe('tracing', () => {
  it('follows one job from the HTTP request through the scheduler to metering in one trace', async () => {
    await post('/v1/tenants', { tenantId: 'acme', name: 'Acme' }, ADMIN);
    const key = (await post('/v1/tenants/acme/api-keys', { role: 'tenant' }, ADMIN)).secret as string;
    const traceId = 'a3ce929d0e0e47364bf92f3577b34da6';
    const job = await post('/v1/jobs', { projectId: 'p1', gpuModels: ['a100'], gpusPerSubtask: 2, subtaskCount: 1, runtimeSeconds: 60 }, key, { traceparent: `00-${traceId}-1111111111111111-01`, 'idempotency-key': 'trace-1' });

    // Metering records the usage once the node reports completion.
    const lastOn = async <T extends DomainEvent>(subject: string) => (await env.bus.jsm.streams.getMessage(env.bus.topology.streams.events, { last_by_subj: subject }))?.json<T>();
    const usage = await eventually(() => lastOn<DomainEvent<'UsageRecorded'>>(env.bus.topology.subjects.usage('acme')), { timeoutMs: 30_000, message: 'no UsageRecorded for the job' });
    expect(usage.data.jobId).toBe(job.jobId);
    // Usage continues the job's trace, so billing's handling of it is in the same trace.
    expect(usage.traceparent).toContain(traceId);

    const placed = await lastOn(env.bus.topology.subjects.schedulerNode(fleet[0]!.spec.nodeId));
    expect(placed?.type).toBe('SubtaskPlaced');
    expect(placed?.traceparent).toContain(traceId);
    // The command carried the trace to the node, whose report continues it.
    const reported = await lastOn(env.bus.topology.subjects.agentNode(fleet[0]!.spec.nodeId));
    expect(reported?.type).toBe('SubtaskCompleted');
    expect(reported?.traceparent).toContain(traceId);

    const spans = await eventually(() => {
      const inTrace = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
      return inTrace.some((s) => /^usage/.test(s.name)) ? inTrace : undefined;
    }, { message: `no metering span in the trace; spans seen: ${[...new Set(exporter.getFinishedSpans().map((s) => s.name))].join(', ')}` });
    const names = new Set(spans.map((s) => s.name));
    expect([...names]).toContain('http.POST /v1/jobs');
    expect([...names].some((n) => n.startsWith('intake'))).toBe(true);
    expect([...names].some((n) => n.startsWith('usage'))).toBe(true);
    const server = spans.find((s) => s.name === 'http.POST /v1/jobs')!;
    expect(server.parentSpanContext?.spanId).toBe('1111111111111111');
    console.log(`spans in the job's trace: ${[...names].sort().join(', ')}`);
  });
});
