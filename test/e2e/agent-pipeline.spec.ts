/**
 * Real work, end to end (issue 18's "Done when"), in one process on real NATS JetStream and
 * PostgreSQL with every service and the real node agent (apps/node-agent) on this host, whose
 * only stand-in is an `nvidia-smi` script on PATH printing the real CSV for four A100s:
 *
 * - a job of three sub-tasks, submitted with the TS client, each running a real `node -e`
 *   program that checks it sees exactly its two GPUs (by UUID) and its index, count and input,
 *   prints, and writes a result; its logs are followed while it runs; its results and their
 *   jsonl aggregate download byte-exact; the invoice line equals the GPU time the agent
 *   reported (GPUs × its start-to-end); another tenant gets 404 for its logs and results;
 * - a cancellation mid-run leaves no process of the run's group;
 * - a non-zero exit fails the job at once (user fault, no retry policy), while the same job
 *   whose agent crashed under it is retried elsewhere in time (platform fault) and succeeds;
 * - a timeout fails the job as `timeout`;
 * - a job submitted over gRPC with a shell script and chunked inputs gets its concat aggregate;
 *   a failed job keeps its sub-tasks' results and gets no aggregate; a jsonl result that is not
 *   JSON Lines is announced as a failed aggregation; the events CLI prints a job's logs;
 * - a secret reaches its run by name; its value is in no event, command, agent log or answer;
 * - the seed's call shape in the TS client: allocate GPUs on the agent's node, submit, wait,
 *   read results, release.
 */
import 'reflect-metadata';
import { createHash } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadFastGpuProtos } from '@fastgpu/grpc';
import { amountForGpuMs, formatMoney, roundToMinor } from '@fastgpu/money';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { createClient, FastGpuError, type FastGpuClient, type LogEntry } from '../../libs/client/src/index';
import { agentConfig, EventTail, FakeHost, GPU_UUIDS, processRuns, startAgent, type RunningAgent } from '../../apps/node-agent/test/agent-harness';
import { allServices } from '../../apps/fastgpu/src/services';
import { runEventsCli } from '../../apps/fastgpu/src/cli/events/cli';

const ADMIN = 'e2e-agent-admin-key-0123456789abcdef';
const PRICE_PER_GPU_HOUR = '36000';
const NODE = 'gpu-e2e-1';

let env: TestEnvironment;
let runtime: OwnedRuntime;
let app: StartedApp;
let host: FakeHost;
let agent: RunningAgent;
let tail: EventTail;
let acme: FastGpuClient;
let other: FastGpuClient;
let acmeKey: string;
let secretsDir: string;
const SECRET_VALUE = 'hf_s3cr3t-value-never-in-the-log';

async function call(method: string, path: string, key: string, body?: unknown) {
  const response = await fetch(`${app.url}${path}`, { method, headers: { authorization: `Bearer ${key}`, accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : undefined) };
}

/** The program every sub-task runs: it refuses to work unless it sees exactly its GPUs, index, count and input. */
const PROGRAM = `
const fs = require('fs');
const env = process.env;
const gpus = (env.CUDA_VISIBLE_DEVICES || '').split(',');
if (gpus.length !== 2 || env.NVIDIA_VISIBLE_DEVICES !== env.CUDA_VISIBLE_DEVICES || !gpus.every((g) => /^GPU-/.test(g))) { console.error('wrong GPUs: ' + env.CUDA_VISIBLE_DEVICES); process.exit(4); }
const index = Number(env.FASTGPU_SUBTASK_INDEX);
if (env.JOB_COMPLETION_INDEX !== String(index) || env.FASTGPU_SUBTASK_COUNT !== '3') { console.error('wrong index or count'); process.exit(5); }
const input = env.FASTGPU_INPUT;
console.log('sub-task ' + index + ' of ' + env.FASTGPU_SUBTASK_COUNT + ' starts on ' + input);
setTimeout(() => {
  fs.writeFileSync(env.FASTGPU_RESULT_PATH, JSON.stringify({ index, input, words: input.split(' ').length, gpus, greeting: env.GREETING }) + '\\n');
  console.log('sub-task ' + index + ' done');
}, 1500);
`;

beforeAll(async () => {
  // No test here loses the node: its loss window is wide (10 s), because on a loaded machine the
  // agent's heartbeats (a publish each, every 200 ms) can be spaced well past 3 × 200 ms, which
  // would lose the node under its runs.
  env = await createTestEnvironment({ adminKey: ADMIN, heartbeatIntervalMs: 200, missedHeartbeatsBeforeLost: 50 });
  runtime = await createRuntime(env.config);
  app = await startServices(runtime, allServices, { port: 0, logger: false });
  host = await FakeHost.create();
  secretsDir = await host.directory('secrets');
  const { mkdir, writeFile } = await import('node:fs/promises');
  await mkdir(`${secretsDir}/acme`, { recursive: true });
  await writeFile(`${secretsDir}/acme/hf-token`, `${SECRET_VALUE}\n`);
  agent = await startAgent(env, agentConfig(env, host, { nodeId: NODE, secretsDir }));
  tail = new EventTail(env.bus);
  await tail.start();
  await tail.waitFor('NodeRegistered', (e) => e.data.nodeId === NODE);

  const finance = await call('POST', '/v1/api-keys', ADMIN, { role: 'finance' });
  const book = await call('POST', '/v1/price-books', finance.body.secret, {
    priceBookId: 'list',
    currency: 'USD',
    effectiveFrom: '2026-01-01T00:00:00.000Z',
    prices: [{ gpuModel: 'a100', capacityType: 'on-demand', pricePerGpuHour: PRICE_PER_GPU_HOUR, incrementMs: 1, minimumMs: 0 }],
  });
  expect(book.status).toBe(201);
  for (const tenantId of ['acme', 'other']) expect((await call('POST', '/v1/tenants', ADMIN, { tenantId, name: tenantId })).status).toBe(201);
  acmeKey = (await call('POST', '/v1/tenants/acme/api-keys', ADMIN, {})).body.secret;
  acme = createClient({ baseUrl: app.url, apiKey: acmeKey });
  other = createClient({ baseUrl: app.url, apiKey: (await call('POST', '/v1/tenants/other/api-keys', ADMIN, {})).body.secret });
}, 60_000);

afterAll(async () => {
  await tail?.stop();
  await agent?.stop();
  await app?.close();
  await runtime?.close();
  await host?.cleanup();
  await env?.cleanup();
});

const base = { projectId: 'vision', gpuModels: ['a100'], gpusPerSubtask: 2, runtimeSeconds: 60 };

describe('a job with a workload on the real agent', () => {
  it('runs each sub-task on its own GPUs with its input; logs follow it live; results and the aggregate download byte-exact; the invoice bills the GPU time the agent measured', async () => {
    const inputs = ['the quick brown fox', 'jumps over', 'the lazy dog'];
    const job = await acme.submitJob({ ...base, workload: { command: [process.execPath, '-e', PROGRAM], env: { GREETING: 'hello' }, inputs, aggregate: 'jsonl' } }, { idempotencyKey: 'agent-e2e-1' });
    expect(job.subtasks).toHaveLength(3);
    expect((job.spec as { workload: unknown }).workload).toMatchObject({ command: [process.execPath, '-e', PROGRAM], shell: false, inputs, aggregate: 'jsonl', timeoutMs: 60_000 });

    // Follow sub-task 0's first attempt while it runs: its first line arrives before it ends.
    const followed: Array<LogEntry & { endedAtArrival: boolean }> = [];
    const following = (async () => {
      for await (const entry of acme.logs(job.jobId, { subtask: 0, attempt: 1, follow: true })) {
        const ended = tail.all('SubtaskCompleted', (e) => e.data.subtaskId === `${job.jobId}-0`).length > 0;
        followed.push({ ...entry, endedAtArrival: ended });
      }
    })();

    const done = await acme.waitForJob(job.jobId, { timeoutMs: 60_000 });
    expect(done.state).toBe('succeeded');
    await following;
    expect(followed.map((e) => `${e.kind}:${e.text}`)).toEqual([`stdout:sub-task 0 of 3 starts on ${inputs[0]}\n`, 'stdout:sub-task 0 done\n', 'end:']);
    expect(followed[0]!.endedAtArrival).toBe(false);

    // Each sub-task ran on two GPUs of its own, as placed.
    const placements = tail.all('SubtaskPlaced', (e) => e.data.jobId === job.jobId);
    expect(placements).toHaveLength(3);
    const uuidsOf = (index: number) => placements.find((p) => p.data.subtaskId === `${job.jobId}-${index}`)!.data.gpuIndices.map((i) => GPU_UUIDS[i]!);

    // Results: listed with their digests, downloaded byte-exact; the aggregate is their JSON lines in sub-task order.
    const expected = inputs.map((input, index) => Buffer.from(`${JSON.stringify({ index, input, words: input.split(' ').length, gpus: uuidsOf(index), greeting: 'hello' })}\n`));
    const listed = await acme.listResults(job.jobId);
    expect(listed.map((r) => [r.subtaskIndex, r.attempt, r.bytes, r.sha256, r.exitCode, r.nodeId])).toEqual(expected.map((bytes, index) => [index, 1, bytes.length, createHash('sha256').update(bytes).digest('hex'), 0, NODE]));
    for (const [index, bytes] of expected.entries()) expect(Buffer.from(await acme.getResult(job.jobId, index))).toEqual(bytes);
    const aggregated = await tail.waitFor('JobResultsAggregated', (e) => e.data.jobId === job.jobId);
    const aggregate = Buffer.concat(expected);
    expect(aggregated.data).toMatchObject({ rule: 'jsonl', outcome: 'stored', subtaskCount: 3, bytes: aggregate.length, sha256: createHash('sha256').update(aggregate).digest('hex') });
    expect(Buffer.from(await eventually(() => acme.getAggregateResult(job.jobId).catch(() => undefined)))).toEqual(aggregate);

    // The invoice line is the GPU time the agent reported: GPUs × (its end − its start), per sub-task.
    const measuredGpuMs = [0, 1, 2].reduce((sum, index) => {
      const subtaskId = `${job.jobId}-${index}`;
      const started = tail.all('SubtaskStarted', (e) => e.data.subtaskId === subtaskId)[0]!;
      const completed = tail.all('SubtaskCompleted', (e) => e.data.subtaskId === subtaskId)[0]!;
      return sum + 2 * (Date.parse(completed.data.endedAt) - Date.parse(started.data.startedAt));
    }, 0);
    expect(measuredGpuMs).toBeGreaterThanOrEqual(3 * 2 * 1500);
    const key = acmeKey;
    const period = (done.submittedAt as string).slice(0, 7);
    const expectedTotal = formatMoney(roundToMinor(amountForGpuMs(measuredGpuMs, PRICE_PER_GPU_HOUR), 'USD'), 'USD');
    const invoice = await eventually(async () => {
      const list = await call('GET', `/v1/invoices?period=${period}`, key);
      const summary = list.body?.invoices?.[0];
      if (!summary) return undefined;
      const doc = await call('GET', `/v1/invoices/${summary.invoiceId}`, key);
      return doc.body?.total === expectedTotal ? doc.body : undefined;
    }, { timeoutMs: 30_000, message: `no invoice totalling ${expectedTotal}` });
    const lines = (invoice.lines as Array<{ line: number; gpuModel: string | null; quantityGpuMs: number | null }>).filter((l) => l.gpuModel === 'a100');
    expect(lines.reduce((sum, l) => sum + (l.quantityGpuMs ?? 0), 0)).toBe(measuredGpuMs);
    // Its evidence reaches each sub-task's attempt and the agent's report of how it ended (exit 0).
    const evidence = (await Promise.all(lines.map((l) => call('GET', `/v1/invoices/${invoice.invoiceId}/lines/${l.line}/evidence`, key)))).flatMap((r) => r.body.usage as Array<{ subtaskId: string; attempt: number; gpuMs: number; sourceSequences: number[] }>);
    expect(evidence.map((u) => [u.subtaskId, u.attempt]).sort()).toEqual([0, 1, 2].map((i) => [`${job.jobId}-${i}`, 1]));
    for (const usage of evidence) {
      const sources = await Promise.all(usage.sourceSequences.map(async (seq) => JSON.parse(new TextDecoder().decode((await env.bus.jsm.streams.getMessage(env.bus.topology.streams.events, { seq }))!.data)) as { type: string; data: { subtaskId: string; exitCode?: number } }));
      expect(sources.find((e) => e.type === 'SubtaskCompleted')?.data).toMatchObject({ subtaskId: usage.subtaskId, exitCode: 0 });
    }

    // Another tenant: the same 404 as a missing job, on every output route.
    for (const read of [() => other.listResults(job.jobId), () => other.getResult(job.jobId, 0), () => other.getAggregateResult(job.jobId), async () => other.logs(job.jobId).next()]) {
      await expect(read()).rejects.toMatchObject({ status: 404 });
    }
  }, 120_000);

  it('is stopped as a whole process group when the job is cancelled mid-run', async () => {
    // The program leaves a grandchild in its group: both must be gone after the cancellation.
    const script = "require('child_process').spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' }); console.log('running'); setInterval(() => {}, 1000);";
    const job = await acme.submitJob({ ...base, subtaskCount: 1, workload: { command: [process.execPath, '-e', script] } }, { idempotencyKey: 'agent-e2e-cancel' });
    await tail.waitFor('SubtaskStarted', (e) => e.data.jobId === job.jobId);
    const key = `${job.jobId}-0#1`;
    const group = await eventually(() => agent.agent.processGroupOf(key));
    expect(await processRuns(group)).toBe(true);
    await acme.cancelJob(job.jobId);
    expect((await acme.waitForJob(job.jobId, { timeoutMs: 30_000 })).state).toBe('cancelled');
    await eventually(async () => !(await groupAlive(group)), { timeoutMs: 15_000, message: `process group ${group} still has processes` });
  }, 60_000);

  it('fails a non-zero exit at once as the user\'s, but retries a run lost in an agent crash as the platform\'s', async () => {
    const exits = await acme.submitJob({ ...base, subtaskCount: 1, workload: { command: [process.execPath, '-e', 'process.exit(3)'] } }, { idempotencyKey: 'agent-e2e-exit' });
    const failed = await acme.waitForJob(exits.jobId, { timeoutMs: 30_000 });
    expect(failed.state).toBe('failed');
    expect(failed.subtasks[0]!.attempt).toBe(1);
    expect((await tail.waitFor('SubtaskFailed', (e) => e.data.jobId === exits.jobId)).data).toMatchObject({ failureKind: 'exit-code', fault: 'user', exitCode: 3 });

    // The first attempt would run for a minute; the agent crashes under it (agent and run gone), comes back, reports it lost.
    const script = "if (process.env.FASTGPU_ATTEMPT === '1') setInterval(() => {}, 1000); else require('fs').writeFileSync(process.env.FASTGPU_RESULT_PATH, 'attempt ' + process.env.FASTGPU_ATTEMPT);";
    const crashes = await acme.submitJob({ ...base, subtaskCount: 1, workload: { command: [process.execPath, '-e', script] } }, { idempotencyKey: 'agent-e2e-crash' });
    await tail.waitFor('SubtaskStarted', (e) => e.data.jobId === crashes.jobId);
    const group = await eventually(() => agent.agent.processGroupOf(`${crashes.jobId}-0#1`));
    await agent.stop();
    process.kill(-group, 'SIGKILL');
    await eventually(async () => !(await groupAlive(group)));
    agent = await startAgent(env, agentConfig(env, host, { nodeId: NODE, secretsDir }));
    expect((await tail.waitFor('SubtaskFailed', (e) => e.data.jobId === crashes.jobId)).data).toMatchObject({ failureKind: 'agent-restart', fault: 'platform', attempt: 1 });
    // Retried without any retry policy (a platform fault), once: the agent kept its epoch, so
    // nothing interrupts the retry placed after its report.
    const retried = await acme.waitForJob(crashes.jobId, { timeoutMs: 60_000 });
    expect(retried.state).toBe('succeeded');
    expect(retried.subtasks[0]!.attempt).toBe(2);
    expect(Buffer.from(await acme.getResult(crashes.jobId, 0)).toString()).toBe('attempt 2');
    expect(tail.all('SubtaskPlaced', (e) => e.data.jobId === crashes.jobId)).toHaveLength(2);
  }, 120_000);

  it('fails a run past its timeout as `timeout`', async () => {
    const job = await acme.submitJob({ ...base, subtaskCount: 1, workload: { command: [process.execPath, '-e', 'setInterval(() => {}, 1000)'], timeoutSeconds: 1 } }, { idempotencyKey: 'agent-e2e-timeout' });
    expect((await acme.waitForJob(job.jobId, { timeoutMs: 30_000 })).state).toBe('failed');
    expect((await tail.waitFor('SubtaskFailed', (e) => e.data.jobId === job.jobId)).data).toMatchObject({ failureKind: 'timeout', fault: 'user' });
  }, 60_000);

  it('refuses a container image and a bad workload at the edge with the field', async () => {
    await expect(acme.submitJob({ ...base, subtaskCount: 1, workload: { command: ['python3'], image: 'pytorch/pytorch:2.4' } } as never, { idempotencyKey: 'agent-e2e-image' })).rejects.toMatchObject({ status: 422, field: 'workload.image' });
    await expect(acme.submitJob({ ...base, subtaskCount: 1, workload: { command: ['x'], env: { CUDA_VISIBLE_DEVICES: '0' } } }, { idempotencyKey: 'agent-e2e-env' })).rejects.toMatchObject({ status: 422, field: 'workload.env.CUDA_VISIBLE_DEVICES' });
    await expect(acme.submitJob({ ...base, subtaskCount: 2, workload: { command: ['x'], inputs: ['a', 'b', 'c'] } }, { idempotencyKey: 'agent-e2e-inputs' })).rejects.toBeInstanceOf(FastGpuError);
  });
});

describe('aggregation, gRPC, the events CLI and the seed\'s call shape', () => {
  it('takes a workload over gRPC (shell script, chunked inputs) and builds its concat aggregate', async () => {
    const definition = grpc.loadPackageDefinition(loadFastGpuProtos()) as any; // eslint-disable-line @typescript-eslint/no-explicit-any
    const client = new definition.fastgpu.intake.v1.IntakeService(`127.0.0.1:${app.grpcPort}`, grpc.credentials.createInsecure());
    const metadata = new grpc.Metadata();
    metadata.set('authorization', `Bearer ${acmeKey}`);
    const request = { ...base, idempotencyKey: 'agent-e2e-grpc', workload: { command: ['printf "%s\\n" "$FASTGPU_INPUT" > "$FASTGPU_RESULT_PATH"'], shell: true, inputs: ['a', 'b', 'c'], inputsPerSubtask: 2, aggregate: 'concat' } };
    const submit = (body: object) => new Promise<Record<string, any>>((resolve, reject) => client.SubmitJob(body, metadata, (error: Error | null, response: Record<string, any>) => (error ? reject(error) : resolve(response)))); // eslint-disable-line @typescript-eslint/no-explicit-any
    const submitted = await submit(request);
    // The same edge checks as HTTP: an image is refused, naming the field.
    const refused = (await submit({ ...request, idempotencyKey: 'agent-e2e-grpc-image', workload: { ...request.workload, image: 'pytorch/pytorch:2.4' } }).catch((error: grpc.ServiceError) => error)) as grpc.ServiceError;
    expect(refused.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(refused.metadata.get('fastgpu-error-field')).toEqual(['workload.image']);
    client.close();
    expect(JSON.parse(submitted.specJson).workload).toMatchObject({ shell: true, inputs: ['a', 'b', 'c'], inputsPerSubtask: 2, aggregate: 'concat' });
    expect(submitted.subtasks).toHaveLength(2);
    expect((await acme.waitForJob(submitted.jobId, { timeoutMs: 30_000 })).state).toBe('succeeded');
    expect(Buffer.from(await eventually(() => acme.getAggregateResult(submitted.jobId).catch(() => undefined))).toString()).toBe('["a","b"]\n["c"]\n');
  }, 60_000);

  it('keeps a failed job\'s results without an aggregate, and announces a jsonl aggregation that fails', async () => {
    const script = "require('fs').writeFileSync(process.env.FASTGPU_RESULT_PATH, 'partial ' + process.env.FASTGPU_SUBTASK_INDEX); process.exit(Number(process.env.FASTGPU_SUBTASK_INDEX));";
    const failing = await acme.submitJob({ ...base, subtaskCount: 2, workload: { command: [process.execPath, '-e', script], aggregate: 'concat' } }, { idempotencyKey: 'agent-e2e-partial' });
    expect((await acme.waitForJob(failing.jobId, { timeoutMs: 30_000 })).state).toBe('failed');
    expect((await acme.listResults(failing.jobId)).map((r) => [r.subtaskIndex, r.exitCode])).toEqual([[0, 0], [1, 1]]);
    expect(Buffer.from(await acme.getResult(failing.jobId, 1)).toString()).toBe('partial 1');
    await expect(acme.getAggregateResult(failing.jobId)).rejects.toMatchObject({ status: 404 });

    const notJson = await acme.submitJob({ ...base, subtaskCount: 1, workload: { command: [process.execPath, '-e', "require('fs').writeFileSync(process.env.FASTGPU_RESULT_PATH, '{\"ok\":1}\\nnot json\\n')"], aggregate: 'jsonl' } }, { idempotencyKey: 'agent-e2e-notjson' });
    expect((await acme.waitForJob(notJson.jobId, { timeoutMs: 30_000 })).state).toBe('succeeded');
    expect((await tail.waitFor('JobResultsAggregated', (e) => e.data.jobId === notJson.jobId)).data).toMatchObject({ outcome: 'failed', reason: 'sub-task 0, line 2: not a JSON value' });
    await expect(acme.getAggregateResult(notJson.jobId)).rejects.toMatchObject({ status: 404, message: expect.stringMatching(/aggregation failed: sub-task 0, line 2/) });
    expect(tail.all('JobResultsAggregated', (e) => e.data.jobId === failing.jobId)).toEqual([]);
  }, 60_000);

  it('prints a job\'s logs with the events CLI', async () => {
    const job = await acme.submitJob({ ...base, subtaskCount: 1, workload: { command: [process.execPath, '-e', "console.log('one'); console.error('two'); console.log('three'); require('fs').writeFileSync(process.env.FASTGPU_RESULT_PATH, '')"] } }, { idempotencyKey: 'agent-e2e-cli' });
    expect((await acme.waitForJob(job.jobId, { timeoutMs: 30_000 })).state).toBe('succeeded');
    const out: string[] = [];
    const code = await runEventsCli(['logs', job.jobId, '--subtask', '0', '--attempt', '1', '--follow'], { bus: env.bus, io: { out: (line) => out.push(line), err: (line) => out.push(`err: ${line}`) } });
    expect(code).toBe(0);
    expect(out.filter((line) => line.includes('stdout'))).toEqual(['0.1 stdout| one', '0.1 stdout| three']);
    expect(out).toContain('0.1 stderr| two');
    expect(out[out.length - 1]).toBe('0.1 (end of attempt)');
  }, 60_000);

  it('gives a run its secret by name, and the value appears in no event, command, agent log or API answer', async () => {
    const script = "require('fs').writeFileSync(process.env.FASTGPU_RESULT_PATH, 'token of ' + process.env.HF_TOKEN.length + ' characters, ' + (process.env.HF_TOKEN.startsWith('hf_') ? 'as stored' : 'wrong'))";
    const job = await acme.submitJob({ ...base, subtaskCount: 1, workload: { command: [process.execPath, '-e', script], secrets: [{ env: 'HF_TOKEN', secret: 'hf-token' }] } }, { idempotencyKey: 'agent-e2e-secret' });
    expect((job.spec as { workload: { secrets: unknown } }).workload.secrets).toEqual([{ env: 'HF_TOKEN', secret: 'hf-token' }]);
    expect((await acme.waitForJob(job.jobId, { timeoutMs: 30_000 })).state).toBe('succeeded');
    expect(Buffer.from(await acme.getResult(job.jobId, 0)).toString()).toBe(`token of ${SECRET_VALUE.length} characters, as stored`);
    const commands = await env.bus.jsm.streams.info(env.bus.topology.streams.commands);
    const seen: string[] = [JSON.stringify(tail.events), JSON.stringify(await acme.getJob(job.jobId)), ...agent.logs];
    for (let seq = commands.state.first_seq; seq <= commands.state.last_seq; seq++) seen.push(new TextDecoder().decode((await env.bus.jsm.streams.getMessage(env.bus.topology.streams.commands, { seq }).catch(() => undefined))?.data ?? new Uint8Array()));
    expect(seen.join('\n')).toContain('hf-token');
    expect(seen.join('\n')).not.toContain(SECRET_VALUE);
  }, 60_000);

  it('allocates GPUs on the agent\'s node, runs a job, reads its results and releases them (the seed\'s call shape)', async () => {
    const lease = await acme.allocateGpus({ numGpus: 2, gpuModels: ['a100'], projectId: 'vision', timeoutMs: 20_000 });
    expect(lease).toMatchObject({ state: 'granted', nodeId: NODE, gpus: 2 });
    const job = await acme.submitJob({ ...base, subtaskCount: 1, workload: { command: [process.execPath, '-e', "require('fs').writeFileSync(process.env.FASTGPU_RESULT_PATH, 'hello from ' + process.env.CUDA_VISIBLE_DEVICES.split(',').length + ' GPUs')"] } }, { idempotencyKey: 'agent-e2e-seed' });
    expect((await acme.waitForJob(job.jobId, { timeoutMs: 30_000 })).state).toBe('succeeded');
    expect(Buffer.from(await acme.getResult(job.jobId, 0)).toString()).toBe('hello from 2 GPUs');
    expect((await acme.releaseGpus(lease)).state).toMatch(/releasing|released/);
  }, 60_000);
});

/** Whether any process is left in a process group. */
async function groupAlive(pgid: number): Promise<boolean> {
  try {
    process.kill(-pgid, 0);
  } catch {
    return false;
  }
  // kill(0) also succeeds for zombies: look at the members' states.
  const { readdir, readFile } = await import('node:fs/promises');
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid && fields[0] !== 'Z' && fields[0] !== 'X') return true;
  }
  return false;
}
