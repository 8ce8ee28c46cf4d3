import { lastHeartbeatOfEachNode, type Bus } from '@fastgpu/messaging';

/** How long one read of the nodes' last heartbeats may wait for them before it answers with those read. */
export const HEARTBEAT_READ_MS_MAX = 5_000;

/**
 * When the log last stored a heartbeat of each node (the stream's receipt time, not the node's
 * clock), in one read: an ordered consumer delivering the last message of each heartbeat subject
 * (the stream's subject count says how many), rather than a lookup per node. A node without a kept
 * heartbeat is absent.
 */
export async function lastHeartbeats(bus: Bus, nodeIds: readonly string[]): Promise<Map<string, number>> {
  const found = new Map<string, number>();
  const { streams, subjects } = bus.topology;
  const nodeOfSubject = new Map(nodeIds.map((nodeId) => [subjects.heartbeat(nodeId), nodeId]));
  const kept = (await bus.jsm.streams.info(streams.heartbeats)).state.num_subjects ?? 0;
  if (kept === 0 || nodeOfSubject.size === 0) return found;
  const consumer = await bus.js.consumers.get(streams.heartbeats, lastHeartbeatOfEachNode(bus.topology));
  const messages = await consumer.fetch({ max_messages: kept, expires: HEARTBEAT_READ_MS_MAX });
  for await (const m of messages) {
    const nodeId = nodeOfSubject.get(m.subject);
    if (nodeId !== undefined) found.set(nodeId, m.time.getTime());
    // Every subject's last message is delivered once the consumer has none pending (later ones are newer heartbeats).
    if (m.info.pending === 0) break;
  }
  return found;
}
