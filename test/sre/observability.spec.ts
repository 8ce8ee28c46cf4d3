/**
 * Proves the observability lib on real NATS and Postgres: `/metrics` shows a durable
 * consumer's lag (a node's command consumer, as the simulator and agents run it) growing while
 * it is stopped and falling to zero when it resumes, and dead letters per consumer (a
 * projection runner that meets an undecodable event); HTTP
 * requests become SERVER spans that continue the caller's `traceparent`, the events a handler
 * publishes carry that same trace, and their latency lands in the histogram under the route
 * template; log lines carry trace and span ids; queue depth, GPUs, placements and GPU
 * utilisation follow the live log and heartbeats.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Controller, Inject, Module, Post, Param } from '@nestjs/common';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { Headers, newEventId, type NodeCommand } from '@fastgpu/contracts';
import { EventPublisher, ProjectionRunner } from '@fastgpu/messaging';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { RUNTIME, publisherFor, type Runtime } from '@fastgpu/runtime';
import { startTelemetry } from '@fastgpu/telemetry';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { JsonLogger, MetricsModule, NestJsonLogger, evolveFleet, fleetFigures, initialFleetState } from '@fastgpu/observability';
import { SimulatedNode } from '../../apps/node-simulator/src/simulated-node';

const exporter = new InMemorySpanExporter();
const telemetry = startTelemetry({ serviceName: 'sre-observability-test', exporter });
const logLines: string[] = [];
const logger = new JsonLogger('test', { sink: (line) => logLines.push(line) });

@Controller()
class ProbeController {
  constructor(@Inject(RUNTIME) private readonly runtime: Runtime) {}
  @Post('probe/:tenantId')
  async probe(@Param('tenantId') tenantId: string): Promise<{ sequence: number }> {
    const publisher = publisherFor(this.runtime, 'probe');
    const id = newEventId();
    logger.info('probe publishing', { tenantId });
    const published = await publisher.publish(
      publisher.build('TenantCreated', { tenantId, name: tenantId, billingTimeZone: 'UTC', currency: 'USD', createdAt: '2026-11-01T00:00:00.000Z' }, { id, time: '2026-11-01T00:00:00.000Z', tenantId, correlationId: id }),
    );
    return { sequence: published.sequence };
  }
}
@Module({ imports: [MetricsModule], controllers: [ProbeController] })
class ProbeModule {}

let env: TestEnvironment;
let runtime: OwnedRuntime;
let started: StartedApp;

async function scrape(): Promise<string> {
  const response = await fetch(`${started.url}/metrics`);
  expect(response.status).toBe(200);
  return response.text();
}
function gauge(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}
/** A command the node acknowledges and that changes nothing: detaching a lease it does not hold. */
async function sendNoOpCommand(nodeId: string): Promise<void> {
  const command: NodeCommand = { kind: 'DetachLease', commandId: newEventId(), leaseId: `no-lease-${newEventId()}`, leaseEpoch: 1, reason: 'lag probe', issuedAt: new Date().toISOString() };
  await env.bus.js.publish(env.bus.topology.subjects.command(nodeId), JSON.stringify(command));
}

beforeAll(async () => {
  env = await createTestEnvironment();
  runtime = await createRuntime(env.config);
  started = await startServices(runtime, [{ name: 'intake', module: ProbeModule }], { port: 0, logger: false });
});
afterAll(async () => {
  await started?.close();
  await runtime?.close();
  await env?.cleanup();
  await telemetry.shutdown();
});

describe('/metrics', () => {
  it('shows a durable consumer lag that grows while it is stopped and falls when it resumes', async () => {
    const stream = env.bus.topology.streams.commands;
    const durable = 'node-lag-node';
    const node = new SimulatedNode(env.bus, { nodeId: 'lag-node', gpuModel: 'lag-gpu', gpuCount: 1, gpuMemoryGb: 1 }, { heartbeatIntervalMs: 60_000 });
    await node.start();
    await sendNoOpCommand('lag-node');
    await eventually(async () => gauge(await scrape(), 'fastgpu_consumer_pending_messages', { stream, durable }) === 0);
    await node.stop();

    for (let i = 0; i < 7; i++) await sendNoOpCommand('lag-node');
    const whileStopped = gauge(await scrape(), 'fastgpu_consumer_pending_messages', { stream, durable });
    expect(whileStopped).toBe(7);
    await sendNoOpCommand('lag-node');
    expect(gauge(await scrape(), 'fastgpu_consumer_pending_messages', { stream, durable })).toBe(8);

    await node.start();
    await eventually(async () => gauge(await scrape(), 'fastgpu_consumer_pending_messages', { stream, durable }) === 0, { message: 'lag did not fall after resume' });
    await eventually(async () => gauge(await scrape(), 'fastgpu_consumer_ack_pending_messages', { stream, durable }) === 0);
    await node.stop();
    const text = await scrape();
    expect(gauge(text, 'fastgpu_stream_last_sequence', { stream })).toBeGreaterThanOrEqual(9);
    await eventually(async () => (gauge(await scrape(), 'fastgpu_events_published_total', { type: 'NodeRegistered' }) ?? 0) >= 2, { message: 'the node registrations were not counted' });
  });

  it('counts dead letters per consumer', async () => {
    await env.bus.js.publish(env.bus.topology.subjects.tenant('garbage'), new TextEncoder().encode('{oops'), { msgID: 'garbage-metrics' });
    const runner = new ProjectionRunner(env.bus, env.database.db, { name: 'metrics-test-tenants', types: new Set(['TenantCreated']), apply: async () => undefined });
    await runner.start();
    try {
      await eventually(async () => gauge(await scrape(), 'fastgpu_dead_letters', { consumer: 'metrics-test-tenants' }) === 1);
    } finally {
      await runner.stop();
    }
  });
});

describe('fleet gauges from the live log and heartbeats', () => {
  it('shows queue depth per tenant and model, GPUs, placements and GPU utilisation', async () => {
    const publisher = new EventPublisher(env.bus.js, env.bus.topology, 'test');
    const at = '2026-11-01T00:00:00.000Z';
    const meta = (tenantId: string | null) => {
      const id = newEventId();
      return { id, time: at, tenantId, correlationId: id };
    };
    await publisher.publish(publisher.build('NodeRegistered', { nodeId: 'gauge-node', gpuModel: 'h100', gpuCount: 8, gpuMemoryGb: 80, labels: {}, agentEpoch: 1, registeredAt: at }, meta(null)));
    for (const index of [0, 1, 2]) {
      await publisher.publish(publisher.build('SubtaskCreated', { jobId: 'gauge-job', tenantId: 'acme', subtaskId: `gauge-job-${index}`, index, gpus: 2, gpuModels: ['h100'], runtimeMs: 1000 }, meta('acme')));
    }
    await publisher.publish(publisher.build('SubtaskPlaced', { jobId: 'gauge-job', tenantId: 'acme', projectId: 'p', subtaskId: 'gauge-job-0', attempt: 1, nodeId: 'gauge-node', gpuModel: 'h100', gpus: 2, gpuIndices: [0, 1], leaseEpoch: 1, capacityType: 'on-demand', runtimeMs: 1000, placedAt: at }, meta('acme')));
    const beat = { nodeId: 'gauge-node', agentEpoch: 1, sentAt: new Date().toISOString(), running: [], gpus: [0, 1].map((index) => ({ index, utilizationPercent: index === 0 ? 75 : 0, memoryUsedMb: 0, temperatureC: 40, eccErrors: 0, xidErrors: 0 })) };
    await eventually(async () => {
      env.bus.nc.publish(env.bus.topology.subjects.heartbeat('gauge-node'), JSON.stringify(beat));
      const text = await scrape();
      return (
        gauge(text, 'fastgpu_queue_depth', { tenant: 'acme', gpu_model: 'h100', kind: 'subtask' }) === 2 &&
        gauge(text, 'fastgpu_gpus', { gpu_model: 'h100' }) === 8 &&
        gauge(text, 'fastgpu_gpus_allocated', { gpu_model: 'h100' }) === 2 &&
        gauge(text, 'fastgpu_gpu_utilization_ratio', { node: 'gauge-node', gpu_model: 'h100', gpu: '0' }) === 0.75 &&
        (gauge(text, 'fastgpu_placements_total', {}) ?? 0) >= 1
      );
    }, { message: 'fleet gauges did not show the published state' });
  });
});

describe('HTTP tracing', () => {
  it('continues the caller trace in a SERVER span, carries it into published events and records latency', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const response = await fetch(`${started.url}/probe/traced`, { method: 'POST', headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` } });
    expect(response.status).toBe(201);
    const { sequence } = (await response.json()) as { sequence: number };

    const server = await eventually(() => exporter.getFinishedSpans().find((s) => s.name === 'http.POST /probe/:tenantId'));
    expect(server.spanContext().traceId).toBe(traceId);
    expect(server.parentSpanContext?.spanId).toBe('00f067aa0ba902b7');
    expect(server.kind).toBe(1); // SpanKind.SERVER

    const stored = await env.bus.jsm.streams.getMessage(env.bus.topology.streams.events, { seq: sequence });
    expect(stored?.header.get(Headers.traceparent)).toContain(traceId);
    const body = stored!.json<{ traceparent?: string }>();
    expect(body.traceparent).toContain(traceId);

    const line = logLines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'probe publishing');
    expect(line?.trace_id).toBe(traceId);
    expect(line?.span_id).toBe(server.spanContext().spanId);

    const text = await scrape();
    expect(gauge(text, 'fastgpu_http_request_duration_seconds_count', { route: '/probe/:tenantId', method: 'POST', status_code: '201' })).toBe(1);
  });
});

describe('Nest logger', () => {
  it('writes Nest log calls as JSON lines with the context', () => {
    const lines: string[] = [];
    const nest = new NestJsonLogger('svc', { sink: (l) => lines.push(l) });
    nest.log('listening', 'NestApplication');
    nest.error('boom', 'Error: boom\n    at x', 'Handler');
    nest.debug('hidden');
    const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records).toHaveLength(2);
    expect(records[0]).toMatchObject({ level: 'info', service: 'svc', msg: 'listening', context: 'NestApplication' });
    expect(records[1]).toMatchObject({ level: 'error', msg: 'boom', stack: 'Error: boom\n    at x' });
  });
});

describe('fleet fold', () => {
  it('counts queued sub-tasks per tenant and preferred model, and allocated GPUs once placed', () => {
    const state = initialFleetState();
    const base = { specversion: '1.0', source: 't', subject: 's', time: '2026-11-01T00:00:00.000Z', datacontenttype: 'application/json', tenantid: 'acme', correlationid: 'c', schemaversion: 1 } as const;
    const created = (subtaskId: string) => ({ ...base, id: subtaskId, type: 'SubtaskCreated' as const, data: { jobId: 'j1', tenantId: 'acme', subtaskId, index: 0, gpus: 2, gpuModels: ['h100', 'a100'], runtimeMs: 1000 } });
    evolveFleet(state, created('s1'));
    evolveFleet(state, created('s2'));
    evolveFleet(state, { ...base, id: 'n1', type: 'NodeRegistered', data: { nodeId: 'n1', gpuModel: 'a100', gpuCount: 8, gpuMemoryGb: 80, labels: {}, agentEpoch: 1, registeredAt: base.time } });
    expect(fleetFigures(state).queueDepth).toEqual([{ tenantId: 'acme', gpuModel: 'h100', kind: 'subtask', count: 2 }]);
    evolveFleet(state, { ...base, id: 'p1', type: 'SubtaskPlaced', data: { jobId: 'j1', tenantId: 'acme', projectId: 'p', subtaskId: 's1', attempt: 1, nodeId: 'n1', gpuModel: 'a100', gpus: 2, gpuIndices: [0, 1], leaseEpoch: 1, capacityType: 'on-demand', runtimeMs: 1000, placedAt: base.time } });
    const figures = fleetFigures(state);
    expect(figures.queueDepth).toEqual([{ tenantId: 'acme', gpuModel: 'h100', kind: 'subtask', count: 1 }]);
    expect(figures.gpus).toEqual([{ gpuModel: 'a100', total: 8, allocated: 2 }]);
    evolveFleet(state, { ...base, id: 'jc', type: 'JobCompleted', data: { jobId: 'j1', tenantId: 'acme', projectId: 'p', outcome: 'succeeded', subtasksSucceeded: 2, subtasksFailed: 0, subtasksCancelled: 0, gpuMsObserved: 4000, completedAt: base.time } });
    expect(fleetFigures(state)).toEqual({ queueDepth: [], gpus: [{ gpuModel: 'a100', total: 8, allocated: 0 }] });
  });
});
