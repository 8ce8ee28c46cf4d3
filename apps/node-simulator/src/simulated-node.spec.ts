/**
 * Proves the simulated node speaks the node protocol on real NATS: it registers, runs a
 * RunSubtask command for runtime × speed and reports start and completion with the command's
 * attempt and lease epoch, sends heartbeats listing its work, and stops work on StopSubtask.
 * A RunSubtask that comes again after its run ended does not run it twice, and one stored before
 * the node registered again (its restart ended that placement) does not run. A lease's GPUs are
 * held from AttachLease until a DetachLease of the same epoch (an older epoch's detach changes
 * nothing).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeEvent, Heartbeat, type DomainEvent, type NodeCommand } from '@fastgpu/contracts';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { SimulatedNode } from './simulated-node';

let env: TestEnvironment;
let node: SimulatedNode;

async function events(): Promise<DomainEvent[]> {
  const consumer = await env.bus.js.consumers.get(env.bus.topology.streams.events);
  const info = await env.bus.jsm.streams.info(env.bus.topology.streams.events);
  const out: DomainEvent[] = [];
  if (info.state.messages === 0) return out;
  const batch = await consumer.fetch({ max_messages: info.state.messages, expires: 2000 });
  for await (const m of batch) {
    const decoded = decodeEvent(m.data);
    if (decoded.ok) out.push(decoded.event);
    if (m.info.pending === 0) break;
  }
  return out;
}

async function command(cmd: NodeCommand): Promise<void> {
  await env.bus.js.publish(env.bus.topology.subjects.command('n1'), JSON.stringify(cmd), { msgID: cmd.commandId });
}

beforeAll(async () => {
  env = await createTestEnvironment();
  node = new SimulatedNode(env.bus, { nodeId: 'n1', gpuModel: 'a100', gpuCount: 8, gpuMemoryGb: 80 }, { speed: 0.001, heartbeatIntervalMs: 100 });
  await node.start();
});

afterAll(async () => {
  await node?.stop();
  await env?.cleanup();
});

describe('simulated node', () => {
  it('registers and runs a sub-task, reporting with its attempt and lease epoch', async () => {
    await command({ kind: 'RunSubtask', commandId: 'c1', jobId: 'j1', tenantId: 't1', subtaskId: 'j1-0', attempt: 2, leaseEpoch: 7, gpuIndices: [0, 1], runtimeMs: 60_000, issuedAt: new Date().toISOString() });
    const all = await eventually(async () => {
      const list = await events();
      return list.some((e) => e.type === 'SubtaskCompleted') ? list : undefined;
    });
    expect(all.map((e) => e.type)).toEqual(['NodeRegistered', 'SubtaskStarted', 'SubtaskCompleted']);
    const started = all[1] as DomainEvent<'SubtaskStarted'>;
    const completed = all[2] as DomainEvent<'SubtaskCompleted'>;
    expect(completed.data).toMatchObject({ subtaskId: 'j1-0', attempt: 2, leaseEpoch: 7, nodeId: 'n1', exitCode: 0 });
    // 60 s × 0.001 = 60 ms of simulated run time (timers may fire a little late, never early).
    expect(Date.parse(completed.data.endedAt) - Date.parse(started.data.startedAt)).toBeGreaterThanOrEqual(55);
  });

  it('does not run an attempt again when its RunSubtask comes again after the run ended', async () => {
    // The scheduler sends a placement's command again while no start is in the log; past the
    // commands stream's duplicate window that is a new message (another Nats-Msg-Id here).
    const again = { kind: 'RunSubtask', commandId: 'c1', jobId: 'j1', tenantId: 't1', subtaskId: 'j1-0', attempt: 2, leaseEpoch: 7, gpuIndices: [0, 1], runtimeMs: 3_600_000_000, issuedAt: new Date().toISOString() } as const;
    await env.bus.js.publish(env.bus.topology.subjects.command('n1'), JSON.stringify(again), { msgID: 'c1-again' });
    // Commands are handled in order: once the next one runs, the repeat has been handled.
    await command({ kind: 'RunSubtask', commandId: 'c1-marker', jobId: 'j9', tenantId: 't1', subtaskId: 'j9-0', attempt: 1, leaseEpoch: 8, gpuIndices: [5], runtimeMs: 3_600_000_000, issuedAt: new Date().toISOString() });
    await eventually(() => node.runningSubtasks.includes('j9-0#1'));
    expect(node.runningSubtasks).toEqual(['j9-0#1']);
    await command({ kind: 'StopSubtask', commandId: 'c1-marker-stop', subtaskId: 'j9-0', attempt: 1, leaseEpoch: 8, reason: 'test', issuedAt: new Date().toISOString() });
    await eventually(() => node.runningSubtasks.length === 0);
  });

  it('sends heartbeats that list running work, and stops work on StopSubtask', async () => {
    await command({ kind: 'RunSubtask', commandId: 'c2', jobId: 'j2', tenantId: 't1', subtaskId: 'j2-0', attempt: 1, leaseEpoch: 9, gpuIndices: [3], runtimeMs: 3_600_000_000, issuedAt: new Date().toISOString() });
    await eventually(() => node.runningSubtasks.includes('j2-0#1'));
    const hbConsumer = await env.bus.js.consumers.get(env.bus.topology.streams.heartbeats, { opt_start_time: new Date().toISOString(), deliver_policy: 'by_start_time' as never });
    const beat = await eventually(async () => {
      const m = await hbConsumer.next({ expires: 1000 });
      if (!m) return undefined;
      const hb = Heartbeat.parse(m.json());
      return hb.running.length ? hb : undefined;
    });
    expect(beat.running).toEqual([{ subtaskId: 'j2-0', attempt: 1, leaseEpoch: 9 }]);
    expect(beat.gpus[3]!.utilizationPercent).toBeGreaterThan(0);
    await command({ kind: 'StopSubtask', commandId: 'c3', subtaskId: 'j2-0', attempt: 1, leaseEpoch: 9, reason: 'preempted', issuedAt: new Date().toISOString() });
    await eventually(() => node.runningSubtasks.length === 0);
  });

  it('holds a lease from AttachLease to DetachLease of the same epoch, busy in its heartbeats', async () => {
    const issuedAt = new Date().toISOString();
    await command({ kind: 'AttachLease', commandId: 'a1', leaseId: 'L1', tenantId: 't1', leaseEpoch: 11, gpuIndices: [4, 5], issuedAt });
    await eventually(() => node.attachedLeases.has('L1'));
    expect(node.attachedLeases.get('L1')).toEqual([4, 5]);
    const beat = await eventually(async () => {
      const hbConsumer = await env.bus.js.consumers.get(env.bus.topology.streams.heartbeats, { opt_start_time: new Date().toISOString(), deliver_policy: 'by_start_time' as never });
      const m = await hbConsumer.next({ expires: 1000 });
      return m ? Heartbeat.parse(m.json()) : undefined;
    });
    expect(beat.gpus.filter((g) => g.utilizationPercent > 0).map((g) => g.index)).toEqual([4, 5]);
    // A detach from an older epoch (a lease that was re-granted since) leaves the lease attached.
    await command({ kind: 'DetachLease', commandId: 'd0', leaseId: 'L1', leaseEpoch: 10, reason: 'stale', issuedAt });
    // Commands are handled in order: once L2 is attached, the stale detach has been handled.
    await command({ kind: 'AttachLease', commandId: 'a2', leaseId: 'L2', tenantId: 't1', leaseEpoch: 12, gpuIndices: [6], issuedAt });
    await eventually(() => node.attachedLeases.has('L2'));
    expect(node.attachedLeases.get('L1')).toEqual([4, 5]);
    await command({ kind: 'DetachLease', commandId: 'd1', leaseId: 'L1', leaseEpoch: 11, reason: 'released by the tenant', issuedAt });
    await eventually(() => !node.attachedLeases.has('L1'));
    expect([...node.attachedLeases.keys()]).toEqual(['L2']);
  });

  it('after a restart, ignores work placed before it registered again (the registration ended it)', async () => {
    await node.stop();
    // Stored while the agent is down: its registration at start ends every run placed before it.
    await command({ kind: 'RunSubtask', commandId: 'before-restart', jobId: 'j7', tenantId: 't1', subtaskId: 'j7-0', attempt: 1, leaseEpoch: 20, gpuIndices: [7], runtimeMs: 3_600_000_000, issuedAt: new Date().toISOString() });
    await node.start();
    await command({ kind: 'RunSubtask', commandId: 'after-restart', jobId: 'j8', tenantId: 't1', subtaskId: 'j8-0', attempt: 1, leaseEpoch: 21, gpuIndices: [6], runtimeMs: 3_600_000_000, issuedAt: new Date().toISOString() });
    await eventually(() => node.runningSubtasks.includes('j8-0#1'));
    expect(node.runningSubtasks).toEqual(['j8-0#1']);
  });
});
