import { z } from 'zod';
import { capacityTypeSchema, GPU_MODELS_PER_JOB_MAX, gpuModelNameSchema, priorityClassSchema, requestIdSchema } from '@fastgpu/contracts';
import { cursorInstantMs, nextCursorSchema, pageParam } from '@fastgpu/http';

export const LEASE_GPUS_MAX = 64;
/** Longest a POST /v1/leases waits for the grant before answering 202 with the lease still requested. */
export const LEASE_WAIT_MS_MAX = 30_000;

export const requestLeaseBody = z.strictObject({
  projectId: requestIdSchema,
  /** Allowed GPU models in order of preference (the same names and bound as a job's). */
  gpuModels: z.array(gpuModelNameSchema).min(1).max(GPU_MODELS_PER_JOB_MAX),
  gpus: z.number().int().min(1).max(LEASE_GPUS_MAX),
  capacityType: capacityTypeSchema.optional(),
  priorityClass: priorityClassSchema.default('standard'),
});
export type RequestLeaseBody = z.infer<typeof requestLeaseBody>;

export const requestLeaseQuery = z.object({ waitMs: z.coerce.number().int().min(0).max(LEASE_WAIT_MS_MAX).default(0) });

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

/** The list's name in its cursors: a cursor of another list is refused. */
export const LEASES_LIST = 'leases';

/**
 * `GET /v1/leases`: newest first by (requestedAt, leaseId), in pages (libs/http cursor.ts). A
 * tenant key lists its own tenant's leases only; a platform key any tenant's (`tenantId`) or all.
 */
export const listLeasesQuery = z.object({
  state: leaseView.shape.state.optional(),
  limit: pageParam.limit(),
  cursor: pageParam.cursor(LEASES_LIST, cursorInstantMs).optional(),
  tenantId: requestIdSchema.optional().describe("Platform roles: this tenant's leases only (a tenant key always lists its own)"),
});
export type ListLeasesQuery = z.infer<typeof listLeasesQuery>;

export const leasesPage = z.object({ leases: z.array(leaseView), nextCursor: nextCursorSchema });
