import { DeliverPolicy, type OrderedConsumerOptions } from '@nats-io/jetstream';
import type { Topology } from '@fastgpu/contracts';

/**
 * The consumer that reads the last heartbeat kept of every node (one message per node's subject,
 * oldest first), then every new one: what reliability's liveness loop reads after a restart, and
 * what the scheduler's fleet view reads once per request for each node's last heartbeat time.
 */
export function lastHeartbeatOfEachNode(topology: Topology): Partial<OrderedConsumerOptions> {
  return { deliver_policy: DeliverPolicy.LastPerSubject, filter_subjects: topology.subjects.heartbeatsAll };
}
