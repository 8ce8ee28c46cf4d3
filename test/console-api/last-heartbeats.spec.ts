/**
 * Proves the fleet view's read of the nodes' last heartbeats on a real JetStream: one read gives,
 * for each node asked about, the receipt time of its newest kept heartbeat (not an older one), no
 * time for a node without a kept heartbeat, and nothing for a node it was not asked about; an
 * empty heartbeat stream answers at once with no times.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnvironment, type TestEnvironment } from '@fastgpu/testing';
import { lastHeartbeats } from '../../apps/scheduler/src/fleet/last-heartbeats';

let env: TestEnvironment;

beforeAll(async () => {
  env = await createTestEnvironment();
});

afterAll(async () => {
  await env?.cleanup();
});

async function storedTime(nodeId: string): Promise<number> {
  const stored = await env.bus.jsm.streams.getMessage(env.bus.topology.streams.heartbeats, { last_by_subj: env.bus.topology.subjects.heartbeat(nodeId) });
  return stored!.time.getTime();
}

describe('lastHeartbeats', () => {
  it('answers no times while no heartbeat is kept', async () => {
    expect(await lastHeartbeats(env.bus, ['n1', 'n2'])).toEqual(new Map());
  });

  it("gives each node's newest kept heartbeat, and none for a silent or unasked node", async () => {
    const { subjects } = env.bus.topology;
    const beat = (nodeId: string) => env.bus.js.publish(subjects.heartbeat(nodeId), JSON.stringify({ nodeId }));
    for (let i = 0; i < 3; i++) {
      for (const nodeId of ['n1', 'n2', 'n3']) await beat(nodeId);
    }
    await beat('n1');
    const found = await lastHeartbeats(env.bus, ['n1', 'n2', 'silent']);
    expect([...found.keys()].sort()).toEqual(['n1', 'n2']);
    expect(found.get('n1')).toBe(await storedTime('n1'));
    expect(found.get('n2')).toBe(await storedTime('n2'));
  });
});
