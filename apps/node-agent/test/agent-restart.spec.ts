/**
 * Proves a restarted node agent (a new agent on a new NATS connection, the same work root)
 * reports truthfully what it finds of the previous one's runs, from its state file and /proc:
 * a run still alive is adopted (same agent epoch, so the scheduler is not told the node lost its
 * work; it is in the heartbeats and its completion is reported later); a run whose process group
 * vanished while the agent was down is reported failed as `agent-restart`, a platform fault; a
 * run that ended while the agent was down is reported as it really ended. With
 * FASTGPU_AGENT_ON_RESTART=kill the live runs are killed and reported as `agent-restart`, then
 * the node keeps its epoch; and processes of runs the state file does not name (a lost
 * state file) are killed as orphans.
 */
import { access, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Heartbeat } from '@fastgpu/contracts';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { signalGroup } from '../src/runs/processes';
import { STATE_FILE } from '../src/runs/state-store';
import { agentConfig, EventTail, FakeHost, processRuns, runCommand, send, startAgent, type RunningAgent } from './agent-harness';

const NODE = 'gpu-host-restart';
let env: TestEnvironment;
let host: FakeHost;
let tail: EventTail;
let outbox: string;
const agents: RunningAgent[] = [];

beforeAll(async () => {
  env = await createTestEnvironment();
  host = await FakeHost.create();
  outbox = await host.directory('outbox');
  tail = new EventTail(env.bus);
  await tail.start();
});

afterAll(async () => {
  for (const agent of agents) await agent.stop().catch(() => undefined);
  await tail?.stop();
  await host?.cleanup();
  await env?.cleanup();
});

async function start(overrides: Parameters<typeof agentConfig>[2] = {}): Promise<RunningAgent> {
  const agent = await startAgent(env, agentConfig(env, host, { nodeId: NODE, ...overrides }));
  agents.push(agent);
  return agent;
}

/** A program that says it started, waits for `release-<name>` in the outbox, writes its result and exits 0. */
const waitingScript = (name: string): string =>
  `const fs = require('fs'); const out = process.env.OUTBOX;
   fs.writeFileSync(out + '/started-${name}', String(process.pid));
   const timer = setInterval(() => { if (fs.existsSync(out + '/release-${name}')) { clearInterval(timer); fs.writeFileSync(process.env.FASTGPU_RESULT_PATH, '${name} done'); } }, 50);`;

async function startedPid(name: string): Promise<number> {
  return Number(await eventually(() => readFile(join(outbox, `started-${name}`), 'utf8'), { message: `${name} did not start` }));
}

async function lastHeartbeat(): Promise<Heartbeat> {
  const message = await env.bus.jsm.streams.getMessage(env.bus.topology.streams.heartbeats, { last_by_subj: env.bus.topology.subjects.heartbeat(NODE) });
  return Heartbeat.parse(message!.json());
}

describe('an agent restart', () => {
  it('adopts what still runs, reports what vanished as agent-restart and what ended as it ended', async () => {
    const first = await start();
    const registered = await tail.waitFor('NodeRegistered', (e) => e.data.nodeId === NODE);
    const alive = runCommand({ subtaskId: 'st-alive', jobId: 'job-restart', script: waitingScript('alive'), workload: { env: { OUTBOX: outbox } } });
    const lost = runCommand({ subtaskId: 'st-lost', jobId: 'job-restart', script: waitingScript('lost'), workload: { env: { OUTBOX: outbox } } });
    const finished = runCommand({ subtaskId: 'st-finished', jobId: 'job-restart', script: waitingScript('finished'), workload: { env: { OUTBOX: outbox } } });
    for (const command of [alive, lost, finished]) await send(env, NODE, command);
    const alivePid = await startedPid('alive');
    await startedPid('lost');
    await startedPid('finished');
    await eventually(() => first.agent.runningKeys.length === 3);
    const lostGroup = first.agent.processGroupOf('st-lost#1')!;

    await first.stop();
    // While the agent is down: one run's whole group is killed (no exit status is left), another ends.
    signalGroup(lostGroup, 'SIGKILL');
    await writeFile(join(outbox, 'release-finished'), '');
    await eventually(() => access(join(host.root, 'work', 'runs', 'st-finished.1', 'status.json')).then(() => true), { message: 'the finished run left no status' });
    await eventually(async () => !(await processRuns(lostGroup)));

    const second = await start();
    expect(second.agent.agentEpoch).toBe(first.agent.agentEpoch);
    const vanished = await tail.waitFor('SubtaskFailed', (e) => e.data.subtaskId === 'st-lost');
    expect(vanished.data).toMatchObject({ fault: 'platform', failureKind: 'agent-restart', attempt: 1, leaseEpoch: 1 });
    await tail.waitFor('SubtaskCompleted', (e) => e.data.subtaskId === 'st-finished');
    expect(second.agent.runningKeys).toEqual(['st-alive#1']);
    await eventually(async () => (await lastHeartbeat()).running.some((r) => r.subtaskId === 'st-alive'), { message: 'the adopted run is not in the heartbeats' });
    expect((await lastHeartbeat()).agentEpoch).toBe(registered.data.agentEpoch);
    expect(await processRuns(alivePid)).toBe(true);

    await writeFile(join(outbox, 'release-alive'), '');
    await tail.waitFor('SubtaskCompleted', (e) => e.data.subtaskId === 'st-alive');
    // Work survived: no new registration (a new epoch would tell the scheduler the node lost it).
    expect(tail.all('NodeRegistered', (e) => e.data.nodeId === NODE)).toHaveLength(1);
    expect(tail.reports('st-alive').map((e) => e.type)).toEqual(['SubtaskStarted', 'SubtaskCompleted']);
    await second.stop();
  });

  it('with FASTGPU_AGENT_ON_RESTART=kill, kills what runs and reports it as agent-restart, keeping its epoch', async () => {
    const before = await start();
    const doomed = runCommand({ subtaskId: 'st-doomed', jobId: 'job-restart', script: waitingScript('doomed'), workload: { env: { OUTBOX: outbox } } });
    await send(env, NODE, doomed);
    const pid = await startedPid('doomed');
    await tail.waitFor('SubtaskStarted', (e) => e.data.subtaskId === 'st-doomed');
    const epochBefore = before.agent.agentEpoch;
    const registrations = tail.all('NodeRegistered', (e) => e.data.nodeId === NODE).length;
    await before.stop();

    const after = await start({ onRestart: 'kill' });
    expect(await processRuns(pid)).toBe(false);
    const failed = await tail.waitFor('SubtaskFailed', (e) => e.data.subtaskId === 'st-doomed');
    expect(failed.data).toMatchObject({ fault: 'platform', failureKind: 'agent-restart' });
    expect(failed.data.reason).toMatch(/killed/);
    // Its state names every run it had, each reported: no new epoch (which would also interrupt
    // whatever the scheduler placed here since the report).
    expect(after.agent.agentEpoch).toBe(epochBefore);
    expect((await lastHeartbeat()).agentEpoch).toBe(epochBefore);
    expect(tail.all('NodeRegistered', (e) => e.data.nodeId === NODE)).toHaveLength(registrations);
    await after.stop();
  });

  it('registers a new epoch when the host comes back with other GPUs and nothing running', async () => {
    const before = await start();
    const epochBefore = before.agent.agentEpoch;
    await before.stop();
    await host.setGpus([{}, {}]);
    try {
      const after = await start();
      const registration = await tail.waitFor('NodeRegistered', (e) => e.data.nodeId === NODE && e.data.agentEpoch > epochBefore);
      expect(registration.data.gpuCount).toBe(2);
      expect(after.agent.agentEpoch).toBe(registration.data.agentEpoch);
      await after.stop();
    } finally {
      await host.setGpus([{}, {}, {}, {}]);
    }
  });

  it('kills the processes of runs its state file does not name', async () => {
    const before = await start();
    const orphan = runCommand({ subtaskId: 'st-orphan', jobId: 'job-restart', script: waitingScript('orphan'), workload: { env: { OUTBOX: outbox } } });
    await send(env, NODE, orphan);
    const pid = await startedPid('orphan');
    const group = before.agent.processGroupOf('st-orphan#1')!;
    await before.stop();
    await rm(join(host.root, 'work', STATE_FILE));

    const after = await start();
    expect(await processRuns(pid)).toBe(false);
    expect(await processRuns(group)).toBe(false);
    await expect(access(join(host.root, 'work', 'runs', 'st-orphan.1'))).rejects.toThrow();
    expect(after.logs.some((line) => /orphan run st-orphan\.1/.test(line))).toBe(true);
    await after.stop();
  });
});
