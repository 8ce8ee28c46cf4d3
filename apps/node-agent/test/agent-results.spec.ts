/**
 * Proves a run's result reaches the JetStream Object Store byte-exact on real NATS: in the
 * prefix's results bucket, under `<tenantId>/<jobId>/<subtaskIndex>/<attempt>`, with the
 * store's SHA-256 digest and the agent's metadata (hex SHA-256, exit code, node, attempt); that
 * a clean exit without an acceptable result fails as `result` (missing, over the workload's
 * limit, a symlink leading out of the attempt's directory: never read), and that a failed run's
 * result is kept with its exit code; and that the run's directory is removed once reported.
 */
import { createHash, randomBytes } from 'node:crypto';
import { access, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Objm } from '@nats-io/obj';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resultObjectName, ResultMetadata } from '@fastgpu/contracts';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { digestHex } from '../src/results/result-store';
import { agentConfig, EventTail, FakeHost, runCommand, send, startAgent, type RunningAgent } from './agent-harness';

const NODE = 'gpu-host-results';
let env: TestEnvironment;
let host: FakeHost;
let tail: EventTail;
let agent: RunningAgent;
let inbox: string;

beforeAll(async () => {
  env = await createTestEnvironment();
  host = await FakeHost.create();
  inbox = await host.directory('inbox');
  tail = new EventTail(env.bus);
  await tail.start();
  agent = await startAgent(env, agentConfig(env, host, { nodeId: NODE }));
});

afterAll(async () => {
  await agent?.stop();
  await tail?.stop();
  await host?.cleanup();
  await env?.cleanup();
});

const bucket = () => new Objm(env.bus.nc).open(env.bus.topology.buckets.results);

describe('a run\'s result', () => {
  it('is stored byte-exact with its SHA-256 under its job, sub-task index and attempt', async () => {
    const bytes = randomBytes(300_000);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    await writeFile(join(inbox, 'payload.bin'), bytes);
    const command = runCommand({
      subtaskId: 'st-result',
      jobId: 'job-results',
      attempt: 2,
      leaseEpoch: 3,
      workload: { subtaskIndex: 1, subtaskCount: 2, resultPath: 'out/payload.bin', resultBytesMax: 400_000, env: { INBOX: inbox } },
      script: "const fs = require('fs'); fs.copyFileSync(process.env.INBOX + '/payload.bin', process.env.FASTGPU_RESULT_PATH)",
    });
    await send(env, NODE, command);
    await tail.waitFor('SubtaskCompleted', (e) => e.data.subtaskId === 'st-result');

    const store = await bucket();
    const name = resultObjectName('acme', 'job-results', 1, 2);
    expect(name).toBe('acme/job-results/1/2');
    const stored = await store.getBlob(name);
    expect(Buffer.from(stored!).equals(bytes)).toBe(true);
    const info = (await store.info(name))!;
    expect(info.size).toBe(300_000);
    expect(digestHex(info.digest)).toBe(sha256);
    expect(ResultMetadata.parse(info.metadata)).toMatchObject({ tenantId: 'acme', jobId: 'job-results', subtaskId: 'st-result', subtaskIndex: '1', attempt: '2', nodeId: NODE, exitCode: '0', sha256 });
    // The run's directory goes once the report is out (and the state file saved), just after SubtaskCompleted.
    await eventually(() => access(join(host.root, 'work', 'runs', 'st-result.2')).then(() => false, () => true), { message: "the run's directory was not removed" });
  });

  it('fails a clean exit as `result` when the result is missing, too large, or leads outside', async () => {
    const missing = runCommand({ subtaskId: 'st-missing', jobId: 'job-refused', workload: { subtaskIndex: 0, subtaskCount: 3 }, script: '' });
    const large = runCommand({ subtaskId: 'st-large', jobId: 'job-refused', workload: { subtaskIndex: 1, subtaskCount: 3, resultBytesMax: 1000 }, script: "require('fs').writeFileSync(process.env.FASTGPU_RESULT_PATH, 'z'.repeat(1001))" });
    const escaping = runCommand({ subtaskId: 'st-symlink', jobId: 'job-refused', workload: { subtaskIndex: 2, subtaskCount: 3 }, script: "require('fs').symlinkSync('/etc/hostname', process.env.FASTGPU_RESULT_PATH)" });
    for (const command of [missing, large, escaping]) await send(env, NODE, command);
    const failure = async (subtaskId: string) => (await tail.waitFor('SubtaskFailed', (e) => e.data.subtaskId === subtaskId)).data;
    expect(await failure('st-missing')).toMatchObject({ failureKind: 'result', fault: 'user', exitCode: 0 });
    expect((await failure('st-large')).reason).toMatch(/1001 bytes, over the limit of 1000/);
    expect(await failure('st-symlink')).toMatchObject({ failureKind: 'result', fault: 'user' });
    expect((await failure('st-symlink')).reason).toMatch(/outside the attempt's directory/);
    const store = await bucket();
    for (const index of [0, 1, 2]) expect(await store.info(resultObjectName('acme', 'job-refused', index, 1))).toBeNull();
  });

  it('keeps the result of a failed run, with its exit code', async () => {
    const command = runCommand({ subtaskId: 'st-partial', jobId: 'job-partial', script: "require('fs').writeFileSync(process.env.FASTGPU_RESULT_PATH, 'half done'); process.exit(5)" });
    await send(env, NODE, command);
    expect((await tail.waitFor('SubtaskFailed', (e) => e.data.subtaskId === 'st-partial')).data).toMatchObject({ failureKind: 'exit-code', exitCode: 5 });
    const store = await bucket();
    const name = resultObjectName('acme', 'job-partial', 0, 1);
    expect(new TextDecoder().decode((await store.getBlob(name)))).toBe('half done');
    expect((await store.info(name))!.metadata).toMatchObject({ exitCode: '5' });
  });
});
