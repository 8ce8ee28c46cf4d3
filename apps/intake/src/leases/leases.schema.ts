import { z } from 'zod';
import { capacityTypeSchema, GPU_MODELS_PER_JOB_MAX, gpuModelNameSchema, leaseView, priorityClassSchema, requestIdSchema } from '@fastgpu/contracts';
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

export { leaseView, type LeaseView } from '@fastgpu/contracts';

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
