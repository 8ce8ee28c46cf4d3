import type { Bus } from '@fastgpu/messaging';

/** Heartbeat lookups in flight at once while reading the fleet (one per node). */
export const HEARTBEAT_READS_IN_FLIGHT_MAX = 64;

/**
 * When the log last stored a heartbeat of each node (the stream's receipt time, not the node's
 * clock): the last message on each node's heartbeat subject, read with the server's
 * last-by-subject lookup, so no consumer is made. A node without a kept heartbeat is absent.
 */
export async function lastHeartbeats(bus: Bus, nodeIds: readonly string[]): Promise<Map<string, number>> {
  const found = new Map<string, number>();
  const { streams, subjects } = bus.topology;
  for (let start = 0; start < nodeIds.length; start += HEARTBEAT_READS_IN_FLIGHT_MAX) {
    await Promise.all(
      nodeIds.slice(start, start + HEARTBEAT_READS_IN_FLIGHT_MAX).map(async (nodeId) => {
        const stored = await bus.jsm.streams.getMessage(streams.heartbeats, { last_by_subj: subjects.heartbeat(nodeId) });
        if (stored) found.set(nodeId, stored.time.getTime());
      }),
    );
  }
  return found;
}
