/**
 * Proves the agent reads XID errors from the kernel log for real, on real NATS and PostgreSQL
 * with reliability running: the NVIDIA driver's `NVRM: Xid` lines appended to the log the agent
 * follows (FASTGPU_AGENT_KMSG, a regular file here, /dev/kmsg on a host) raise the XID count of
 * the GPU with that PCI address (nvidia-smi's `pci.bus_id`) in the next heartbeat; lines from
 * before the agent started, application XIDs, other devices' XIDs and other lines do not count;
 * past reliability's threshold the node is drained, naming the GPU. An agent that cannot read
 * the log says so once and leaves the count out of its heartbeats rather than reporting 0.
 */
import 'reflect-metadata';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Heartbeat } from '@fastgpu/contracts';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { ReliabilityEngine } from '../../reliability/src/reliability.engine';
import { ReliabilityModule } from '../../reliability/src/reliability.module';
import { agentConfig, EventTail, FakeHost, startAgent, type RunningAgent } from './agent-harness';

const NODE = 'gpu-host-xid';
const BLIND_NODE = 'gpu-host-xid-blind';
const HEARTBEAT_MS = 200;
let env: TestEnvironment;
let runtime: OwnedRuntime;
let started: StartedApp;
let host: FakeHost;
let tail: EventTail;
const agents: RunningAgent[] = [];

async function lastBeat(nodeId: string): Promise<Heartbeat | undefined> {
  const message = await env.bus.jsm.streams.getMessage(env.bus.topology.streams.heartbeats, { last_by_subj: env.bus.topology.subjects.heartbeat(nodeId) }).catch(() => undefined);
  return message ? Heartbeat.parse(message.json()) : undefined;
}

beforeAll(async () => {
  env = await createTestEnvironment({ heartbeatIntervalMs: HEARTBEAT_MS, missedHeartbeatsBeforeLost: 25 });
  runtime = await createRuntime(env.config);
  started = await startServices(runtime, [{ name: 'reliability', module: ReliabilityModule.withOptions({ slaAutoClose: false }) }], { port: 0, logger: false });
  host = await FakeHost.create();
  tail = new EventTail(env.bus);
  await tail.start();
});

afterAll(async () => {
  for (const agent of agents) await agent.stop();
  await tail?.stop();
  await started?.close();
  await runtime?.close();
  await host?.cleanup();
  await env?.cleanup();
});

describe('XID errors from the kernel log', () => {
  it('counts the driver\'s XIDs per GPU since the agent started and drains the node past the threshold', async () => {
    // Logged before the agent started (an earlier incident, already dealt with): not counted.
    await host.appendKernelLog(['[ 10.000001] NVRM: Xid (PCI:0000:0f:00): 79, pid=99, name=python, GPU has fallen off the bus.']);
    const agent = await startAgent(env, agentConfig(env, host, { nodeId: NODE, heartbeatIntervalMs: HEARTBEAT_MS }));
    agents.push(agent);
    const engine = started.app.get(ReliabilityEngine);
    await eventually(() => engine.monitor.caughtUp && engine.monitor.liveness.nodes.has(NODE), { message: 'reliability did not see the node' });
    const first = await eventually(() => lastBeat(NODE));
    expect(first.gpus.map((gpu) => gpu.xidErrors)).toEqual([0, 0, 0, 0]);

    await host.appendKernelLog([
      '[ 8412.345678] NVRM: Xid (PCI:0000:0f:00): 79, pid=1234, name=python, GPU has fallen off the bus.',
      '[ 8412.345700] NVRM: GPU at PCI:0000:0f:00: GPU-0a1b2c3d-1111-4111-8111-111111111111',
      "[ 8413.000000] NVRM: Xid (PCI:0000:0f:00): 48, pid='<unknown>', name=<unknown>, An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 6, subpartition 0.",
      // A user's program faulting (an application XID), another device's XID, another driver: not counted for GPU 1.
      '[ 8414.000000] NVRM: Xid (PCI:0000:0f:00): 31, pid=2497, name=python3, Ch 00000008, intr 10000000. MMU Fault: ENGINE GRAPHICS GPCCLIENT_T1_0 faulted @ 0x7f1e_4c000000.',
      '[ 8415.000000] NVRM: Xid (PCI:0000:b3:00): 79, GPU has fallen off the bus.',
      '[ 8416.000000] usb 1-1: new high-speed USB device number 2 using xhci_hcd',
    ]);
    const counted = await eventually(async () => {
      const beat = await lastBeat(NODE);
      return beat?.gpus[1]?.xidErrors === 2 ? beat : undefined;
    }, { message: 'the XIDs did not reach a heartbeat' });
    expect(counted.gpus.map((gpu) => gpu.xidErrors)).toEqual([0, 2, 0, 0]);
    expect(agent.logs.filter((line) => line.startsWith('warn: XID 79 on the GPU at PCI 0000:0f:00'))).toHaveLength(1);
    await new Promise((r) => setTimeout(r, HEARTBEAT_MS * 3));
    // Reliability's default threshold is 4 XID errors: 2 do not drain.
    expect(tail.all('NodeDrained', (e) => e.data.nodeId === NODE)).toHaveLength(0);

    // The older format (no `PCI:`, no pid/name) counts too.
    await host.appendKernelLog(['NVRM: Xid (0000:0f:00): 62, Internal micro-controller halt', '[ 8420.000000] NVRM: Xid (PCI:0000:0f:00): 79, GPU has fallen off the bus.']);
    const drained = await tail.waitFor('NodeDrained', (e) => e.data.nodeId === NODE);
    expect(drained.data).toMatchObject({ automatic: true });
    expect(drained.data.reason).toMatch(/^gpu 1: 4 XID errors \(threshold 4\)/);
  });

  it('leaves the count out, rather than reporting 0, when the kernel log cannot be read', async () => {
    const agent = await startAgent(env, agentConfig(env, host, { nodeId: BLIND_NODE, heartbeatIntervalMs: HEARTBEAT_MS, workRoot: join(host.root, 'work-blind'), kmsg: join(host.root, 'no-such-log') }));
    agents.push(agent);
    const beat = await eventually(() => lastBeat(BLIND_NODE));
    expect(beat.gpus).toHaveLength(4);
    for (const gpu of beat.gpus) expect(gpu).not.toHaveProperty('xidErrors');
    await new Promise((r) => setTimeout(r, HEARTBEAT_MS * 2));
    expect(agent.logs.filter((line) => line.startsWith('warn: XID errors are not read'))).toHaveLength(1);
    expect(tail.all('NodeDrained', (e) => e.data.nodeId === BLIND_NODE)).toHaveLength(0);
  });
});
