/**
 * Proves `npm run events` on a real log: `show` prints one aggregate's history, `tail` filters
 * by job/tenant/node/type (readable or JSON) and follows live events, `as-of` folds a job, a
 * node and a tenant's usage up to a stream sequence or a time, and bad input (unknown
 * sequence, unknown aggregate, unknown command, unknown projection to replay) answers clearly
 * with a non-zero exit code and changes nothing; `replay usage` delegates to libs/replay.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { newEventId, type DomainEvent, type EventData, type EventType } from '@fastgpu/contracts';
import { EventPublisher } from '@fastgpu/messaging';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { createRuntime, startServices } from '@fastgpu/platform';
import { runEventsCli } from '../../apps/fastgpu/src/cli/events/cli';
import { meteringService } from '../../apps/metering/src/metering.service';

let env: TestEnvironment;
let publisher: EventPublisher;
const sequences: Record<string, number> = {};
const t = (s: number) => new Date(Date.UTC(2026, 10, 1, 10, 0, s)).toISOString();

async function cli(args: string[], signal?: AbortSignal, onOut?: (line: string) => void) {
  const out: string[] = [];
  const err: string[] = [];
  const openDatabase = async () => ({ db: env.database.db, close: async () => undefined });
  const code = await runEventsCli(args, { bus: env.bus, io: { out: (l) => (out.push(l), onOut?.(l)), err: (l) => err.push(l) }, signal, openDatabase });
  return { code, out, err };
}
async function emit<T extends EventType>(label: string, type: T, data: EventData<T>, tenantId: string | null = 'acme') {
  const id = newEventId();
  sequences[label] = (await publisher.publish(publisher.build(type, data, { id, time: t(Object.keys(sequences).length), tenantId, correlationId: id }) as DomainEvent)).sequence;
}

beforeAll(async () => {
  env = await createTestEnvironment();
  publisher = new EventPublisher(env.bus.js, env.bus.topology, 'test');
  const job = { jobId: 'job-1', tenantId: 'acme' };
  await emit('registered', 'NodeRegistered', { nodeId: 'n1', gpuModel: 'a100', gpuCount: 8, gpuMemoryGb: 80, labels: {}, agentEpoch: 1, registeredAt: t(0) }, null);
  await emit('submitted', 'JobSubmitted', { ...job, projectId: 'p1', gpuModels: ['a100'], gpusPerSubtask: 2, subtaskCount: 1, runtimeMs: 60_000, priorityClass: 'standard', priority: 0, preemptible: false, gang: false, capacityType: 'on-demand', dependsOn: [], submittedAt: t(1) });
  await emit('created', 'SubtaskCreated', { ...job, subtaskId: 'job-1-0', index: 0, gpus: 2, gpuModels: ['a100'], runtimeMs: 60_000 });
  await emit('other-tenant', 'TenantCreated', { tenantId: 'globex', name: 'Globex', billingTimeZone: 'UTC', currency: 'USD', createdAt: t(3) }, 'globex');
  await emit('placed', 'SubtaskPlaced', { ...job, projectId: 'p1', subtaskId: 'job-1-0', attempt: 1, nodeId: 'n1', gpuModel: 'a100', gpus: 2, gpuIndices: [0, 1], leaseEpoch: 1, capacityType: 'on-demand', runtimeMs: 60_000, placedAt: t(4) });
  await emit('started', 'SubtaskStarted', { ...job, subtaskId: 'job-1-0', attempt: 1, nodeId: 'n1', leaseEpoch: 1, startedAt: t(5) });
  await emit('completed', 'SubtaskCompleted', { ...job, subtaskId: 'job-1-0', attempt: 1, nodeId: 'n1', leaseEpoch: 1, exitCode: 0, endedAt: t(65) });
  await emit('usage', 'UsageRecorded', { usageId: 'u1', ...job, projectId: 'p1', subtaskId: 'job-1-0', attempt: 1, gpuModel: 'a100', capacityType: 'on-demand', gpus: 2, startAt: t(5), endAt: t(65), gpuMs: 120_000, interrupted: false, sourceSequences: [6, 7] });
  await emit('job-completed', 'JobCompleted', { ...job, projectId: 'p1', outcome: 'succeeded', subtasksSucceeded: 1, subtasksFailed: 0, subtasksCancelled: 0, gpuMsObserved: 120_000, completedAt: t(66) });
});
afterAll(async () => {
  await env?.cleanup();
});

describe('events CLI', () => {
  it('show prints one aggregate history by id or subject, and says so when there is none', async () => {
    const byId = await cli(['show', 'job-1']);
    expect(byId.code).toBe(0);
    expect(byId.out[0]).toBe('intake.job.job-1, scheduler.job.job-1: 3 event(s)');
    expect(byId.out.slice(1).map((l) => l.split(' ')[2])).toEqual(['JobSubmitted', 'SubtaskCreated', 'JobCompleted']);
    const bySubject = await cli(['show', 'agent.node.n1', '--json']);
    expect(bySubject.out.map((l) => (JSON.parse(l) as { event: { type: string } }).event.type)).toEqual(['NodeRegistered', 'SubtaskStarted', 'SubtaskCompleted']);
    const none = await cli(['show', 'job-nope']);
    expect(none.code).toBe(2);
    expect(none.err[0]).toMatch(/no events on \*\.\*\.job-nope/);
  });

  it('tail filters by job, tenant, node and type without following', async () => {
    const byJob = await cli(['tail', '--from', '1', '--no-follow', '--job', 'job-1']);
    expect(byJob.out).toHaveLength(7);
    expect(byJob.out.every((l) => l.includes('jobId=job-1'))).toBe(true);
    const byTenant = await cli(['tail', '--from', '1', '--no-follow', '--tenant', 'globex', '--json']);
    expect(byTenant.out.map((l) => (JSON.parse(l) as { sequence: number }).sequence)).toEqual([sequences['other-tenant']]);
    const byNodeAndType = await cli(['tail', '--last', '9', '--no-follow', '--node', 'n1', '--type', 'SubtaskStarted,SubtaskCompleted']);
    expect(byNodeAndType.out.map((l) => l.split(' ')[0])).toEqual([`#${sequences.started}`, `#${sequences.completed}`]);
    const badType = await cli(['tail', '--type', 'NoSuchEvent']);
    expect(badType.code).toBe(2);
    expect(badType.err[0]).toMatch(/unknown event type "NoSuchEvent"/);
  });

  it('tail follows new events live until stopped', async () => {
    const controller = new AbortController();
    const seen: string[] = [];
    const running = cli(['tail', '--tenant', 'initech'], controller.signal, (line) => seen.push(line));
    await new Promise((r) => setTimeout(r, 300));
    const id = newEventId();
    await publisher.publish(publisher.build('TenantCreated', { tenantId: 'initech', name: 'Initech', billingTimeZone: 'UTC', currency: 'USD', createdAt: t(70) }, { id, time: t(70), tenantId: 'initech', correlationId: id }));
    await eventually(() => seen.some((l) => l.includes('TenantCreated') && l.includes('tenantId=initech')));
    controller.abort();
    expect((await running).code).toBe(0);
  });

  it('as-of folds a job, a node and tenant usage at a sequence or a time', async () => {
    const midway = await cli(['as-of', String(sequences.started), '--job', 'job-1', '--json']);
    const mid = JSON.parse(midway.out[0]!) as { asOfSequence: number; job: { state: string; subtasks: Record<string, { state: string }> } };
    expect(mid.asOfSequence).toBe(sequences.started);
    expect(mid.job.state).toBe('running');
    expect(mid.job.subtasks['job-1-0']!.state).toBe('running');
    const end = JSON.parse((await cli(['as-of', String(sequences['job-completed']), '--job', 'job-1', '--json'])).out[0]!) as { job: { state: string; outcome: string; gpuMsRecorded: number } };
    expect(end.job).toMatchObject({ state: 'completed', outcome: 'succeeded', gpuMsRecorded: 120_000 });

    const node = JSON.parse((await cli(['as-of', String(sequences.placed), '--node', 'n1', '--json'])).out[0]!) as { node: { state: string; gpusAllocated: number } };
    expect(node.node).toMatchObject({ state: 'up', gpusAllocated: 2 });
    const usageBefore = JSON.parse((await cli(['as-of', String(sequences.completed), '--tenant', 'acme', '--json'])).out[0]!) as { tenant: { gpuMsTotal: number } };
    const usageAfter = JSON.parse((await cli(['as-of', String(sequences.usage), '--tenant', 'acme', '--json'])).out[0]!) as { tenant: { gpuMsTotal: number } };
    expect([usageBefore.tenant.gpuMsTotal, usageAfter.tenant.gpuMsTotal]).toEqual([0, 120_000]);

    // A time maps to the last event stored at or before it: now is after everything.
    const byTime = JSON.parse((await cli(['as-of', new Date(Date.now() + 60_000).toISOString(), '--job', 'job-1', '--json'])).out[0]!) as { asOfSequence: number };
    expect(byTime.asOfSequence).toBeGreaterThanOrEqual(sequences['job-completed']!);
    const beforeLog = JSON.parse((await cli(['as-of', '2000-01-01T00:00:00Z', '--job', 'job-1', '--json'])).out[0]!) as { asOfSequence: number; job: { state: string } };
    expect(beforeLog).toMatchObject({ asOfSequence: 0, job: { state: 'unknown' } });
  });

  it('replay delegates to libs/replay, and refuses an unknown projection without changing anything', async () => {
    const tables = async () => (await sql<{ n: number }>`select count(*)::int as n from information_schema.tables where table_schema = 'public'`.execute(env.database.db)).rows[0]!.n;
    const checkpoints = async () => (await sql<{ n: number }>`select count(*)::int as n from projection_checkpoints`.execute(env.database.db)).rows[0]!.n;
    const before = [await tables(), await checkpoints()];
    const unknown = await cli(['replay', 'no-such-projection', '--swap']);
    expect(unknown.code).toBe(2);
    expect(unknown.err[0]).toMatch(/unknown projection "no-such-projection"; known: .*usage.*Nothing was changed/);
    expect([await tables(), await checkpoints()]).toEqual(before);

    // The live usage projection runs in the metering service; the rebuild is compared with it.
    const runtime = await createRuntime(env.config);
    const metering = await startServices(runtime, [meteringService], { port: 0, logger: false });
    try {
      const usage = await cli(['replay', 'usage']);
      expect(usage.out.join('\n')).toMatch(/usage: compared at sequence \d+: identical/);
      expect(usage.code).toBe(0);
    } finally {
      await metering.close();
      await runtime.close();
    }
    const listed = await cli(['replay', '--list']);
    expect(listed.out.join('\n')).toMatch(/projections: .*usage/);
  });

  it('answers bad input clearly', async () => {
    const beyond = await cli(['as-of', '999999', '--job', 'job-1']);
    expect(beyond.code).toBe(2);
    expect(beyond.err[0]).toMatch(/sequence 999999 is not in the log: .* holds sequences 1\.\.\d+/);
    expect((await cli(['as-of', '5'])).err[0]).toMatch(/exactly one of --job, --node, --tenant/);
    expect((await cli(['as-of', 'yesterday', '--job', 'job-1'])).err[0]).toMatch(/neither a stream sequence nor an ISO-8601 time/);
    expect((await cli(['frobnicate'])).code).toBe(2);
    expect((await cli(['tail', '--bogus'])).err[0]).toMatch(/Unknown option '--bogus'/);
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.out[0]).toMatch(/tail .* show .* as-of .* dlq .* replay/s);
    expect((await cli(['dlq', '--help'])).out[0]).toMatch(/redrive/);
  });
});
