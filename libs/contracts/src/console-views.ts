import { z } from 'zod';

/**
 * Answers of the API that the browser console reads, as zod schemas: the routes answer and
 * document them (OpenAPI) with these, and the console derives its types from them (a type-only
 * import, so none of this is bundled). Only zod here: the console's build can read this file.
 */

/** A lease as GET/POST/DELETE /v1/leases answer it (apps/intake). */
export const leaseView = z.object({
  leaseId: z.string(),
  tenantId: z.string(),
  projectId: z.string(),
  state: z.enum(['requested', 'granted', 'releasing', 'released']),
  gpus: z.number(),
  gpuModels: z.array(z.string()),
  capacityType: z.string(),
  priorityClass: z.string(),
  nodeId: z.string().nullable(),
  gpuModel: z.string().nullable(),
  gpuIndices: z.array(z.number()).nullable(),
  leaseEpoch: z.number().nullable(),
  requestedAt: z.string(),
  grantedAt: z.string().nullable(),
  releasedAt: z.string().nullable(),
  releaseReason: z.string().nullable(),
  /** GPU-milliseconds billed: gpus × (released − granted), or so far while granted. */
  gpuMs: z.number(),
});
export type LeaseView = z.infer<typeof leaseView>;

/** The fleet as GET /v1/fleet answers it (apps/scheduler): each node with its state and, per GPU index, who holds it. */
const count = z.number().int().nonnegative();

export const fleetHolderSchema = z.object({
  kind: z.enum(['subtask', 'lease']),
  tenantId: z.string(),
  jobId: z.string().nullable().describe('The job of a sub-task; null for a lease'),
  subtaskId: z.string().nullable().describe('null for a lease'),
  leaseId: z.string().nullable().describe('The lease holding the GPU; null for a sub-task'),
  attempt: count,
  since: z.string().describe('When the sub-task started (placed, until it reports started) or the lease was granted, ISO 8601'),
});

export const fleetResponse = z.object({
  nodes: z.array(
    z.object({
      nodeId: z.string(),
      gpuModel: z.string(),
      state: z.enum(['healthy', 'draining', 'drained', 'lost']).describe('healthy: takes placements; draining: drained with work still running; drained: drained and empty; lost: missed its heartbeats'),
      lastHeartbeat: z.string().nullable().describe('When the log last stored a heartbeat of the node (null: none kept, heartbeats are kept 24 h)'),
      gpuCount: count,
      freeGpus: count,
      labels: z.record(z.string(), z.string()),
      gpus: z.array(z.object({ index: count, holder: fleetHolderSchema.nullable() })),
    }),
  ),
});

export type FleetView = z.output<typeof fleetResponse>;
