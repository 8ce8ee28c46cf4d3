/**
 * Proves the gRPC gateway (GrpcModule in the Nest app's lifecycle) on real NATS and Postgres with a generic client that knows nothing
 * but the server address: it discovers the services by server reflection, builds its stubs
 * from the returned descriptors, submits a job (the same events as POST /v1/jobs, idempotent
 * by key, the caller's trace continued; a Workload message round-trips, secrets by name only), watches it as a stream of its events until it
 * completes, allocates, reads and releases a lease, and lists invoices. Bad arguments get
 * INVALID_ARGUMENT naming the field; missing keys UNAUTHENTICATED; other tenants' jobs NOT_FOUND.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- a generic client knows message shapes only at run time, from reflection */
import 'reflect-metadata';
import { createRequire } from 'node:module';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { newEventId, type DomainEvent } from '@fastgpu/contracts';
import { EventPublisher, lastSequence } from '@fastgpu/messaging';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { startTelemetry } from '@fastgpu/telemetry';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { ErrorTrailers } from '../../libs/grpc/src';
import { intakeService } from '../../apps/intake/src/intake.service';
import { billingService } from '../../apps/billing/src/billing.service';

const exporter = new InMemorySpanExporter();
const telemetry = startTelemetry({ serviceName: 'sre-grpc-test', exporter });
const ADMIN = 'test-admin-key-0123456789abcdef';

let env: TestEnvironment;
let runtime: OwnedRuntime;
let started: StartedApp;
let acmeKey: string;
let globexKey: string;
type AnyClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;
let intake: AnyClient;
let billing: AnyClient;
let discovered: string[];

// ------------------------------------------------------------------ a generic reflection client
const require = createRequire(import.meta.url);
const reflectionProto = path.join(path.dirname(require.resolve('@grpc/reflection/package.json')), 'build/proto/grpc/reflection/v1/reflection.proto');

function reflectionCall(address: string, requests: object[]): Promise<Array<Record<string, any>>> {
  const def = protoLoader.loadSync(reflectionProto, { keepCase: false, longs: Number, defaults: true, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def) as any;
  const client = new pkg.grpc.reflection.v1.ServerReflection(address, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => {
    const responses: Array<Record<string, any>> = [];
    const call = client.ServerReflectionInfo();
    call.on('data', (r: Record<string, any>) => {
      responses.push(r);
      if (responses.length === requests.length) call.end();
    });
    call.on('error', reject);
    call.on('end', () => {
      client.close();
      resolve(responses);
    });
    for (const r of requests) call.write(r);
  });
}

/** FileDescriptorSet = repeated FileDescriptorProto file = 1: each one length-delimited under tag 0x0a. */
function descriptorSet(files: Buffer[]): Buffer {
  const parts: Buffer[] = [];
  for (const file of files) {
    const len: number[] = [];
    let n = file.length;
    while (n > 0x7f) {
      len.push((n & 0x7f) | 0x80);
      n >>>= 7;
    }
    len.push(n);
    parts.push(Buffer.from([0x0a, ...len]), file);
  }
  return Buffer.concat(parts);
}

async function reflectClients(address: string): Promise<{ services: string[]; client(name: string): AnyClient }> {
  const [list] = await reflectionCall(address, [{ listServices: '' }]);
  const services = (list!.listServicesResponse.service as Array<{ name: string }>).map((s) => s.name);
  const wanted = services.filter((s) => s.startsWith('fastgpu.'));
  const responses = await reflectionCall(address, wanted.map((symbol) => ({ fileContainingSymbol: symbol })));
  const files = new Map<string, Buffer>();
  for (const r of responses) for (const f of r.fileDescriptorResponse.fileDescriptorProto as Buffer[]) files.set(f.toString('base64'), f);
  const definition = protoLoader.loadFileDescriptorSetFromBuffer(descriptorSet([...files.values()]), { keepCase: false, longs: Number, defaults: false, arrays: true, oneofs: true });
  const loaded = grpc.loadPackageDefinition(definition) as any;
  return {
    services,
    client: (name) => {
      const Ctor = name.split('.').reduce((o, k) => o[k], loaded) as grpc.ServiceClientConstructor;
      return new Ctor(address, grpc.credentials.createInsecure()) as unknown as AnyClient;
    },
  };
}

function meta(key?: string, extra: Record<string, string> = {}): grpc.Metadata {
  const m = new grpc.Metadata();
  if (key) m.set('authorization', `Bearer ${key}`);
  for (const [k, v] of Object.entries(extra)) m.set(k, v);
  return m;
}
function call<T = Record<string, any>>(client: AnyClient, method: string, request: object, metadata: grpc.Metadata): Promise<T> {
  return new Promise((resolve, reject) => client[method]!(request, metadata, (error: grpc.ServiceError | null, response: T) => (error ? reject(error) : resolve(response))));
}
async function rejection(promise: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await promise;
  } catch (error) {
    return error as grpc.ServiceError;
  }
  throw new Error('expected the call to fail');
}

async function http(pathname: string, body: unknown, key: string, headers: Record<string, string> = {}): Promise<any> {
  const response = await fetch(`${started.url}${pathname}`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, ...headers } });
  expect(response.status, await response.clone().text()).toBeLessThan(300);
  return response.json();
}
async function jobEvents(jobId: string): Promise<DomainEvent[]> {
  const events: DomainEvent[] = [];
  const consumer = await env.bus.js.consumers.get(env.bus.topology.streams.events, { filter_subjects: env.bus.topology.subjects.job(jobId) });
  for (;;) {
    const m = await consumer.next({ expires: 1000 });
    if (!m) break;
    events.push(m.json<DomainEvent>());
    if (m.info.pending === 0) break;
  }
  return events;
}

const jobRequest = { projectId: 'render', gpuModels: ['a100'], gpusPerSubtask: 2, subtaskCount: 3, runtimeSeconds: 600, priorityClass: 'standard' };

beforeAll(async () => {
  env = await createTestEnvironment({ adminKey: ADMIN });
  runtime = await createRuntime(env.config);
  // intake and billing declare their gRPC ports; the platform serves them on one server.
  started = await startServices(runtime, [intakeService, billingService], { port: 0, logger: false });
  await http('/v1/tenants', { tenantId: 'acme', name: 'Acme' }, ADMIN);
  await http('/v1/tenants', { tenantId: 'globex', name: 'Globex' }, ADMIN);
  acmeKey = (await http('/v1/tenants/acme/api-keys', { role: 'tenant' }, ADMIN)).secret;
  globexKey = (await http('/v1/tenants/globex/api-keys', { role: 'tenant' }, ADMIN)).secret;
  const reflected = await reflectClients(`127.0.0.1:${started.grpcPort}`);
  discovered = reflected.services;
  intake = reflected.client('fastgpu.intake.v1.IntakeService');
  billing = reflected.client('fastgpu.billing.v1.BillingService');
});
afterAll(async () => {
  intake?.close();
  billing?.close();
  await started?.close();
  await runtime?.close();
  await env?.cleanup();
  await telemetry.shutdown();
});

describe('gRPC gateway', () => {
  it('is discovered by reflection', () => {
    expect(discovered).toEqual(expect.arrayContaining(['fastgpu.intake.v1.IntakeService', 'fastgpu.billing.v1.BillingService']));
  });

  it('submits a job with the same events as POST /v1/jobs, idempotently, continuing the caller trace', async () => {
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const job = await call(intake, 'SubmitJob', { ...jobRequest, idempotencyKey: 'grpc-1' }, meta(acmeKey, { traceparent: `00-${traceId}-b7ad6b7169203331-01` }));
    expect(job).toMatchObject({ tenantId: 'acme', projectId: 'render', state: expect.any(String), created: true });
    expect(job.subtasks).toHaveLength(3);
    const retry = await call(intake, 'SubmitJob', { ...jobRequest, idempotencyKey: 'grpc-1' }, meta(acmeKey));
    expect(retry.jobId).toBe(job.jobId);
    expect(retry.created).toBeFalsy();

    const viaHttp = await http('/v1/jobs', jobRequest, acmeKey, { 'idempotency-key': 'http-1' });
    const strip = (e: DomainEvent) => {
      const { jobId: _j, subtaskId: _s, submittedAt: _t, idempotencyKey: _k, ...rest } = e.data as Record<string, unknown>;
      return { type: e.type, subject: e.subject.replace(/[^.]+$/, '<id>'), data: rest };
    };
    const grpcEvents = await jobEvents(job.jobId);
    const httpEvents = await jobEvents(viaHttp.jobId);
    expect(grpcEvents.map((e) => e.type)).toEqual(['JobSubmitted', 'SubtaskCreated', 'SubtaskCreated', 'SubtaskCreated']);
    expect(grpcEvents.map(strip)).toEqual(httpEvents.map(strip));
    expect(grpcEvents[0]!.traceparent).toContain(traceId);
    expect(exporter.getFinishedSpans().find((s) => s.name === 'grpc.IntakeService.SubmitJob' && s.spanContext().traceId === traceId)).toBeDefined();

    const got = await call(intake, 'GetJob', { jobId: job.jobId }, meta(acmeKey));
    expect(JSON.parse(got.specJson)).toMatchObject({ gpusPerSubtask: 2 });
  });

  it('submits a job with a Workload message: every field round-trips into the spec and JobSubmitted (the timeout as ms), secrets by name only', async () => {
    const workload = {
      command: ['python3', 'train.py', '--epochs', '3'],
      env: { MODE: 'fast', EMPTY_OK: 'x' },
      secrets: [{ env: 'HF_TOKEN', secret: 'hugging-face' }],
      workingDirectory: 'src',
      timeoutSeconds: 300,
      inputs: ['a.txt', 'b.txt', 'c.txt', 'd.txt'],
      inputsPerSubtask: 2,
      resultPath: 'out/result.jsonl',
      resultBytesMax: 5_000_000,
      aggregate: 'jsonl',
    };
    const { subtaskCount: _count, ...shape } = jobRequest;
    // Loaded from reflected descriptors, a map is its wire form: repeated {key, value} entries.
    const wire = (w: typeof workload) => ({ ...w, env: Object.entries(w.env).map(([key, value]) => ({ key, value })) });
    const job = await call(intake, 'SubmitJob', { ...shape, workload: wire(workload), idempotencyKey: 'grpc-workload' }, meta(acmeKey));
    expect(job.subtasks).toHaveLength(2); // 4 inputs, 2 per sub-task
    const expected = { command: workload.command, env: workload.env, secrets: workload.secrets, workingDirectory: 'src', timeoutMs: 300_000, inputs: workload.inputs, inputsPerSubtask: 2, resultPath: 'out/result.jsonl', resultBytesMax: 5_000_000, aggregate: 'jsonl' };
    expect(JSON.parse(job.specJson).workload).toMatchObject(expected);
    const got = await call(intake, 'GetJob', { jobId: job.jobId }, meta(acmeKey));
    expect(JSON.parse(got.specJson).workload).toEqual(JSON.parse(job.specJson).workload);
    const [submitted] = await jobEvents(job.jobId);
    expect(submitted!.type).toBe('JobSubmitted');
    expect((submitted!.data as { workload?: unknown }).workload).toMatchObject(expected);
    // A secret is a reference: a value smuggled into it is not taken, stored or answered.
    const smuggled = await call(intake, 'SubmitJob', { ...shape, workload: { ...wire(workload), secrets: [{ env: 'HF_TOKEN', secret: 'hugging-face', value: 'hf_do-not-echo' }] }, idempotencyKey: 'grpc-workload-2' }, meta(acmeKey));
    expect(JSON.parse(smuggled.specJson).workload.secrets).toEqual([{ env: 'HF_TOKEN', secret: 'hugging-face' }]);
    expect(JSON.stringify(smuggled)).not.toContain('hf_do-not-echo');
    expect(JSON.stringify(await jobEvents(smuggled.jobId))).not.toContain('hf_do-not-echo');
  });

  it('watches a job as a stream of its events until it completes', async () => {
    const job = await call(intake, 'SubmitJob', { ...jobRequest, subtaskCount: 1, idempotencyKey: 'watch-1' }, meta(acmeKey));
    const received: Array<{ type: string; sequence: number; dataJson: string }> = [];
    const stream = (intake as any).WatchJob({ jobId: job.jobId }, meta(acmeKey)) as grpc.ClientReadableStream<{ type: string; sequence: number; dataJson: string }>;
    const ended = new Promise<void>((resolve, reject) => {
      stream.on('data', (e) => received.push(e));
      stream.on('end', resolve);
      stream.on('error', reject);
    });
    await eventually(() => received.length === 2, { message: 'history not streamed' });

    // What the scheduler and the node would publish next, on their own subjects.
    const publisher = new EventPublisher(env.bus.js, env.bus.topology, 'test');
    const at = new Date().toISOString();
    const base = { jobId: job.jobId, tenantId: 'acme', subtaskId: `${job.jobId}-0`, attempt: 1, nodeId: 'n1', leaseEpoch: 1 };
    const publish = (type: any, data: any) => {
      const id = newEventId();
      return publisher.publish(publisher.build(type, data, { id, time: at, tenantId: 'acme', correlationId: job.jobId }));
    };
    await publish('TenantCreated', { tenantId: 'noise', name: 'noise', billingTimeZone: 'UTC', currency: 'USD', createdAt: at });
    await publish('SubtaskPlaced', { ...base, projectId: 'render', gpuModel: 'a100', gpus: 2, gpuIndices: [0, 1], capacityType: 'on-demand', runtimeMs: 600_000, placedAt: at });
    await publish('SubtaskStarted', { ...base, startedAt: at });
    await publish('SubtaskCompleted', { ...base, exitCode: 0, endedAt: at });
    await publish('JobCompleted', { jobId: job.jobId, tenantId: 'acme', projectId: 'render', outcome: 'succeeded', subtasksSucceeded: 1, subtasksFailed: 0, subtasksCancelled: 0, gpuMsObserved: 0, completedAt: at });
    await ended;
    expect(received.map((e) => e.type)).toEqual(['JobSubmitted', 'SubtaskCreated', 'SubtaskPlaced', 'SubtaskStarted', 'SubtaskCompleted', 'JobCompleted']);
    expect(received.map((e) => e.sequence)).toEqual([...received.map((e) => e.sequence)].sort((a, b) => a - b));
    expect(JSON.parse(received[2]!.dataJson)).toMatchObject({ nodeId: 'n1' });

    // Resume from a sequence: only what follows.
    const resumed: string[] = [];
    const again = (intake as any).WatchJob({ jobId: job.jobId, fromSequence: received[4]!.sequence }, meta(acmeKey)) as grpc.ClientReadableStream<{ type: string }>;
    await new Promise<void>((resolve, reject) => {
      again.on('data', (e) => resumed.push(e.type));
      again.on('end', resolve);
      again.on('error', reject);
    });
    expect(resumed).toEqual(['SubtaskCompleted', 'JobCompleted']);
  });

  it('answers bad arguments with INVALID_ARGUMENT naming the field, and auth like HTTP', async () => {
    const before = await lastSequence(env.bus, env.bus.topology.streams.events);
    const missing = await rejection(call(intake, 'SubmitJob', { ...jobRequest, gpusPerSubtask: 0 }, meta(acmeKey)));
    expect(missing.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(missing.metadata.get(ErrorTrailers.field)).toEqual(['gpusPerSubtask']);
    const noModels = await rejection(call(intake, 'SubmitJob', { ...jobRequest, gpuModels: [] }, meta(acmeKey)));
    expect(noModels.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(noModels.metadata.get(ErrorTrailers.field)).toEqual(['gpuModels']);
    expect(noModels.details).toMatch(/^gpuModels: /);
    const badClass = await rejection(call(intake, 'SubmitJob', { ...jobRequest, priorityClass: 'urgent' }, meta(acmeKey)));
    expect([badClass.code, badClass.metadata.get(ErrorTrailers.field)[0]]).toEqual([grpc.status.INVALID_ARGUMENT, 'priorityClass']);
    const badLease = await rejection(call(intake, 'AllocateLease', { projectId: 'p', gpuModels: ['a100'], gpus: 500 }, meta(acmeKey)));
    expect([badLease.code, badLease.metadata.get(ErrorTrailers.field)[0]]).toEqual([grpc.status.INVALID_ARGUMENT, 'gpus']);
    expect(await lastSequence(env.bus, env.bus.topology.streams.events)).toBe(before);

    const anonymous = await rejection(call(intake, 'GetJob', { jobId: 'x' }, meta()));
    expect(anonymous.code).toBe(grpc.status.UNAUTHENTICATED);
    const wrongKey = await rejection(call(intake, 'GetJob', { jobId: 'x' }, meta('fgk_not_a_key')));
    expect(wrongKey.code).toBe(grpc.status.UNAUTHENTICATED);
    const job = await call(intake, 'SubmitJob', { ...jobRequest, idempotencyKey: 'private' }, meta(acmeKey));
    const otherTenant = await rejection(call(intake, 'GetJob', { jobId: job.jobId }, meta(globexKey)));
    expect(otherTenant.code).toBe(grpc.status.NOT_FOUND);
    const noJobId = await rejection(call(intake, 'GetJob', {}, meta(acmeKey)));
    expect([noJobId.code, noJobId.metadata.get(ErrorTrailers.field)[0]]).toEqual([grpc.status.INVALID_ARGUMENT, 'jobId']);
    const badResume = await new Promise<grpc.ServiceError>((resolve) => {
      const s = (intake as any).WatchJob({ jobId: job.jobId, fromSequence: 10_000_000 }, meta(acmeKey)) as grpc.ClientReadableStream<unknown>;
      s.on('error', resolve);
      s.on('data', () => undefined);
    });
    expect([badResume.code, badResume.metadata.get(ErrorTrailers.field)[0]]).toEqual([grpc.status.INVALID_ARGUMENT, 'fromSequence']);
  });

  it('allocates, reads and releases a lease through the same service as /v1/leases', async () => {
    const lease = await call(intake, 'AllocateLease', { projectId: 'notebooks', gpuModels: ['h100'], gpus: 4, idempotencyKey: 'lease-1' }, meta(acmeKey));
    expect(lease).toMatchObject({ tenantId: 'acme', state: 'requested', gpus: 4, gpuModels: ['h100'], capacityType: 'on-demand' });
    const again = await call(intake, 'AllocateLease', { projectId: 'notebooks', gpuModels: ['h100'], gpus: 4, idempotencyKey: 'lease-1' }, meta(acmeKey));
    expect(again.leaseId).toBe(lease.leaseId);
    const requested = await env.bus.jsm.streams.getMessage(env.bus.topology.streams.events, { last_by_subj: env.bus.topology.subjects.lease(lease.leaseId) });
    expect(requested!.json<DomainEvent>()).toMatchObject({ type: 'LeaseRequested', data: { leaseId: lease.leaseId, gpus: 4 } });
    const viaHttp = await fetch(`${started.url}/v1/leases/${lease.leaseId}`, { headers: { authorization: `Bearer ${acmeKey}` } });
    expect(((await viaHttp.json()) as { leaseId: string }).leaseId).toBe(lease.leaseId);
    expect((await rejection(call(intake, 'GetLease', { leaseId: lease.leaseId }, meta(globexKey)))).code).toBe(grpc.status.NOT_FOUND);
    expect((await rejection(call(intake, 'ReleaseLease', { leaseId: lease.leaseId }, meta(globexKey)))).code).toBe(grpc.status.NOT_FOUND);
    const released = await call(intake, 'ReleaseLease', { leaseId: lease.leaseId }, meta(acmeKey));
    expect(released.leaseId).toBe(lease.leaseId);
    expect(['releasing', 'released']).toContain(released.state);
    const badWait = await rejection(call(intake, 'AllocateLease', { projectId: 'p', gpuModels: ['a100'], gpus: 1, waitMs: 999_999 }, meta(acmeKey)));
    expect([badWait.code, badWait.metadata.get(ErrorTrailers.field)[0]]).toEqual([grpc.status.INVALID_ARGUMENT, 'waitMs']);
  });

  it('lists invoices and answers NOT_FOUND for an unknown one', async () => {
    const listed = await call(billing, 'ListInvoices', {}, meta(acmeKey));
    expect(listed.invoicesJson).toEqual([]);
    const badPeriod = await rejection(call(billing, 'ListInvoices', { period: '2026-13' }, meta(acmeKey)));
    expect([badPeriod.code, badPeriod.metadata.get(ErrorTrailers.field)[0]]).toEqual([grpc.status.INVALID_ARGUMENT, 'period']);
    const missing = await rejection(call(billing, 'ExportInvoice', { invoiceId: 'inv-nope', format: 'csv' }, meta(acmeKey)));
    expect(missing.code).toBe(grpc.status.NOT_FOUND);
  });
});
