import type { ModuleRef } from '@nestjs/core';
import type { GrpcHandlers } from '@fastgpu/grpc';
import { submitJobRequest } from './jobs/jobs.schema';
import { JobsService } from './jobs/jobs.service';
import { requestLeaseBody, requestLeaseQuery } from './leases/leases.schema';
import { LeasesService } from './leases/leases.service';

/** Intake's gRPC ports call the same services and schemas as its HTTP controllers. */
export function intakeGrpcHandlers(ref: Pick<ModuleRef, 'get'>): Partial<GrpcHandlers> {
  const jobs = ref.get(JobsService, { strict: false });
  const leases = ref.get(LeasesService, { strict: false });
  return {
    jobs: {
      submitSchema: submitJobRequest,
      submit: (principal, request, idempotencyKey) => jobs.submit(principal, request as never, idempotencyKey),
      get: (principal, jobId) => jobs.get(principal, jobId),
      cancel: (principal, jobId, reason) => jobs.cancel(principal, jobId, reason),
    },
    leases: {
      requestSchema: requestLeaseBody,
      querySchema: requestLeaseQuery,
      request: (principal, body, options) => leases.request(principal, body as never, options),
      get: (principal, leaseId) => leases.get(principal, leaseId),
      release: (principal, leaseId) => leases.release(principal, leaseId),
    },
  };
}
