import { z } from 'zod';
import { capacityTypeSchema, priorityClassSchema, retryPolicySchema, type EventData } from './events';
import { DomainError, DomainErrorKind } from './domain-error';
import { HOUR_MS } from './gpu-time';
import { isSingleLineText, multiLineText, singleLineText } from './text';

/**
 * A job submission as every edge takes it (POST /v1/jobs, gRPC SubmitJob, the scheduler's
 * POST /v1/jobs:dry-run): one request schema, one set of limits and one task division, so a
 * dry-run accepts exactly what a submission accepts and costs at most what a submission may.
 * Pure: nothing here reads the clock or the network (the current instant is a parameter).
 */

// ------------------------------------------------------------------ limits (one per concept)
/** Sub-tasks one job may divide into (also bounds a dry-run's placement work). */
export const SUBTASKS_PER_JOB_MAX = 10_000;
export const GPUS_PER_SUBTASK_MAX = 64;
export const GPU_MODELS_PER_JOB_MAX = 16;
export const DEPENDENCIES_PER_JOB_MAX = 64;
/** Longest declared runtime of one sub-task: 30 days. */
export const RUNTIME_SECONDS_MAX = 30 * 24 * 3600;
export const JOB_PRIORITY_MAX = 1000;
export const JOB_NAME_LENGTH_MAX = 200;
export const GPU_MODEL_LENGTH_MAX = 64;
export const GANG_TOPOLOGY_KEY_LENGTH_MAX = 64;
/** Longest id a request may carry (ids become NATS subject tokens). */
export const REQUEST_ID_LENGTH_MAX = 128;
/** Longest GPU-hours string: 9 integer digits, a point and 12 decimals, with room to say why it is wrong. */
export const GPU_HOURS_LENGTH_MAX = 32;

// ------------------------------------------------------------------ workload limits (shared with the node protocol)
/** Bounds of a workload: every list, string and number is bounded, and the whole fits a NATS message. */
export const WORKLOAD_ARGUMENTS_MAX = 256;
export const WORKLOAD_ARGUMENT_LENGTH_MAX = 16_384;
export const WORKLOAD_ENV_ENTRIES_MAX = 128;
export const WORKLOAD_ENV_NAME_LENGTH_MAX = 128;
export const WORKLOAD_ENV_VALUE_LENGTH_MAX = 16_384;
export const WORKLOAD_SECRETS_MAX = 32;
export const WORKLOAD_PATH_LENGTH_MAX = 512;
export const WORKLOAD_PATH_SEGMENTS_MAX = 32;
export const WORKLOAD_INPUT_LENGTH_MAX = 65_536;
/** argv, environment and input of one sub-task together, in UTF-8 bytes: well inside NATS's 1 MiB payload and Linux's argument space. */
export const WORKLOAD_TEXT_BYTES_MAX = 262_144;
export const WORKLOAD_TIMEOUT_MS_MAX = 30 * 24 * 3600 * 1000;
/** The largest result file a workload may declare (the agent may configure a lower cap). */
export const WORKLOAD_RESULT_BYTES_MAX = 1024 * 1024 * 1024;
/** Variables the agent sets itself for each sub-task; a workload may not set or shadow them. */
export const WORKLOAD_RESERVED_ENV = ['CUDA_VISIBLE_DEVICES', 'NVIDIA_VISIBLE_DEVICES', 'JOB_COMPLETION_INDEX'] as const;
export const WORKLOAD_RESERVED_ENV_PREFIX = 'FASTGPU_';
/** A job's whole workload (command, environment and every input) in UTF-8 bytes: its JobSubmitted event stays well inside a NATS message. */
export const JOB_WORKLOAD_TEXT_BYTES_MAX = 524_288;
/** Input items of one job (one sub-task takes one or a chunk). */
export const JOB_INPUTS_MAX = 10_000;
/** Default result file (relative to the working directory) and size cap of a job's workload. */
export const WORKLOAD_RESULT_PATH_DEFAULT = 'result.out';
export const WORKLOAD_RESULT_BYTES_DEFAULT = 64 * 1024 * 1024;
/** How a job's sub-task results become one aggregate when every sub-task succeeded. */
export const aggregateRuleSchema = z.enum(['concat', 'jsonl', 'none']);
export type AggregateRule = z.infer<typeof aggregateRuleSchema>;
/** The shell a `shell: true` workload runs under (`/bin/sh -c <script>`). */
export const WORKLOAD_SHELL = '/bin/sh';

/** A relative path below a directory the agent owns: no leading "/", no empty, "." or ".." segment. */
export function isContainedRelativePath(path: string): boolean {
  if (path.startsWith('/')) return false;
  const segments = path.split('/');
  return segments.length <= WORKLOAD_PATH_SEGMENTS_MAX && segments.every((segment) => segment !== '' && segment !== '.' && segment !== '..');
}
export const workloadRelativePath = singleLineText(WORKLOAD_PATH_LENGTH_MAX, 1).refine(isContainedRelativePath, 'must be a relative path ("out/result.json"): no leading "/", no empty, "." or ".." segment');
export const workloadEnvName = z
  .string()
  .max(WORKLOAD_ENV_NAME_LENGTH_MAX)
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name (letters, digits, "_", not starting with a digit)')
  .refine((name) => !name.startsWith(WORKLOAD_RESERVED_ENV_PREFIX) && !(WORKLOAD_RESERVED_ENV as readonly string[]).includes(name), `is set by the agent (${WORKLOAD_RESERVED_ENV.join(', ')}, ${WORKLOAD_RESERVED_ENV_PREFIX}*)`);
export const workloadSecretName = z.string().min(1).max(128).regex(/^[A-Za-z0-9_-]+$/, 'must contain only letters, digits, "-" and "_"');
export const utf8Bytes = (text: string): number => Buffer.byteLength(text, 'utf8');

// ------------------------------------------------------------------ field schemas
/**
 * An id as a request carries it. The storable-text rule is checked first, so a control character
 * is reported as such (400) rather than as a wrong id; then the id rule of `idSchema`.
 */
export const requestIdSchema = singleLineText(REQUEST_ID_LENGTH_MAX, 1).regex(/^[A-Za-z0-9_-]+$/, 'must contain only letters, digits, "-" and "_"');

/** A GPU model name: storable text, then the characters model names use. */
export const gpuModelNameSchema = singleLineText(GPU_MODEL_LENGTH_MAX, 1).regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, ".", "-", "_"');

export const jobDependencySchema = z.strictObject({ jobId: requestIdSchema, condition: z.enum(['afterSuccess', 'afterAny']) });

/**
 * What a job runs (docs/node-agent.md): an argv `command` (a shell only with `shell: true`, then
 * `command` is one script for `/bin/sh -c`), its environment, secrets by name (the agent reads
 * the values on the host; they never travel or show), a working directory and result file
 * relative to the attempt's own directory, a timeout per attempt (default: the declared runtime),
 * optional `inputs` (one item per sub-task, or `inputsPerSubtask` items per sub-task as a JSON
 * array), and how results are aggregated when every sub-task succeeded. `image` is part of the
 * shape but refused while no node runs containers (checkJobRequest).
 */
export const jobWorkloadRequest = z
  .strictObject({
    command: z.array(multiLineText(WORKLOAD_ARGUMENT_LENGTH_MAX)).min(1).max(WORKLOAD_ARGUMENTS_MAX),
    shell: z.boolean().default(false),
    image: singleLineText(512, 1).optional(),
    env: z
      .record(workloadEnvName, multiLineText(WORKLOAD_ENV_VALUE_LENGTH_MAX))
      .refine((env) => Object.keys(env).length <= WORKLOAD_ENV_ENTRIES_MAX, `at most ${WORKLOAD_ENV_ENTRIES_MAX} variables`)
      .optional(),
    secrets: z.array(z.strictObject({ env: workloadEnvName, secret: workloadSecretName })).max(WORKLOAD_SECRETS_MAX).optional(),
    workingDirectory: workloadRelativePath.optional(),
    /** Per attempt; default: runtimeSeconds. */
    timeoutSeconds: z.number().int().min(1).max(WORKLOAD_TIMEOUT_MS_MAX / 1000).optional(),
    inputs: z.array(multiLineText(WORKLOAD_INPUT_LENGTH_MAX)).min(1).max(JOB_INPUTS_MAX).optional(),
    inputsPerSubtask: z.number().int().min(1).max(JOB_INPUTS_MAX).optional(),
    resultPath: workloadRelativePath.default(WORKLOAD_RESULT_PATH_DEFAULT),
    resultBytesMax: z.number().int().min(1).max(WORKLOAD_RESULT_BYTES_MAX).default(WORKLOAD_RESULT_BYTES_DEFAULT),
    aggregate: aggregateRuleSchema.default('none'),
  })
  .superRefine((workload, context) => {
    const program = workload.command[0] ?? '';
    if (program === '') context.addIssue({ code: 'custom', path: ['command', 0], message: 'the program must not be empty' });
    if (workload.shell && workload.command.length !== 1) context.addIssue({ code: 'custom', path: ['command'], message: 'with shell: true, command is one script' });
    if (!workload.shell && !isSingleLineText(program)) context.addIssue({ code: 'custom', path: ['command', 0], message: 'the program must be a single line' });
    if (workload.inputsPerSubtask !== undefined && workload.inputs === undefined) context.addIssue({ code: 'custom', path: ['inputsPerSubtask'], message: 'applies to inputs only' });
    const names = new Set(Object.keys(workload.env ?? {}));
    for (const [at, secret] of (workload.secrets ?? []).entries()) {
      if (names.has(secret.env)) context.addIssue({ code: 'custom', path: ['secrets', at, 'env'], message: `sets ${secret.env} twice` });
      names.add(secret.env);
    }
    const textBytes = [...workload.command, ...Object.entries(workload.env ?? {}).flat(), ...(workload.inputs ?? [])].reduce((sum, text) => sum + utf8Bytes(text), 0);
    if (textBytes > JOB_WORKLOAD_TEXT_BYTES_MAX) context.addIssue({ code: 'custom', path: [], message: `command, environment and inputs take ${textBytes} bytes (at most ${JOB_WORKLOAD_TEXT_BYTES_MAX})` });
  });
export type JobWorkloadRequest = z.infer<typeof jobWorkloadRequest>;

export const submitJobRequest = z.strictObject({
  projectId: requestIdSchema,
  name: singleLineText(JOB_NAME_LENGTH_MAX).optional(),
  /** Allowed GPU models, in order of preference. */
  gpuModels: z.array(gpuModelNameSchema).min(1).max(GPU_MODELS_PER_JOB_MAX),
  gpusPerSubtask: z.number().int().min(1).max(GPUS_PER_SUBTASK_MAX),
  subtaskCount: z.number().int().min(1).max(SUBTASKS_PER_JOB_MAX).optional(),
  /** Total GPU-hours to divide into sub-tasks (decimal string or number). */
  totalGpuHours: z.union([singleLineText(GPU_HOURS_LENGTH_MAX), z.number().positive()]).transform(String).optional(),
  /** Declared runtime of one sub-task in seconds (used for backfill and by node agents). */
  runtimeSeconds: z.number().int().min(1).max(RUNTIME_SECONDS_MAX),
  priorityClass: priorityClassSchema.default('standard'),
  priority: z.number().int().min(0).max(JOB_PRIORITY_MAX).default(0),
  preemptible: z.boolean().optional(),
  gang: z.boolean().default(false),
  gangTopologyKey: singleLineText(GANG_TOPOLOGY_KEY_LENGTH_MAX).optional(),
  capacityType: capacityTypeSchema.optional(),
  deadline: z.iso.datetime().optional(),
  dependsOn: z.array(jobDependencySchema).max(DEPENDENCIES_PER_JOB_MAX).default([]),
  retryPolicy: retryPolicySchema.optional(),
  /** What each sub-task runs on a node agent (absent: the job only holds GPUs for its runtime, as on the simulator). */
  workload: jobWorkloadRequest.optional(),
});
export type SubmitJobRequest = z.infer<typeof submitJobRequest>;

// ------------------------------------------------------------------ task division
/**
 * A request that is well-formed but cannot be accepted as it is: the field and why. A validation
 * DomainError, so the edges map it once (libs/http domain-errors.ts: 422 `unprocessable` with the
 * field; gRPC INVALID_ARGUMENT): intake's submission and the scheduler's dry-run let it through.
 */
export class JobRequestError extends DomainError {
  declare readonly field: string;

  constructor(field: string, message: string) {
    super(DomainErrorKind.validation, 'unprocessable', message, field);
    this.name = 'JobRequestError';
  }
}

const HOUR_MS_BIG = BigInt(HOUR_MS);

export interface DivisionInput {
  gpusPerSubtask: number;
  runtimeMs: number;
  subtaskCount?: number;
  /** Decimal string of GPU-hours. */
  totalGpuHours?: string;
}

export interface PlannedSubtask {
  index: number;
  gpus: number;
  runtimeMs: number;
}

/** GPU-hours as a decimal string → exact GPU-milliseconds (rounded up to the millisecond). */
export function gpuHoursToGpuMs(gpuHours: string): bigint {
  const match = /^(\d{1,9})(?:\.(\d{1,12}))?$/.exec(gpuHours);
  if (!match) throw new JobRequestError('totalGpuHours', 'must be a positive decimal number of GPU-hours with at most 12 decimals');
  const fraction = (match[2] ?? '').padEnd(12, '0');
  const scaled = BigInt(match[1]!) * 10n ** 12n + BigInt(fraction);
  const numerator = scaled * HOUR_MS_BIG;
  const denominator = 10n ** 12n;
  return (numerator + denominator - 1n) / denominator;
}

/**
 * Task division: a job becomes sub-tasks; the same request always gives the same split. A job
 * names either a sub-task count (each runs the declared runtime) or total GPU-hours, divided
 * exactly: full sub-tasks of the declared runtime, the last one shorter, so that
 * Σ gpus × runtime = the GPU-hours asked for (to the millisecond, rounded up).
 */
export function divideJob(input: DivisionInput): PlannedSubtask[] {
  const { gpusPerSubtask, runtimeMs } = input;
  if ((input.subtaskCount === undefined) === (input.totalGpuHours === undefined)) {
    throw new JobRequestError('subtaskCount', 'give exactly one of subtaskCount and totalGpuHours');
  }
  if (input.subtaskCount !== undefined) {
    if (input.subtaskCount > SUBTASKS_PER_JOB_MAX) throw new JobRequestError('subtaskCount', `at most ${SUBTASKS_PER_JOB_MAX} sub-tasks per job`);
    return Array.from({ length: input.subtaskCount }, (_, index) => ({ index, gpus: gpusPerSubtask, runtimeMs }));
  }
  const totalGpuMs = gpuHoursToGpuMs(input.totalGpuHours!);
  if (totalGpuMs === 0n) throw new JobRequestError('totalGpuHours', 'must be greater than zero');
  const perSubtaskGpuMs = BigInt(gpusPerSubtask) * BigInt(runtimeMs);
  const fullCount = totalGpuMs / perSubtaskGpuMs;
  const remainderGpuMs = totalGpuMs % perSubtaskGpuMs;
  // Checked on the bigint before any array is made: a huge count costs nothing.
  const count = fullCount + (remainderGpuMs > 0n ? 1n : 0n);
  if (count > BigInt(SUBTASKS_PER_JOB_MAX)) throw new JobRequestError('totalGpuHours', `divides into ${count} sub-tasks; at most ${SUBTASKS_PER_JOB_MAX} (raise runtimeSeconds or gpusPerSubtask)`);
  const subtasks: PlannedSubtask[] = [];
  for (let index = 0; index < Number(fullCount); index++) subtasks.push({ index, gpus: gpusPerSubtask, runtimeMs });
  if (remainderGpuMs > 0n) {
    // The last sub-task runs the remainder, rounded up to whole milliseconds per GPU.
    const lastRuntimeMs = Number((remainderGpuMs + BigInt(gpusPerSubtask) - 1n) / BigInt(gpusPerSubtask));
    subtasks.push({ index: subtasks.length, gpus: gpusPerSubtask, runtimeMs: lastRuntimeMs });
  }
  return subtasks;
}

// ------------------------------------------------------------------ the checks after the schema
/** A job's workload as JobSubmitted records it (v2): defaults filled, the timeout in ms. */
export type JobWorkload = NonNullable<EventData<'JobSubmitted'>['workload']>;

export interface CheckedJobRequest {
  preemptible: boolean;
  capacityType: z.infer<typeof capacityTypeSchema>;
  /** Declared runtime of one full sub-task. */
  runtimeMs: number;
  subtasks: PlannedSubtask[];
  /** The workload as the event records it, when the job has one. */
  workload?: JobWorkload;
}

/** The input item a sub-task gets (FASTGPU_INPUT): its own item, or with `inputsPerSubtask` its chunk as a JSON array. */
export function subtaskInput(workload: Pick<JobWorkload, 'inputs' | 'inputsPerSubtask'>, index: number): string | undefined {
  if (!workload.inputs) return undefined;
  if (workload.inputsPerSubtask === undefined) return workload.inputs[index];
  return JSON.stringify(workload.inputs.slice(index * workload.inputsPerSubtask, (index + 1) * workload.inputsPerSubtask));
}

/** The argv a node runs: the command itself, or `/bin/sh -c <script>` when the workload asked for a shell. */
export function workloadArgv(workload: Pick<JobWorkload, 'command' | 'shell'>): string[] {
  return workload.shell ? [WORKLOAD_SHELL, '-c', workload.command[0]!] : [...workload.command];
}

function checkWorkload(request: SubmitJobRequest, runtimeMs: number): { workload?: JobWorkload; subtaskCount?: number } {
  const w = request.workload;
  if (!w) return {};
  if (w.image !== undefined) throw new JobRequestError('workload.image', 'no node runs containers yet: give a command to run on the host (docs/node-agent.md, "Containers")');
  let subtaskCount: number | undefined;
  if (w.inputs) {
    subtaskCount = Math.ceil(w.inputs.length / (w.inputsPerSubtask ?? 1));
    if (request.totalGpuHours !== undefined) throw new JobRequestError('totalGpuHours', 'a job with inputs is divided by its inputs, not by GPU-hours');
    if (request.subtaskCount !== undefined && request.subtaskCount !== subtaskCount) throw new JobRequestError('subtaskCount', `the inputs divide into ${subtaskCount} sub-tasks, not ${request.subtaskCount}`);
  }
  const workload: JobWorkload = {
    command: w.command,
    shell: w.shell,
    ...(w.env ? { env: w.env } : {}),
    ...(w.secrets ? { secrets: w.secrets } : {}),
    ...(w.workingDirectory ? { workingDirectory: w.workingDirectory } : {}),
    timeoutMs: w.timeoutSeconds !== undefined ? w.timeoutSeconds * 1000 : runtimeMs,
    ...(w.inputs ? { inputs: w.inputs } : {}),
    ...(w.inputsPerSubtask !== undefined ? { inputsPerSubtask: w.inputsPerSubtask } : {}),
    resultPath: w.resultPath,
    resultBytesMax: w.resultBytesMax,
    aggregate: w.aggregate,
  };
  // What one sub-task receives must fit what a node takes (node-protocol Workload): its input, and argv, environment and input together.
  const fixedBytes = [...workloadArgv(workload), ...Object.entries(workload.env ?? {}).flat()].reduce((sum, text) => sum + utf8Bytes(text), 0);
  const count = subtaskCount ?? (workload.inputs ? 0 : 1);
  for (let index = 0; index < count && workload.inputs; index++) {
    const input = subtaskInput(workload, index) ?? '';
    if (input.length > WORKLOAD_INPUT_LENGTH_MAX) throw new JobRequestError('workload.inputsPerSubtask', `sub-task ${index}'s input takes ${input.length} characters (at most ${WORKLOAD_INPUT_LENGTH_MAX}): fewer inputs per sub-task`);
    if (fixedBytes + utf8Bytes(input) > WORKLOAD_TEXT_BYTES_MAX) throw new JobRequestError('workload', `sub-task ${index}'s command, environment and input take more than ${WORKLOAD_TEXT_BYTES_MAX} bytes`);
  }
  if (fixedBytes > WORKLOAD_TEXT_BYTES_MAX) throw new JobRequestError('workload', `command and environment take ${fixedBytes} bytes (at most ${WORKLOAD_TEXT_BYTES_MAX})`);
  return { workload, ...(subtaskCount !== undefined ? { subtaskCount } : {}) };
}

/**
 * What a well-formed request must also satisfy, checked the same way by submission and dry-run:
 * consistent preemption and gang fields, a deadline after `nowMs`, a workload a node can run
 * (no container image while no node runs containers; each sub-task's input within the node
 * protocol's bounds), and a division within the limits. Throws JobRequestError with the field.
 */
export function checkJobRequest(request: SubmitJobRequest, nowMs: number): CheckedJobRequest {
  const preemptible = request.preemptible ?? request.priorityClass === 'preemptible';
  if (request.priorityClass === 'preemptible' && !preemptible) throw new JobRequestError('preemptible', 'a job of the preemptible class cannot be marked non-preemptible');
  if (request.gangTopologyKey && !request.gang) throw new JobRequestError('gangTopologyKey', 'gangTopologyKey applies to gang jobs only');
  if (request.deadline && Date.parse(request.deadline) <= nowMs) throw new JobRequestError('deadline', 'deadline is in the past');
  const runtimeMs = request.runtimeSeconds * 1000;
  const { workload, subtaskCount } = checkWorkload(request, runtimeMs);
  const subtasks = divideJob({ gpusPerSubtask: request.gpusPerSubtask, runtimeMs, subtaskCount: subtaskCount ?? request.subtaskCount, totalGpuHours: subtaskCount !== undefined ? undefined : request.totalGpuHours });
  return { preemptible, capacityType: request.capacityType ?? (preemptible ? 'preemptible' : 'on-demand'), runtimeMs, subtasks, ...(workload ? { workload } : {}) };
}
