import { z } from 'zod';
import { multiLineText } from './text';

/**
 * The node agent protocol (documented in docs/node-protocol.md). Commands go to
 * `<prefix>.cmd.<nodeId>` (COMMANDS stream); heartbeats come from `<prefix>.hb.<nodeId>`
 * (HEARTBEATS stream); lifecycle reports are domain events on `<prefix>.evt.agent.node.<nodeId>`.
 */
const id = z.string().min(1).max(128).regex(/^[A-Za-z0-9_-]+$/);
const instant = z.iso.datetime({ offset: false });
// Free text follows text.ts like the events' (a stop reason often repeats an event's reason).

export const RunSubtaskCommand = z.object({
  kind: z.literal('RunSubtask'),
  commandId: id,
  jobId: id,
  tenantId: id,
  subtaskId: id,
  attempt: z.number().int().positive(),
  leaseEpoch: z.number().int().positive(),
  gpuIndices: z.array(z.number().int().nonnegative()),
  runtimeMs: z.number().int().positive(),
  issuedAt: instant,
});
export const StopSubtaskCommand = z.object({
  kind: z.literal('StopSubtask'),
  commandId: id,
  subtaskId: id,
  attempt: z.number().int().positive(),
  leaseEpoch: z.number().int().positive(),
  reason: multiLineText(500),
  issuedAt: instant,
});
/** A lease was granted on this node: its GPUs are the tenant's until DetachLease (no work is run for it). */
export const AttachLeaseCommand = z.object({
  kind: z.literal('AttachLease'),
  commandId: id,
  leaseId: id,
  tenantId: id,
  leaseEpoch: z.number().int().positive(),
  gpuIndices: z.array(z.number().int().nonnegative()),
  issuedAt: instant,
});
/** The lease ended (released, preempted, or its node lost): the node takes its GPUs back. */
export const DetachLeaseCommand = z.object({
  kind: z.literal('DetachLease'),
  commandId: id,
  leaseId: id,
  leaseEpoch: z.number().int().positive(),
  reason: multiLineText(500),
  issuedAt: instant,
});
export const NodeCommand = z.discriminatedUnion('kind', [RunSubtaskCommand, StopSubtaskCommand, AttachLeaseCommand, DetachLeaseCommand]);
export type NodeCommand = z.infer<typeof NodeCommand>;

export const GpuSample = z.object({
  index: z.number().int().nonnegative(),
  utilizationPercent: z.number().min(0).max(100),
  memoryUsedMb: z.number().int().nonnegative(),
  temperatureC: z.number().min(-20).max(150),
  eccErrors: z.number().int().nonnegative(),
  xidErrors: z.number().int().nonnegative(),
});
export const Heartbeat = z.object({
  nodeId: id,
  agentEpoch: z.number().int().positive(),
  sentAt: instant,
  gpus: z.array(GpuSample).max(64),
  running: z.array(z.object({ subtaskId: id, attempt: z.number().int().positive(), leaseEpoch: z.number().int().positive() })).max(64),
});
export type Heartbeat = z.infer<typeof Heartbeat>;
