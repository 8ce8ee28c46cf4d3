/**
 * Proves a job's outputs are readable over HTTP on real NATS and PostgreSQL, written by the real
 * node agent (a stand-in nvidia-smi is the only stand-in): GET /v1/jobs/{id}/logs with
 * follow=true streams a running sub-task's output as Server-Sent Events while it runs and ends
 * with the attempt's end marker; without follow it answers what is stored and ends, and
 * Last-Event-ID resumes after an event; GET /v1/jobs/{id}/results lists each sub-task's result
 * (index, attempt, size, SHA-256, exit code) and .../results/{index} returns it byte-exact with
 * its digest; bad parameters are 400 with the field; and another tenant's job answers every
 * one of these routes exactly like a missing job (404, same body but for the id).
 */
import 'reflect-metadata';
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { agentConfig, EventTail, FakeHost, runCommand, send, startAgent, type RunningAgent } from '../../../node-agent/test/agent-harness';
import { intakeService } from '../intake.service';
import type { ErrorBody } from '@fastgpu/http';
import { jobView } from '../jobs/jobs.schema';
import { issuedKeyResponse } from '../tenants/tenants.schema';

const ADMIN = 'test-admin-key-0123456789abcdef';
const NODE = 'gpu-host-outputs';
let env: TestEnvironment;
let runtime: OwnedRuntime;
let app: StartedApp;
let host: FakeHost;
let agent: RunningAgent;
let tail: EventTail;
let acmeKey: string;
let otherKey: string;
let jobId: string;
let outbox: string;
const payload = randomBytes(200_000);

async function call(method: string, path: string, key: string, body?: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${app.url}${path}`, { method, headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: response.status, headers: response.headers, bytes: Buffer.from(await response.arrayBuffer()) };
}

async function tenantWithKey(tenantId: string): Promise<string> {
  expect((await call('POST', '/v1/tenants', ADMIN, { tenantId, name: tenantId })).status).toBe(201);
  const key = await call('POST', `/v1/tenants/${tenantId}/api-keys`, ADMIN, {});
  return issuedKeyResponse.parse(JSON.parse(key.bytes.toString())).secret;
}

interface Frame {
  id: number;
  event: string;
  data: { subtask: number; attempt: number; kind: string; offset: number; text: string };
}

function parseFrames(text: string): Frame[] {
  return text
    .split('\n\n')
    .filter((block) => block.startsWith('id: '))
    .map((block) => {
      const fields = Object.fromEntries(block.split('\n').map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 2)]));
      return { id: Number(fields.id), event: fields.event!, data: JSON.parse(fields.data!) as Frame['data'] };
    });
}

/** Opens an SSE response and reads it as it arrives; `frames()` is what came so far, `done` when the server ended it. */
async function openStream(path: string, key: string, headers: Record<string, string> = {}) {
  const response = await fetch(`${app.url}${path}`, { headers: { authorization: `Bearer ${key}`, ...headers } });
  let text = '';
  let ended = false;
  const reader: ReadableStreamDefaultReader<Uint8Array> = response.body!.getReader();
  const done = (async () => {
    for (;;) {
      const { value, done: finished } = await reader.read();
      if (finished) break;
      text += new TextDecoder().decode(value);
    }
    ended = true;
  })();
  return { response, frames: () => parseFrames(text), ended: () => ended, done };
}

beforeAll(async () => {
  env = await createTestEnvironment({ adminKey: ADMIN });
  runtime = await createRuntime(env.config);
  app = await startServices(runtime, [intakeService], { port: 0, logger: false });
  host = await FakeHost.create();
  outbox = await host.directory('outbox');
  await writeFile(join(outbox, 'payload.bin'), payload);
  tail = new EventTail(env.bus);
  await tail.start();
  agent = await startAgent(env, agentConfig(env, host, { nodeId: NODE }));
  acmeKey = await tenantWithKey('acme');
  otherKey = await tenantWithKey('other');
  const submitted = await call('POST', '/v1/jobs', acmeKey, { projectId: 'p', gpuModels: ['a100'], gpusPerSubtask: 1, subtaskCount: 2, runtimeSeconds: 60 }, { 'idempotency-key': 'outputs-1' });
  expect(submitted.status).toBe(202);
  jobId = jobView.parse(JSON.parse(submitted.bytes.toString())).jobId;
});

afterAll(async () => {
  await agent?.stop();
  await tail?.stop();
  await app?.close();
  await runtime?.close();
  await host?.cleanup();
  await env?.cleanup();
});

describe('GET /v1/jobs/{id}/logs', () => {
  it('follows a running sub-task\'s output as it is written and ends with its end marker', async () => {
    const stream = await openStream(`/v1/jobs/${jobId}/logs?subtask=0&attempt=1&follow=true`, acmeKey);
    expect(stream.response.status).toBe(200);
    expect(stream.response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const command = runCommand({
      subtaskId: `${jobId}-0`,
      jobId,
      workload: { subtaskIndex: 0, subtaskCount: 2, env: { OUTBOX: outbox } },
      script: `const fs = require('fs');
               for (let i = 0; i < 3; i++) console.log('hello ' + i);
               console.error('careful');
               const t = setInterval(() => { if (fs.existsSync(process.env.OUTBOX + '/release-0')) { clearInterval(t); console.log('bye'); fs.writeFileSync(process.env.FASTGPU_RESULT_PATH, 'sub-task 0'); } }, 50);`,
    });
    await send(env, NODE, command);
    // While it runs (it waits for the release file), its output arrives on the open stream.
    await eventually(() => stream.frames().filter((f) => f.event === 'stdout').map((f) => f.data.text).join('') === 'hello 0\nhello 1\nhello 2\n', { message: 'no output while running' });
    expect(agent.agent.runningKeys).toContain(`${jobId}-0#1`);
    expect(stream.ended()).toBe(false);

    await writeFile(join(outbox, 'release-0'), '');
    await stream.done;
    const frames = stream.frames();
    expect(frames.filter((f) => f.event === 'stdout').map((f) => f.data.text).join('')).toBe('hello 0\nhello 1\nhello 2\nbye\n');
    expect(frames.filter((f) => f.event === 'stderr').map((f) => f.data.text).join('')).toBe('careful\n');
    expect(frames.at(-1)).toMatchObject({ event: 'end', data: { subtask: 0, attempt: 1, kind: 'end' } });
    expect(frames.map((f) => f.id)).toEqual([...frames.map((f) => f.id)].sort((a, b) => a - b));
  });

  it('answers what is stored without follow, and resumes after Last-Event-ID', async () => {
    const all = await openStream(`/v1/jobs/${jobId}/logs`, acmeKey);
    await all.done;
    const frames = all.frames();
    expect(frames.length).toBeGreaterThanOrEqual(3);
    expect(frames.at(-1)!.event).toBe('end');
    const resumed = await openStream(`/v1/jobs/${jobId}/logs?subtask=0`, acmeKey, { 'last-event-id': String(frames[1]!.id) });
    await resumed.done;
    expect(resumed.frames().map((f) => f.id)).toEqual(frames.slice(2).map((f) => f.id));
    const none = await openStream(`/v1/jobs/${jobId}/logs?subtask=1`, acmeKey);
    await none.done;
    expect(none.frames()).toEqual([]);
  });

  it('refuses bad parameters with the field', async () => {
    for (const [query, field] of [['subtask=x', 'subtask'], ['attempt=0', 'attempt'], ['follow=yes', 'follow'], ['subtask=1&subtask=2', 'subtask']] as const) {
      const response = await call('GET', `/v1/jobs/${jobId}/logs?${query}`, acmeKey);
      expect(response.status, query).toBe(400);
      expect((JSON.parse(response.bytes.toString()) as ErrorBody).error.field, query).toBe(field);
    }
    expect((await call('GET', `/v1/jobs/${jobId}/logs?subtask=2`, acmeKey)).status).toBe(404);
    expect((await call('GET', `/v1/jobs/${jobId}/logs`, acmeKey, undefined, { 'last-event-id': 'abc' })).status).toBe(400);
  });
});

describe('GET /v1/jobs/{id}/results', () => {
  it('lists each sub-task\'s result and serves it byte-exact with its digest', async () => {
    const command = runCommand({ subtaskId: `${jobId}-1`, jobId, workload: { subtaskIndex: 1, subtaskCount: 2, env: { OUTBOX: outbox }, resultBytesMax: 1_000_000 }, script: "require('fs').copyFileSync(process.env.OUTBOX + '/payload.bin', process.env.FASTGPU_RESULT_PATH)" });
    await send(env, NODE, command);
    await tail.waitFor('SubtaskCompleted', (e) => e.data.subtaskId === `${jobId}-1`);
    await tail.waitFor('SubtaskCompleted', (e) => e.data.subtaskId === `${jobId}-0`);

    const list = await call('GET', `/v1/jobs/${jobId}/results`, acmeKey);
    expect(list.status).toBe(200);
    const sha256 = createHash('sha256').update(payload).digest('hex');
    expect(JSON.parse(list.bytes.toString())).toMatchObject({
      jobId,
      results: [
        { subtaskIndex: 0, attempt: 1, bytes: 10, sha256: createHash('sha256').update('sub-task 0').digest('hex'), exitCode: 0, nodeId: NODE },
        { subtaskIndex: 1, attempt: 1, bytes: 200_000, sha256, exitCode: 0, nodeId: NODE },
      ],
    });

    const download = await call('GET', `/v1/jobs/${jobId}/results/1`, acmeKey);
    expect(download.status).toBe(200);
    expect(download.bytes.equals(payload)).toBe(true);
    expect(download.headers.get('repr-digest')).toBe(`sha-256=:${Buffer.from(sha256, 'hex').toString('base64')}:`);
    expect(download.headers.get('x-fastgpu-attempt')).toBe('1');
    expect((await call('GET', `/v1/jobs/${jobId}/results/0?attempt=1`, acmeKey)).bytes.toString()).toBe('sub-task 0');
    expect((await call('GET', `/v1/jobs/${jobId}/results/0?attempt=2`, acmeKey)).status).toBe(404);
    expect((await call('GET', `/v1/jobs/${jobId}/results/2`, acmeKey)).status).toBe(404);
    expect((await call('GET', `/v1/jobs/${jobId}/results/x`, acmeKey)).status).toBe(400);
  });
});

describe('tenant isolation', () => {
  it('answers another tenant\'s job on every output route exactly like a missing job', async () => {
    const missingJob = 'job-that-does-not-exist';
    for (const path of ['logs', 'logs?follow=true', 'results', 'results/0']) {
      const foreign = await call('GET', `/v1/jobs/${jobId}/${path}`, otherKey);
      const missing = await call('GET', `/v1/jobs/${missingJob}/${path}`, otherKey);
      expect(foreign.status, path).toBe(404);
      expect([foreign.status, foreign.bytes.toString().replaceAll(jobId, '<id>')], path).toEqual([missing.status, missing.bytes.toString().replaceAll(missingJob, '<id>')]);
    }
  });
});
