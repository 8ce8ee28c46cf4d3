/**
 * A small TypeScript client for FastGPU's HTTP API: submit, wait for and read jobs, follow their
 * logs and download their results, and the seed's `allocate_gpus(num_gpus=4)` / `release_gpus()`
 * as leases. It has no dependencies beyond
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
  /** What each sub-task runs on a node agent (docs/node-agent.md). */
  workload?: Workload;
}

/**
 * A job's workload: `command` is argv (no shell unless `shell: true`, then one script for
 * /bin/sh -c). Each sub-task sees FASTGPU_SUBTASK_INDEX, FASTGPU_SUBTASK_COUNT, FASTGPU_INPUT
 * (its input item, or with `inputsPerSubtask` a JSON array of its items) and FASTGPU_RESULT_PATH.
 */
export interface Workload {
  command: string[];
  shell?: boolean;
  env?: Record<string, string>;
  /** By name: the agent reads the value on its host; it never travels. */
  secrets?: Array<{ env: string; secret: string }>;
  workingDirectory?: string;
  timeoutSeconds?: number;
  /** One item per sub-task (the sub-task count follows), or `inputsPerSubtask` per sub-task. */
  inputs?: string[];
  inputsPerSubtask?: number;
  resultPath?: string;
  resultBytesMax?: number;
  /** Built when every sub-task succeeded: concat (bytes in sub-task order), jsonl (JSON Lines in sub-task order), none. */
  aggregate?: 'concat' | 'jsonl' | 'none';
}

/** One message of a job's logs (GET /v1/jobs/{id}/logs): `id` resumes after it. */
export interface LogEntry {
  id: number;
  subtask: number;
  attempt: number;
  kind: 'stdout' | 'stderr' | 'truncated' | 'end';
  offset: number;
  text: string;
}

export interface ResultInfo {
  subtaskIndex: number;
  attempt: number;
  bytes: number;
  sha256: string;
  exitCode: number;
  nodeId: string;
  storedAt: string;
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

  /** Polls a job until it has ended (succeeded, failed or cancelled), or throws after `timeoutMs` (default 10 min). */
  async waitForJob(jobId: string, options: { timeoutMs?: number; pollMs?: number } = {}): Promise<Job> {
    const deadline = Date.now() + (options.timeoutMs ?? 600_000);
    for (;;) {
      const job = await this.getJob(jobId);
      if (job.state === 'succeeded' || job.state === 'failed' || job.state === 'cancelled') return job;
      if (Date.now() >= deadline) throw new FastGpuError(408, 'job_timeout', `job ${jobId} has not ended in time (state ${job.state})`);
      await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 500));
    }
  }

  /**
   * A job's stdout/stderr (GET /v1/jobs/{id}/logs, Server-Sent Events), message by message. With
   * `follow`, it keeps reading until the attempt (subtask and attempt given) or the job ends;
   * `after` resumes after a message id. Stop early with `signal`.
   */
  async *logs(jobId: string, options: { subtask?: number; attempt?: number; follow?: boolean; after?: number; signal?: AbortSignal } = {}): AsyncGenerator<LogEntry> {
    const query = new URLSearchParams();
    if (options.subtask !== undefined) query.set('subtask', String(options.subtask));
    if (options.attempt !== undefined) query.set('attempt', String(options.attempt));
    if (options.follow) query.set('follow', 'true');
    const response = await this.fetch(`${this.baseUrl}/v1/jobs/${encodeURIComponent(jobId)}/logs${query.size ? `?${query}` : ''}`, {
      headers: { authorization: `Bearer ${this.options.apiKey}`, accept: 'text/event-stream', ...(options.after !== undefined ? { 'last-event-id': String(options.after) } : {}) },
      signal: options.signal,
    });
    if (!response.ok || !response.body) throw await this.errorOf(response, 'GET', 'logs');
    const decoder = new TextDecoder();
    let buffer = '';
    const reader: ReadableStreamDefaultReader<Uint8Array> = response.body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const fields = new Map<string, string>();
          for (const line of frame.split('\n')) {
            if (line.startsWith(':')) continue;
            const colon = line.indexOf(':');
            if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1).replace(/^ /, ''));
          }
          const data = fields.get('data');
          if (data === undefined) continue;
          yield { id: Number(fields.get('id')), ...(JSON.parse(data) as Omit<LogEntry, 'id'>) };
        }
      }
    } finally {
      reader.releaseLock();
      await response.body.cancel().catch(() => undefined);
    }
  }

  /** The stored results of a job's sub-tasks (index, attempt, bytes, SHA-256, exit code). */
  async listResults(jobId: string): Promise<ResultInfo[]> {
    return (await this.request<{ results: ResultInfo[] }>('GET', `/v1/jobs/${encodeURIComponent(jobId)}/results`)).results;
  }

  /** One sub-task's result, byte-exact (the latest attempt that stored one, or `attempt`). */
  getResult(jobId: string, index: number, options: { attempt?: number } = {}): Promise<Uint8Array> {
    return this.bytes(`/v1/jobs/${encodeURIComponent(jobId)}/results/${index}${options.attempt !== undefined ? `?attempt=${options.attempt}` : ''}`);
  }

  /** The job's aggregate result (its workload's rule, built when every sub-task succeeded), byte-exact. */
  getAggregateResult(jobId: string): Promise<Uint8Array> {
    return this.bytes(`/v1/jobs/${encodeURIComponent(jobId)}/results/aggregate`);
  }

  private async bytes(path: string): Promise<Uint8Array> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.options.requestTimeoutMs ?? 35_000);
    try {
      const response = await this.fetch(`${this.baseUrl}${path}`, { headers: { authorization: `Bearer ${this.options.apiKey}` }, signal: controller.signal });
      if (!response.ok) throw await this.errorOf(response, 'GET', path);
      return new Uint8Array(await response.arrayBuffer());
    } finally {
      clearTimeout(timer);
    }
  }

  private async errorOf(response: Response, method: string, path: string): Promise<FastGpuError> {
    const text = await response.text().catch(() => '');
    let error: { code?: string; message?: string; field?: string } | undefined;
    try {
      error = (JSON.parse(text) as { error?: typeof error }).error;
    } catch {
      error = undefined;
    }
    return new FastGpuError(response.status, error?.code ?? 'http_error', error?.message ?? `${method} ${path} answered ${response.status}`, error?.field);
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
