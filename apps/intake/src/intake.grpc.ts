import type { ModuleRef } from '@nestjs/core';
import { z } from 'zod';
import type { GrpcHandlers } from '@fastgpu/grpc';
import { submitJobRequest } from './jobs/jobs.schema';
import { JobsService } from './jobs/jobs.service';
import { requestLeaseBody, requestLeaseQuery } from './leases/leases.schema';
import { LeasesService } from './leases/leases.service';

/**
 * The gRPC SubmitJobRequest as the HTTP body: proto3 fields left at their default in the nested
 * Workload (empty lists, strings, maps, 0, false) are absent, and the 64-bit result cap arrives
 * as a decimal string. Then the same schema as HTTP checks it.
 */
function fromGrpcSubmission(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  const { workload, ...rest } = value as Record<string, unknown>;
  if (typeof workload !== 'object' || workload === null) return rest;
  const present = Object.entries(workload as Record<string, unknown>).filter(
    ([key, field]) => !key.startsWith('_') && field !== undefined && field !== '' && field !== 0 && field !== '0' && field !== false && !(Array.isArray(field) && field.length === 0) && !(key === 'env' && Object.keys(field as object).length === 0),
  );
  const normalized = Object.fromEntries(present.map(([key, field]) => [key, key === 'resultBytesMax' && typeof field === 'string' && /^\d{1,16}$/.test(field) ? Number(field) : field]));
  if (Array.isArray(normalized.secrets)) normalized.secrets = (normalized.secrets as Array<Record<string, unknown>>).map(({ env, secret }) => ({ env, secret }));
  return { ...rest, workload: normalized };
}
export const grpcSubmitJobRequest = z.preprocess(fromGrpcSubmission, submitJobRequest);

/** Intake's gRPC ports call the same services and schemas as its HTTP controllers. */
export function intakeGrpcHandlers(ref: Pick<ModuleRef, 'get'>): Partial<GrpcHandlers> {
  const jobs = ref.get(JobsService, { strict: false });
  const leases = ref.get(LeasesService, { strict: false });
  return {
    jobs: {
      submitSchema: grpcSubmitJobRequest,
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
