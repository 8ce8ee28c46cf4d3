import { z } from 'zod';
import type { FailureKind } from './events';
import {
  SUBTASKS_PER_JOB_MAX,
  subtaskInput,
  utf8Bytes,
  workloadArgv,
  workloadEnvName,
  workloadRelativePath,
  WORKLOAD_ARGUMENT_LENGTH_MAX,
  WORKLOAD_ARGUMENTS_MAX,
  WORKLOAD_ENV_ENTRIES_MAX,
  WORKLOAD_ENV_VALUE_LENGTH_MAX,
  WORKLOAD_INPUT_LENGTH_MAX,
  WORKLOAD_RESULT_BYTES_MAX,
  WORKLOAD_SECRETS_MAX,
  WORKLOAD_TEXT_BYTES_MAX,
  WORKLOAD_TIMEOUT_MS_MAX,
  type JobWorkload,
} from './job-submission';
import { isSingleLineText, multiLineText } from './text';

/**
 * The node agent protocol (documented in docs/node-protocol.md). Commands go to
 * `<prefix>.cmd.<nodeId>` (COMMANDS stream); heartbeats come from `<prefix>.hb.<nodeId>`
 * (HEARTBEATS stream); lifecycle reports are domain events on `<prefix>.evt.agent.node.<nodeId>`.
 */
const id = z.string().min(1).max(128).regex(/^[A-Za-z0-9_-]+$/);
const instant = z.iso.datetime({ offset: false });
// Free text follows text.ts like the events' (a stop reason often repeats an event's reason).

// ------------------------------------------------------------------ workload (what a real agent runs)
// The bounds and field rules are the job request's (job-submission.ts): a job's workload and
// what one sub-task receives are checked by the same rules.
const relativePath = workloadRelativePath;
const envName = workloadEnvName;

/**
 * What a real node agent runs for a sub-task (docs/node-protocol.md, "Workload"). The command
 * is an argv array, executed without a shell. Secrets travel by name only: the agent reads the
 * value on the host (docs/node-agent.md), so no value is ever in a command, a log or an event.
 * Paths are relative: `workingDirectory` to the attempt's own directory under the agent's work
 * root, `resultPath` to the working directory.
 */
export const Workload = z
  .object({
    /** argv: the program (a path, or a name looked up in the agent's PATH for workloads) and its arguments. */
    command: z.array(multiLineText(WORKLOAD_ARGUMENT_LENGTH_MAX)).min(1).max(WORKLOAD_ARGUMENTS_MAX),
    env: z
      .record(envName, multiLineText(WORKLOAD_ENV_VALUE_LENGTH_MAX))
      .refine((env) => Object.keys(env).length <= WORKLOAD_ENV_ENTRIES_MAX, `at most ${WORKLOAD_ENV_ENTRIES_MAX} variables`)
      .optional(),
    /** Environment variables whose values the agent reads from its secret store by name (per tenant). */
    secrets: z
      .array(z.object({ env: envName, secret: z.string().min(1).max(128).regex(/^[A-Za-z0-9_-]+$/, 'must contain only letters, digits, "-" and "_"') }))
      .max(WORKLOAD_SECRETS_MAX)
      .optional(),
    workingDirectory: relativePath.optional(),
    timeoutMs: z.number().int().positive().max(WORKLOAD_TIMEOUT_MS_MAX),
    subtaskIndex: z.number().int().nonnegative(),
    subtaskCount: z.number().int().positive().max(SUBTASKS_PER_JOB_MAX),
    /** This sub-task's input item (given to the program as FASTGPU_INPUT). */
    input: multiLineText(WORKLOAD_INPUT_LENGTH_MAX).optional(),
    resultPath: relativePath,
    resultBytesMax: z.number().int().positive().max(WORKLOAD_RESULT_BYTES_MAX),
  })
  .superRefine((workload, context) => {
    const program = workload.command[0] ?? '';
    if (program === '' || !isSingleLineText(program)) context.addIssue({ code: 'custom', path: ['command', 0], message: 'the program must be a non-empty single line' });
    if (workload.subtaskIndex >= workload.subtaskCount) context.addIssue({ code: 'custom', path: ['subtaskIndex'], message: `must be below subtaskCount (${workload.subtaskCount})` });
    const names = new Set(Object.keys(workload.env ?? {}));
    for (const [at, secret] of (workload.secrets ?? []).entries()) {
      if (names.has(secret.env)) context.addIssue({ code: 'custom', path: ['secrets', at, 'env'], message: `sets ${secret.env} twice` });
      names.add(secret.env);
    }
    const textBytes = [...workload.command, ...Object.entries(workload.env ?? {}).flat(), workload.input ?? ''].reduce((sum, text) => sum + utf8Bytes(text), 0);
    if (textBytes > WORKLOAD_TEXT_BYTES_MAX) context.addIssue({ code: 'custom', path: [], message: `command, environment and input take ${textBytes} bytes (at most ${WORKLOAD_TEXT_BYTES_MAX})` });
  });
export type Workload = z.infer<typeof Workload>;

/**
 * What sub-task `index` of a job runs: the job's workload (JobSubmitted) with the sub-task's
 * index, count and input. The scheduler puts it into each RunSubtask; pure.
 */
export function subtaskWorkload(job: JobWorkload, subtaskIndex: number, subtaskCount: number): Workload {
  const input = subtaskInput(job, subtaskIndex);
  return {
    command: workloadArgv(job),
    ...(job.env ? { env: job.env } : {}),
    ...(job.secrets ? { secrets: job.secrets } : {}),
    ...(job.workingDirectory ? { workingDirectory: job.workingDirectory } : {}),
    timeoutMs: job.timeoutMs,
    subtaskIndex,
    subtaskCount,
    ...(input !== undefined ? { input } : {}),
    resultPath: job.resultPath,
    resultBytesMax: job.resultBytesMax,
  };
}

/** Who caused a failure of this kind (docs/node-protocol.md, "Reports"): the agent's own failures and restarts are the platform's, the program's end is the user's. */
export function failureKindFault(kind: FailureKind): 'user' | 'platform' {
  return kind === 'agent' || kind === 'agent-restart' ? 'platform' : 'user';
}

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
  /** What to run (a real agent); absent for the simulator's placements, which only sleep for `runtimeMs`. */
  workload: Workload.optional(),
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
  /** XIDs since the agent started; absent when the agent cannot read them (no access to the kernel log). */
  xidErrors: z.number().int().nonnegative().optional(),
});
export const Heartbeat = z.object({
  nodeId: id,
  agentEpoch: z.number().int().positive(),
  sentAt: instant,
  gpus: z.array(GpuSample).max(64),
  running: z.array(z.object({ subtaskId: id, attempt: z.number().int().positive(), leaseEpoch: z.number().int().positive() })).max(64),
});
export type Heartbeat = z.infer<typeof Heartbeat>;

// ------------------------------------------------------------------ logs and results (what a real agent writes)
/**
 * A sub-task attempt's stdout/stderr on the LOGS stream, subject
 * `<prefix>.logs.<tenantId>.<jobId>.<subtaskIndex>.<attempt>`: the body is the program's bytes
 * as written (whole lines where they fit, else cut at the size limit), the headers say what it is.
 */
export const LogHeader = {
  kind: 'Fastgpu-Log-Kind',
  /** Byte offset of the chunk within its stream (stdout or stderr). */
  offset: 'Fastgpu-Log-Offset',
  /** Bytes of stdout and of stderr shipped up to and including this message: where a restarted agent resumes. */
  stdoutBytes: 'Fastgpu-Log-Stdout-Bytes',
  stderrBytes: 'Fastgpu-Log-Stderr-Bytes',
} as const;
/** `truncated`: the attempt's log limit was reached, nothing but `end` follows. `end`: the attempt ended (empty body). */
export const LogKind = { stdout: 'stdout', stderr: 'stderr', truncated: 'truncated', end: 'end' } as const;
export type LogKind = (typeof LogKind)[keyof typeof LogKind];
export const logKindSchema = z.enum(['stdout', 'stderr', 'truncated', 'end']);

/** Where a job's aggregate result lives in the results bucket (a sub-task index is never "aggregate"). */
export function aggregateObjectName(tenantId: string, jobId: string): string {
  return `${tenantId}/${jobId}/aggregate`;
}

/** Where an attempt's result lives in the results bucket (`topology.buckets.results`). */
export function resultObjectName(tenantId: string, jobId: string, subtaskIndex: number, attempt: number): string {
  return `${tenantId}/${jobId}/${subtaskIndex}/${attempt}`;
}
const decimalText = z.string().regex(/^(0|-?[1-9][0-9]{0,15})$/);
/** Metadata stored with a result object (Object Store metadata values are strings). */
export const ResultMetadata = z.object({
  tenantId: id,
  jobId: id,
  subtaskId: id,
  subtaskIndex: decimalText,
  attempt: decimalText,
  nodeId: id,
  /** The program's exit code (128 + the signal's number when a signal ended it). */
  exitCode: decimalText,
  /** Hex SHA-256 of the bytes, computed by the agent while reading the file (the store checks its own digest too). */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  storedAt: instant,
});
export type ResultMetadata = z.infer<typeof ResultMetadata>;
