/**
 * Proves that a drain reason no store can hold never reaches the log, and that SLA reports keep
 * working, on real NATS and Postgres with the scheduler (which takes drains) and reliability
 * (whose SLA projection stores the reason): `POST /v1/nodes/{id}/drain` with U+0000, an escape
 * sequence or a lone surrogate in `reason` answers 400 with `field: reason` in the one error shape
 * and publishes nothing; a reason with line breaks and characters beyond the BMP is accepted and
 * the SLA projection applies it, reaching the stream's last sequence; and even a `NodeDrained`
 * with U+0000 put on the bus directly (past every edge) does not stop the projection.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeEvent, Headers, newEventId } from '@fastgpu/contracts';
import { EventPublisher, lastSequence } from '@fastgpu/messaging';
import { eventually } from '@fastgpu/testing';
import { headers as natsHeaders } from '@nats-io/transport-node';
import { schedulerService } from '../../apps/scheduler/src/scheduler.service';
import { SchedulerRunner } from '../../apps/scheduler/src/scheduler.runner';
import { reliabilityService } from '../../apps/reliability/src/reliability.service';
import { isErrorShape, startEdge, type Edge } from './harness';

let edge: Edge;
let sre: string;
const SLA_PROJECTION = 'reliability-sla';

async function slaCheckpoint(): Promise<number> {
  const row = await edge.env.database.db.selectFrom('projection_checkpoints').select(['last_sequence']).where('projection', '=', SLA_PROJECTION).executeTakeFirst();
  return Number(row?.last_sequence ?? 0);
}

async function slaProjectionReachesTheEnd(): Promise<void> {
  const last = await lastSequence(edge.env.bus, edge.env.bus.topology.streams.events);
  await eventually(async () => (await slaCheckpoint()) >= last, { timeoutMs: 10_000, message: `SLA projection did not reach sequence ${last}` });
  const health = await edge.http('GET', '/v1/health', sre);
  expect(health.body.checks['reliability-sla-projection']).toMatchObject({ ok: true });
}

beforeAll(async () => {
  edge = await startEdge([schedulerService, reliabilityService]);
  sre = await edge.directKey('sre-1', 'sre', null);
  const publisher = new EventPublisher(edge.env.bus.js, edge.env.bus.topology, 'test/agent');
  const id = newEventId();
  const at = new Date().toISOString();
  await publisher.publish(publisher.build('NodeRegistered', { nodeId: 'n1', gpuModel: 'a100', gpuCount: 8, gpuMemoryGb: 80, labels: {}, agentEpoch: 1, registeredAt: at }, { id, time: at, tenantId: null, correlationId: id }));
  await eventually(() => edge.started.app.get(SchedulerRunner).engine.state.nodes.get('n1')?.status === 'ready', { message: 'node not registered' });
});
afterAll(async () => edge?.close());

describe('drain reason', () => {
  it('refuses a reason no store can hold with 400 before publishing anything', async () => {
    const before = await lastSequence(edge.env.bus, edge.env.bus.topology.streams.events);
    for (const reason of ['maint\u0000enance', '\u001b[2Jclear', 'half \ud800 a pair', '\u0085next line']) {
      const answer = await edge.http('POST', '/v1/nodes/n1/drain', sre, { reason });
      expect([JSON.stringify(reason), answer.status, answer.body?.error?.field]).toEqual([JSON.stringify(reason), 400, 'reason']);
      expect(isErrorShape(answer.body)).toBe(true);
    }
    expect(await lastSequence(edge.env.bus, edge.env.bus.topology.streams.events)).toBe(before);
    expect(edge.started.app.get(SchedulerRunner).engine.state.nodes.get('n1')?.status).toBe('ready');
    await slaProjectionReachesTheEnd();
  });

  it('accepts line breaks and every plane, and the SLA projection applies the drain', async () => {
    const reason = 'GPU 3: ECC errors\r\n\tswapping the board 🔧 — 技術者';
    const drained = await edge.http('POST', '/v1/nodes/n1/drain', sre, { reason });
    expect(drained.status).toBe(202);
    await slaProjectionReachesTheEnd();
    const incidents = await edge.env.database.db.selectFrom('reliability_sla_incidents').select(['reason']).execute();
    expect(incidents.map((i) => i.reason)).toContain(reason);
    const reports = await edge.http('GET', '/v1/sla-reports', sre);
    expect(reports.status).toBe(200);
    expect((await edge.http('POST', '/v1/nodes/n1/undrain', sre)).status).toBe(202);
  });

  it('keeps running past a NodeDrained with U+0000 published on the bus directly', async () => {
    const publisher = new EventPublisher(edge.env.bus.js, edge.env.bus.topology, 'test/rogue');
    const id = newEventId();
    const at = new Date().toISOString();
    const clean = publisher.build('NodeDrained', { nodeId: 'n1', reason: 'PLACEHOLDER', drainedAt: at, automatic: false }, { id, time: at, tenantId: null, correlationId: id });
    const rogue = new TextEncoder().encode(new TextDecoder().decode(encodeEvent(clean)).replace('PLACEHOLDER', 'rogue\\u0000reason'));
    const h = natsHeaders();
    h.set(Headers.eventType, 'NodeDrained');
    await edge.env.bus.js.publish(clean.subject, rogue, { msgID: id, headers: h });
    await slaProjectionReachesTheEnd();
    const reports = await edge.http('GET', '/v1/sla-reports', sre);
    expect(reports.status).toBe(200);
  });
});
