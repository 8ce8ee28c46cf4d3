/**
 * Proves the real node agent on real NATS JetStream, running real processes on a host whose
 * `nvidia-smi` is a stand-in printing the real CSV for four GPUs: it registers what nvidia-smi
 * reports and beats with its samples; a RunSubtask's program sees exactly its GPUs (by UUID, in
 * CUDA_VISIBLE_DEVICES and NVIDIA_VISIBLE_DEVICES), its index, count and input, runs in its own
 * directory under the work root with the workload's env and nothing of the agent's, and its
 * reports carry the placement's attempt and lease epoch; a stop kills its whole process group
 * and reports nothing; timeout, non-zero exit, a signal and a command that cannot start are
 * distinct failures (user faults); a stale lease epoch never starts, a newer one stops the older
 * run; and, run as root, it switches to the configured unprivileged user.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Heartbeat, newEventId } from '@fastgpu/contracts';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { agentConfig, EventTail, FakeHost, GPU_UUIDS, processRuns, runCommand, send, startAgent, stopCommand, type RunningAgent } from './agent-harness';

const NODE = 'gpu-host-1';
let env: TestEnvironment;
let host: FakeHost;
let running: RunningAgent;
let tail: EventTail;
let outbox: string;

beforeAll(async () => {
  env = await createTestEnvironment();
  host = await FakeHost.create();
  outbox = await host.directory('outbox');
  tail = new EventTail(env.bus);
  await tail.start();
  running = await startAgent(env, agentConfig(env, host, { nodeId: NODE }));
});

afterAll(async () => {
  await running?.stop();
  await tail?.stop();
  await host?.cleanup();
  await env?.cleanup();
});

/** A script that writes what the program sees to <outbox>/<name>.json, then runs `then`. */
const reportScript = (name: string, then = ''): string =>
  `const fs = require('fs');
   fs.writeFileSync(${JSON.stringify(join('OUTBOX', `${name}.json`))}.replace('OUTBOX', process.env.OUTBOX), JSON.stringify({
     cuda: process.env.CUDA_VISIBLE_DEVICES, nvidia: process.env.NVIDIA_VISIBLE_DEVICES,
     index: process.env.FASTGPU_SUBTASK_INDEX, count: process.env.FASTGPU_SUBTASK_COUNT, completion: process.env.JOB_COMPLETION_INDEX,
     input: process.env.FASTGPU_INPUT, resultPath: process.env.FASTGPU_RESULT_PATH, cwd: process.cwd(), model: process.env.MODEL,
     natsUrl: process.env.NATS_URL ?? null, path: process.env.PATH, uid: process.getuid(), pid: process.pid, pgid: Number(require('fs').readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ')[2]),
   }));
   ${then}`;

async function seen(name: string): Promise<Record<string, unknown>> {
  return eventually(async () => JSON.parse(await readFile(join(outbox, `${name}.json`), 'utf8')) as Record<string, unknown>, { message: `the program ${name} did not report` });
}

describe('registration and heartbeats', () => {
  it('registers the GPUs nvidia-smi lists and beats with their samples', async () => {
    const registered = await tail.waitFor('NodeRegistered', (e) => e.data.nodeId === NODE);
    expect(registered.data).toMatchObject({ gpuModel: 'a100', gpuCount: 4, gpuMemoryGb: 80, agentEpoch: running.agent.agentEpoch });
    await host.setGpus([{ utilization: 97, memoryUsed: 40000, temperature: 71, ecc: 2 }, {}, { utilization: '[N/A]', ecc: '[N/A]' }, {}]);
    const beat = await eventually(async () => {
      const message = await env.bus.jsm.streams.getMessage(env.bus.topology.streams.heartbeats, { last_by_subj: env.bus.topology.subjects.heartbeat(NODE) });
      const parsed = Heartbeat.parse(message!.json());
      return parsed.gpus[0]?.utilizationPercent === 97 ? parsed : undefined;
    });
    expect(beat.agentEpoch).toBe(running.agent.agentEpoch);
    expect(beat.gpus[0]).toEqual({ index: 0, utilizationPercent: 97, memoryUsedMb: 40000, temperatureC: 71, eccErrors: 2, xidErrors: 0 });
    expect(beat.gpus[2]).toMatchObject({ index: 2, utilizationPercent: 0, eccErrors: 0 });
    await host.setGpus([{}, {}, {}, {}]);
  });
});

describe('a run', () => {
  it('sees only its GPUs, its index, count and input, in its own directory, with the workload env and nothing of the agent\'s', async () => {
    process.env.NATS_URL = env.config.natsUrl;
    const command = runCommand({
      subtaskId: 'st-env',
      attempt: 2,
      leaseEpoch: 7,
      gpuIndices: [1, 3],
      script: `${reportScript('env')}; require('fs').writeFileSync(process.env.FASTGPU_RESULT_PATH, 'ok')`,
      workload: { env: { OUTBOX: outbox, MODEL: 'llama' }, subtaskIndex: 2, subtaskCount: 5, input: '{"shard":"c"}', workingDirectory: 'job/run', resultPath: 'out/result.json' },
    });
    await send(env, NODE, command);
    const program = await seen('env');
    expect(program).toMatchObject({ cuda: `${GPU_UUIDS[1]},${GPU_UUIDS[3]}`, nvidia: `${GPU_UUIDS[1]},${GPU_UUIDS[3]}`, index: '2', count: '5', completion: '2', input: '{"shard":"c"}', model: 'llama', natsUrl: null });
    const runDir = join(host.root, 'work', 'runs', 'st-env.2');
    expect(program.cwd).toBe(join(runDir, 'work', 'job', 'run'));
    expect(program.resultPath).toBe(join(runDir, 'work', 'job', 'run', 'out', 'result.json'));
    // Its own process group, led by its supervisor (not the agent's group).
    expect(program.pgid).not.toBe(program.pid);
    expect(program.pgid).not.toBe(Number((await readFile('/proc/self/stat', 'utf8')).split(') ')[1]!.split(' ')[2]));

    const started = await tail.waitFor('SubtaskStarted', (e) => e.data.subtaskId === 'st-env');
    const completed = await tail.waitFor('SubtaskCompleted', (e) => e.data.subtaskId === 'st-env');
    for (const report of [started, completed]) expect(report.data).toMatchObject({ jobId: 'job-agent', tenantId: 'acme', nodeId: NODE, attempt: 2, leaseEpoch: 7 });
    expect(tail.reports('st-env').map((e) => e.type)).toEqual(['SubtaskStarted', 'SubtaskCompleted']);
    await eventually(() => !running.agent.runningKeys.includes('st-env#2'), { message: 'the run was not forgotten' });
  });

  it('is stopped as a whole process group, and nothing is reported for it', async () => {
    const command = runCommand({
      subtaskId: 'st-stop',
      script: `const child = require('child_process').spawn('sleep', ['300'], { stdio: 'ignore' });
               ${reportScript('stop', `require('fs').writeFileSync(process.env.OUTBOX + '/stop-child', String(child.pid)); setInterval(() => {}, 1000);`)}`,
      workload: { env: { OUTBOX: outbox } },
    });
    await send(env, NODE, command);
    const program = await seen('stop');
    const childPid = Number(await eventually(() => readFile(join(outbox, 'stop-child'), 'utf8')));
    const group = running.agent.processGroupOf('st-stop#1')!;
    expect(program.pgid).toBe(group);
    for (const pid of [program.pid as number, childPid, group]) expect(await processRuns(pid)).toBe(true);
    await tail.waitFor('SubtaskStarted', (e) => e.data.subtaskId === 'st-stop');

    await send(env, NODE, stopCommand(command));
    await eventually(async () => !(await processRuns(program.pid as number)) && !(await processRuns(childPid)) && !(await processRuns(group)), { message: 'the process group outlived the stop' });
    await eventually(() => !running.agent.runningKeys.includes('st-stop#1'));
    // A repeat of the run command does not start it again.
    await send(env, NODE, { ...command, commandId: newEventId() });
    await new Promise((r) => setTimeout(r, 500));
    expect(tail.reports('st-stop').map((e) => e.type)).toEqual(['SubtaskStarted']);
  });

  it('tells timeout, exit code, signal and a command that cannot start apart', async () => {
    const timeout = runCommand({ subtaskId: 'st-timeout', script: 'setInterval(() => {}, 1000)', workload: { timeoutMs: 700 } });
    const exit = runCommand({ subtaskId: 'st-exit', script: 'process.exit(3)' });
    const signal = runCommand({ subtaskId: 'st-signal', script: "process.kill(process.pid, 'SIGSEGV')" });
    const cannot = runCommand({ subtaskId: 'st-exec', script: '', workload: { command: ['/nonexistent/program'] } });
    for (const command of [timeout, exit, signal, cannot]) await send(env, NODE, command);
    const failed = async (subtaskId: string) => (await tail.waitFor('SubtaskFailed', (e) => e.data.subtaskId === subtaskId)).data;
    expect(await failed('st-timeout')).toMatchObject({ failureKind: 'timeout', fault: 'user', exitCode: 143 });
    expect(await failed('st-exit')).toMatchObject({ failureKind: 'exit-code', fault: 'user', exitCode: 3, reason: 'exit code 3' });
    expect(await failed('st-signal')).toMatchObject({ failureKind: 'signal', fault: 'user', exitCode: 139 });
    expect(await failed('st-exec')).toMatchObject({ failureKind: 'exec', fault: 'user', exitCode: 127 });
    expect((await failed('st-timeout')).reason).toMatch(/timed out after 700 ms/);
  });

  it('refuses a placement it cannot run as a platform fault: no workload, or GPUs it lacks', async () => {
    const noWorkload = { ...runCommand({ subtaskId: 'st-no-workload', script: '' }), workload: undefined };
    const noGpu = runCommand({ subtaskId: 'st-no-gpu', script: '', gpuIndices: [4] });
    await send(env, NODE, noWorkload);
    await send(env, NODE, noGpu);
    for (const subtaskId of ['st-no-workload', 'st-no-gpu']) {
      expect((await tail.waitFor('SubtaskFailed', (e) => e.data.subtaskId === subtaskId)).data).toMatchObject({ fault: 'platform', failureKind: 'agent' });
      expect(tail.all('SubtaskStarted', (e) => e.data.subtaskId === subtaskId)).toHaveLength(0);
    }
  });
});

describe('lease epochs on the node', () => {
  it('never starts a stale epoch, and stops the older run when a newer epoch arrives', async () => {
    const newer = runCommand({ subtaskId: 'st-fence', attempt: 2, leaseEpoch: 4, script: `${reportScript('fence-2', 'setInterval(() => {}, 1000)')}`, workload: { env: { OUTBOX: outbox } } });
    await send(env, NODE, newer);
    await tail.waitFor('SubtaskStarted', (e) => e.data.subtaskId === 'st-fence' && e.data.leaseEpoch === 4);
    const epoch4 = await seen('fence-2');
    const stale = runCommand({ subtaskId: 'st-fence', attempt: 1, leaseEpoch: 3, script: `${reportScript('fence-1')}`, workload: { env: { OUTBOX: outbox } } });
    await send(env, NODE, stale);
    const newest = runCommand({ subtaskId: 'st-fence', attempt: 3, leaseEpoch: 5, script: `${reportScript('fence-3', 'setInterval(() => {}, 1000)')}`, workload: { env: { OUTBOX: outbox } } });
    await send(env, NODE, newest);
    await seen('fence-3');
    await eventually(async () => !(await processRuns(epoch4.pid as number)), { message: 'the superseded run kept running' });
    expect(running.agent.runningKeys.filter((key) => key.startsWith('st-fence#'))).toEqual(['st-fence#3']);
    expect(tail.all('SubtaskStarted', (e) => e.data.subtaskId === 'st-fence').map((e) => e.data.leaseEpoch)).toEqual([4, 5]);
    await expect(readFile(join(outbox, 'fence-1.json'))).rejects.toThrow();
    // The superseded run is not reported: its placement was replaced.
    expect(tail.all('SubtaskFailed', (e) => e.data.subtaskId === 'st-fence')).toHaveLength(0);
    await send(env, NODE, stopCommand(newest));
    await eventually(() => !running.agent.runningKeys.includes('st-fence#3'));
  });
});

describe('running as another user', () => {
  it('switches to the configured uid and gid when the agent is root, and is refused otherwise', async () => {
    if (process.getuid?.() !== 0) {
      await expect(startAgent(env, agentConfig(env, host, { nodeId: 'gpu-host-user', workRoot: join(host.root, 'work-user'), runUid: 65534, runGid: 65534 }))).rejects.toThrow(/root/);
      return;
    }
    const other = await startAgent(env, agentConfig(env, host, { nodeId: 'gpu-host-user', workRoot: join(host.root, 'work-user'), runUid: 65534, runGid: 65534 }));
    try {
      const command = runCommand({ subtaskId: 'st-user', script: `${reportScript('user')}; require('fs').writeFileSync(process.env.FASTGPU_RESULT_PATH, String(process.getgid()))`, workload: { env: { OUTBOX: outbox } } });
      await send(env, 'gpu-host-user', command);
      expect((await seen('user')).uid).toBe(65534);
      await tail.waitFor('SubtaskCompleted', (e) => e.data.subtaskId === 'st-user');
    } finally {
      await other.stop();
    }
  });
});
