/**
 * Proves the rate limits at the edge on real NATS and Postgres: each API key and each tenant has
 * a token bucket shared by HTTP and gRPC (configured through libs/config); past it a request gets
 * 429 with an integer `Retry-After` ≥ 1 in the one error shape over HTTP, RESOURCE_EXHAUSTED with
 * a `retry-after` trailer over gRPC; another tenant is not affected; every decision is counted in
 * `fastgpu_rate_limit_requests_total` per tenant, key and outcome. Open job-watch streams are
 * bounded per tenant (RESOURCE_EXHAUSTED beyond the bound, a slot again once one closes) and
 * shown in `fastgpu_watch_streams_open`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { eventually, insertTestApiKey } from '@fastgpu/testing';
import { ErrorTrailers } from '../../libs/grpc/src';
import { intakeService } from '../../apps/intake/src/intake.service';
import { isErrorShape, metadata, metricValue, startEdge, unary, type Edge } from './harness';

/** Slow enough that no token comes back while a test runs: every outcome below is exact. */
const TRICKLE_PER_SECOND = 0.01;

describe('per-key and per-tenant token buckets', () => {
  let edge: Edge;
  const keys: Record<string, string> = {};

  /** Keys written straight into the key directory: the admin key has a bucket of its own here. */
  async function issueKey(keyId: string, tenantId: string): Promise<string> {
    const secret = `fgk_rate_${keyId}_0123456789abcdef0123`;
    return insertTestApiKey(edge.env.database.db, { keyId, tenantId, role: 'tenant', issuedAt: new Date(), secret });
  }

  beforeAll(async () => {
    edge = await startEdge([intakeService], { rateLimitKeyPerSecond: TRICKLE_PER_SECOND, rateLimitKeyBurst: 3, rateLimitTenantPerSecond: TRICKLE_PER_SECOND, rateLimitTenantBurst: 5 });
    for (const [keyId, tenantId] of [['acme-1', 'acme'], ['acme-2', 'acme'], ['globex-1', 'globex']] as const) keys[keyId] = await issueKey(keyId, tenantId);
  });
  afterAll(async () => edge?.close());

  it('refuses past the key bucket with 429 and Retry-After, on HTTP and then on gRPC', async () => {
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await edge.http('GET', '/v1/jobs', keys['acme-1']));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 429]);
    const refused = answers[3]!;
    expect(refused.body).toMatchObject({ error: { code: 'rate_limited' } });
    expect(isErrorShape(refused.body)).toBe(true);
    const retryAfter = refused.headers.get('retry-after')!;
    expect(retryAfter).toMatch(/^\d+$/);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);

    // The same bucket over gRPC: the key is spent whatever the transport.
    const intake = edge.intake();
    const viaGrpc = await unary(intake, 'GetJob', { jobId: 'any-job' }, metadata(keys['acme-1']));
    expect(viaGrpc.ok).toBe(false);
    if (viaGrpc.ok) return;
    expect(viaGrpc.error.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(viaGrpc.error.metadata.get(ErrorTrailers.code)).toEqual(['rate_limited']);
    expect(Number(viaGrpc.error.metadata.get('retry-after')[0])).toBeGreaterThanOrEqual(1);
  });

  it('binds every key of the tenant to the tenant bucket, and leaves other tenants alone', async () => {
    // acme has spent 3 of its 5 (refusals take nothing); acme-2 gets 2 more, then the tenant is out.
    const second = [];
    for (let i = 0; i < 3; i++) second.push(await edge.http('GET', '/v1/jobs', keys['acme-2']));
    expect(second.map((a) => a.status)).toEqual([200, 200, 429]);
    expect(second[2]!.body.error.message).toMatch(/tenant/);
    expect((await edge.http('GET', '/v1/jobs', keys['globex-1'])).status).toBe(200);
  });

  it('counts every decision per tenant, key and outcome', async () => {
    const count = (key: string, tenant: string, transport: string, outcome: string) => metricValue(edge.url, 'fastgpu_rate_limit_requests_total', { tenant, key, transport, outcome });
    expect(await count('acme-1', 'acme', 'http', 'allowed')).toBe(3);
    expect(await count('acme-1', 'acme', 'http', 'limited_by_key')).toBe(1);
    expect(await count('acme-1', 'acme', 'grpc', 'limited_by_key')).toBe(1);
    expect(await count('acme-2', 'acme', 'http', 'allowed')).toBe(2);
    expect(await count('acme-2', 'acme', 'http', 'limited_by_tenant')).toBe(1);
    expect(await count('globex-1', 'globex', 'http', 'allowed')).toBe(1);
  });
});

describe('open job-watch streams per tenant', () => {
  let edge: Edge;
  const STREAMS_MAX = 2;

  beforeAll(async () => {
    edge = await startEdge([intakeService], { watchStreamsPerTenantMax: STREAMS_MAX });
  });
  afterAll(async () => edge?.close());

  function watch(intake: Record<string, (...args: unknown[]) => unknown>, jobId: string, key: string) {
    const stream = intake.WatchJob!({ jobId }, metadata(key)) as grpc.ClientReadableStream<{ type: string }>;
    const events: string[] = [];
    const failed = new Promise<grpc.ServiceError>((resolve) => stream.on('error', resolve));
    stream.on('data', (e) => events.push(e.type));
    return { stream, events, failed };
  }

  it('refuses a watch beyond the bound with RESOURCE_EXHAUSTED, and admits one again when a stream closes', async () => {
    const acme = await edge.tenantKey('acme');
    const globex = await edge.tenantKey('globex');
    const intake = edge.intake();
    const submit = async (key: string, idempotencyKey: string) => {
      const answer = await unary(intake, 'SubmitJob', { projectId: 'p', gpuModels: ['a100'], gpusPerSubtask: 1, subtaskCount: 1, runtimeSeconds: 60, idempotencyKey }, metadata(key));
      if (!answer.ok) throw answer.error;
      return answer.response.jobId as string;
    };
    const acmeJob = await submit(acme.secret, 'w-1');
    const globexJob = await submit(globex.secret, 'w-2');

    const open = [watch(intake, acmeJob, acme.secret), watch(intake, acmeJob, acme.secret)];
    await eventually(() => open.every((w) => w.events.length >= 1), { message: 'watches did not start' });
    expect(await metricValue(edge.url, 'fastgpu_watch_streams_open', { tenant: 'acme' })).toBe(STREAMS_MAX);

    const third = watch(intake, acmeJob, acme.secret);
    const refused = await third.failed;
    expect(refused.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(refused.metadata.get(ErrorTrailers.code)).toEqual(['too_many_streams']);
    expect(Number(refused.metadata.get('retry-after')[0])).toBeGreaterThanOrEqual(1);
    expect(await metricValue(edge.url, 'fastgpu_watch_streams_refused_total', { tenant: 'acme' })).toBe(1);

    // Another tenant is not counted against acme.
    const other = watch(intake, globexJob, globex.secret);
    await eventually(() => other.events.length >= 1, { message: 'globex watch did not start' });

    // Closing one frees its slot.
    open[0]!.stream.cancel();
    await eventually(async () => (await metricValue(edge.url, 'fastgpu_watch_streams_open', { tenant: 'acme' })) === STREAMS_MAX - 1, { message: 'slot not released' });
    const again = watch(intake, acmeJob, acme.secret);
    await eventually(() => again.events.length >= 1, { message: 'a watch after a close was refused' });
    for (const w of [open[1]!, other, again]) w.stream.cancel();
  });
});
