import type { z } from 'zod';
import type { Principal } from '@fastgpu/auth';

/**
 * What the gRPC handlers call: the services the HTTP controllers call, passed in by the
 * composition root (libs never import apps). Method syntax keeps parameters bivariant, so the
 * apps' services (e.g. intake's JobsService) fit as they are.
 */
export interface JobRecord {
  jobId: string;
  tenantId: string;
  projectId: string;
  name: string | null;
  state: string;
  reason: string | null;
  submittedAt: string;
  completedAt: string | null;
  gpuMsObserved: number | null;
  spec: Record<string, unknown>;
  subtasks: Array<{
    subtaskId: string;
    index: number;
    gpus: number;
    runtimeMs: number;
    state: string;
    attempt: number;
    nodeId: string | null;
    gpuModel: string | null;
    placedAt: string | null;
    startedAt: string | null;
    endedAt: string | null;
    exitCode: number | null;
    reason: string | null;
  }>;
  scheduling?: Record<string, unknown>;
}

export interface JobsPort {
  /** The HTTP body schema of POST /v1/jobs: gRPC input is validated by the same zod schema. */
  submitSchema: z.ZodType;
  submit(principal: Principal, request: unknown, idempotencyKey?: string): Promise<{ job: JobRecord; created: boolean }>;
  get(principal: Principal, jobId: string): Promise<JobRecord>;
  cancel(principal: Principal, jobId: string, reason: string): Promise<JobRecord>;
}

export interface InvoicesPort {
  /** ListInvoicesRequest read into what the list takes (the HTTP query of GET /v1/invoices); a bad field is INVALID_ARGUMENT naming it. */
  listSchema: z.ZodType;
  /** One page as the ListInvoicesResponse message (typed summaries and the next cursor). */
  list(principal: Principal, query: unknown): Promise<Record<string, unknown>>;
  export(principal: Principal, invoiceId: string, format: 'json' | 'csv' | 'pdf'): Promise<{ contentType: string; content: Buffer | string }>;
}

export interface LeaseRecord {
  leaseId: string;
  tenantId: string;
  projectId: string;
  state: string;
  gpus: number;
  gpuModels: string[];
  capacityType: string;
  priorityClass: string;
  nodeId: string | null;
  gpuModel: string | null;
  gpuIndices: number[] | null;
  leaseEpoch: number | null;
  requestedAt: string;
  grantedAt: string | null;
  releasedAt: string | null;
  releaseReason: string | null;
  gpuMs: number;
}

export interface LeasesPort {
  /** The HTTP body and query schemas of POST /v1/leases. */
  requestSchema: z.ZodType;
  querySchema: z.ZodType;
  request(principal: Principal, body: unknown, options: { idempotencyKey?: string; waitMs: number }): Promise<LeaseRecord>;
  get(principal: Principal, leaseId: string): Promise<LeaseRecord>;
  release(principal: Principal, leaseId: string): Promise<LeaseRecord>;
}

export interface GrpcHandlers {
  jobs?: JobsPort;
  leases?: LeasesPort;
  invoices?: InvoicesPort;
}
