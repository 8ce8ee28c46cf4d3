/**
 * A small TypeScript client for FastGPU's HTTP API: submit and read jobs, and the seed's
 * `allocate_gpus(num_gpus=4)` / `release_gpus()` as leases. It has no dependencies beyond
 * `fetch`, so it runs in Node 20+, Deno, Bun and browsers.
 */
export interface FastGpuClientOptions {
  /** e.g. http://127.0.0.1:8080 */
  baseUrl: string;
  /** A tenant API key (`fgk_…`). */
  apiKey: string;
  fetch?: typeof fetch;
  /** Per request (default 35 s: a lease POST may wait up to 30 s for its grant). */
  requestTimeoutMs?: number;
}

export type PriorityClass = 'high' | 'standard' | 'preemptible';

export interface SubmitJobRequest {
  projectId: string;
  name?: string;
  gpuModels: string[];
  gpusPerSubtask: number;
  subtaskCount?: number;
  totalGpuHours?: string | number;
  runtimeSeconds: number;
  priorityClass?: PriorityClass;
  priority?: number;
  preemptible?: boolean;
  gang?: boolean;
  gangTopologyKey?: string;
  capacityType?: 'on-demand' | 'preemptible' | 'reserved';
  deadline?: string;
  dependsOn?: Array<{ jobId: string; condition: 'afterSuccess' | 'afterAny' }>;
  retryPolicy?: { maxAttempts: number; retryOnExitCodes: number[] };
}

export interface Job {
  jobId: string;
  state: string;
  reason: string | null;
  subtasks: Array<{ subtaskId: string; index: number; state: string; nodeId: string | null; attempt: number }>;
  scheduling?: Record<string, unknown>;
  [field: string]: unknown;
}

export interface Lease {
  leaseId: string;
  state: 'requested' | 'granted' | 'releasing' | 'released';
  gpus: number;
  nodeId: string | null;
  gpuModel: string | null;
  gpuIndices: number[] | null;
  grantedAt: string | null;
  releasedAt: string | null;
  gpuMs: number;
  [field: string]: unknown;
}

export interface AllocateGpusOptions {
  /** How many GPUs (the seed's num_gpus). */
  numGpus: number;
  gpuModels: string[];
  projectId: string;
  priorityClass?: PriorityClass;
  capacityType?: 'on-demand' | 'preemptible' | 'reserved';
  /** Give up after this long (default 60 s); the pending request is then released. */
  timeoutMs?: number;
  /** Makes a retried allocation the same lease. */
  idempotencyKey?: string;
}

/** An HTTP error from FastGPU: status, machine code, message and the offending field. */
export class FastGpuError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'FastGpuError';
  }
}

/** Longest single wait the lease endpoint allows; longer waits are polled. */
const LEASE_WAIT_MS_MAX = 30_000;
const POLL_MS = 250;

export class FastGpuClient {
  private readonly fetch: typeof fetch;
  private readonly baseUrl: string;

  constructor(private readonly options: FastGpuClientOptions) {
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.baseUrl = options.baseUrl.replace(/\/$/, '');
  }

  /**
   * POST /v1/jobs. The idempotency key is required: choose one per job you mean to submit (e.g. a
   * UUID stored with your own record) and send the same one when you retry, so a retry returns
   * the same job instead of submitting a second one.
   */
  submitJob(job: SubmitJobRequest, options: { idempotencyKey: string }): Promise<Job> {
    return this.request<Job>('POST', '/v1/jobs', job, { 'idempotency-key': options.idempotencyKey });
  }

  getJob(jobId: string): Promise<Job> {
    return this.request<Job>('GET', `/v1/jobs/${encodeURIComponent(jobId)}`);
  }

  cancelJob(jobId: string): Promise<Job> {
    return this.request<Job>('DELETE', `/v1/jobs/${encodeURIComponent(jobId)}`);
  }

  /** Whether and where a job would be placed now, without submitting it (the same body and limits as submitJob). */
  dryRun(job: SubmitJobRequest): Promise<Record<string, unknown>> {
    return this.request('POST', '/v1/jobs:dry-run', job);
  }

  /**
   * allocate_gpus(num_gpus): asks for a lease and waits until it is granted; resolves with the
   * node and GPU indices. Billing runs per GPU-millisecond from the grant until releaseGpus.
   */
  async allocateGpus(options: AllocateGpusOptions): Promise<Lease> {
    const deadline = Date.now() + (options.timeoutMs ?? 60_000);
    const body = { projectId: options.projectId, gpuModels: options.gpuModels, gpus: options.numGpus, ...(options.priorityClass ? { priorityClass: options.priorityClass } : {}), ...(options.capacityType ? { capacityType: options.capacityType } : {}) };
    const waitMs = Math.max(0, Math.min(LEASE_WAIT_MS_MAX, deadline - Date.now()));
    let lease = await this.request<Lease>('POST', `/v1/leases?waitMs=${waitMs}`, body, options.idempotencyKey ? { 'idempotency-key': options.idempotencyKey } : {});
    while (lease.state === 'requested' && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      lease = await this.getLease(lease.leaseId);
    }
    if (lease.state !== 'granted') {
      if (lease.state === 'requested') await this.releaseGpus(lease.leaseId).catch(() => undefined);
      throw new FastGpuError(408, 'lease_timeout', `lease ${lease.leaseId} was not granted in time (state ${lease.state})`);
    }
    return lease;
  }

  /** release_gpus(): gives a lease's GPUs back; billing stops at the release. */
  releaseGpus(lease: string | Pick<Lease, 'leaseId'>): Promise<Lease> {
    const leaseId = typeof lease === 'string' ? lease : lease.leaseId;
    return this.request<Lease>('DELETE', `/v1/leases/${encodeURIComponent(leaseId)}`);
  }

  getLease(leaseId: string): Promise<Lease> {
    return this.request<Lease>('GET', `/v1/leases/${encodeURIComponent(leaseId)}`);
  }

  private async request<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.options.requestTimeoutMs ?? 35_000);
    try {
      const response = await this.fetch(`${this.baseUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${this.options.apiKey}`, accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
        body: body !== undefined ? JSON.stringify(body) : undefined,
        signal: controller.signal,
      });
      const text = await response.text();
      const parsed: unknown = text ? JSON.parse(text) : undefined;
      if (!response.ok) {
        const error = (parsed as { error?: { code?: string; message?: string; field?: string } } | undefined)?.error;
        throw new FastGpuError(response.status, error?.code ?? 'http_error', error?.message ?? `${method} ${path} answered ${response.status}`, error?.field);
      }
      return parsed as T;
    } finally {
      clearTimeout(timer);
    }
  }
}

export function createClient(options: FastGpuClientOptions): FastGpuClient {
  return new FastGpuClient(options);
}
