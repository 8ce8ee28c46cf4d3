import { hostname } from 'node:os';
import { z } from 'zod';
import { idSchema, singleLineText } from '@fastgpu/contracts';
import { loadConfig } from '@fastgpu/config';
import { LOGS_STREAM_LIMITS_DEFAULT } from '@fastgpu/messaging';
import { RESULT_BUCKET_LIMITS_DEFAULT } from './results/result-store';

/**
 * The node agent's configuration (docs/node-agent.md, "Configuration"): environment variables,
 * read once and validated. NATS_URL, FASTGPU_PREFIX and FASTGPU_HEARTBEAT_INTERVAL_MS are the
 * platform's (libs/config); the rest are the agent's own.
 */
const DAY_MS = 24 * 3600 * 1000;
const labelsText = z
  .string()
  .max(4096)
  .transform((text, context) => {
    const labels: Record<string, string> = {};
    for (const pair of text.split(',').map((p) => p.trim()).filter(Boolean)) {
      const [key, value] = pair.split('=');
      const label = singleLineText(128, 1);
      if (!key || value === undefined || !label.safeParse(key).success || !label.safeParse(value).success) {
        context.addIssue({ code: 'custom', message: `label "${pair}" is not key=value` });
        return z.NEVER;
      }
      labels[key] = value;
    }
    return labels;
  });
const flag = z.enum(['true', 'false', '1', '0']).transform((value) => value === 'true' || value === '1');

export const agentConfigSchema = z.object({
  natsUrl: z.string(),
  subjectPrefix: z.string(),
  /** A NATS credentials file (JWT + nkey seed) for this node's own user (docs/node-agent.md, "Credentials"). */
  natsCredsFile: z.string().optional(),
  /** A file holding this node's nkey seed (`SU…`, from `npm run node-credentials`): the agent signs in as that nkey user. */
  natsNkeySeedFile: z.string().optional(),
  natsUser: z.string().optional(),
  natsPassword: z.string().optional(),
  nodeId: idSchema,
  workRoot: z.string().min(1),
  nvidiaSmi: z.string().min(1).default('nvidia-smi'),
  nvidiaSmiTimeoutMs: z.coerce.number().int().min(100).max(120_000).default(10_000),
  /** The scheduler's model name for this node's GPUs; derived from nvidia-smi's name when absent. */
  gpuModel: singleLineText(64, 1).regex(/^[A-Za-z0-9_.-]+$/).optional(),
  labels: labelsText.default({}),
  heartbeatIntervalMs: z.coerce.number().int().min(100).max(600_000),
  /** Runs execute as this user and group (the agent must run as root to switch); absent: as the agent's user. */
  runUid: z.coerce.number().int().min(0).max(4_294_967_294).optional(),
  runGid: z.coerce.number().int().min(0).max(4_294_967_294).optional(),
  /** PATH of the runs (their environment starts empty: nothing of the agent's, credentials included, leaks into it). */
  runPath: z.string().min(1).max(4096).default('/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'),
  secretsDir: z.string().optional(),
  stopGraceMs: z.coerce.number().int().min(0).max(600_000).default(10_000),
  /** What a restarted agent does with runs it finds alive: keep them (adopt) or kill them (reported as agent-restart). */
  onRestart: z.enum(['adopt', 'kill']).default('adopt'),
  /** The agent's cap on a result, below each workload's own limit. */
  resultBytesMax: z.coerce.number().int().positive().max(1024 * 1024 * 1024).default(256 * 1024 * 1024),
  logAttemptBytesMax: z.coerce.number().int().positive().max(64 * 1024 * 1024 * 1024).default(64 * 1024 * 1024),
  logPollMs: z.coerce.number().int().min(10).max(10_000).default(250),
  logPartialFlushMs: z.coerce.number().int().min(0).max(60_000).default(1000),
  /** Create and configure the LOGS stream and results bucket (development; in production the platform's credentials do). */
  manageStreams: flag.default(true),
  logsMessageBytesMax: z.coerce.number().int().min(4096).max(8 * 1024 * 1024).default(LOGS_STREAM_LIMITS_DEFAULT.messageBytesMax),
  logsMaxAgeMs: z.coerce.number().int().min(3600 * 1000).max(3650 * DAY_MS).default(LOGS_STREAM_LIMITS_DEFAULT.maxAgeMs),
  logsStreamBytesMax: z.coerce.number().int().min(-1).default(LOGS_STREAM_LIMITS_DEFAULT.streamBytesMax),
  resultsMaxAgeMs: z.coerce.number().int().min(0).max(3650 * DAY_MS).default(RESULT_BUCKET_LIMITS_DEFAULT.maxAgeMs),
  resultsBucketBytesMax: z.coerce.number().int().min(-1).default(RESULT_BUCKET_LIMITS_DEFAULT.bucketBytesMax),
  /** The memory cgroup file with the `oom_kill` counter; found from /proc/self/cgroup when absent. */
  oomCounterFile: z.string().optional(),
  /** Where XID errors are read: the kernel log device, a regular file followed like `tail -F`, or `off` (gpus/xid-reader.ts). */
  kmsg: z.string().min(1).default('/dev/kmsg'),
});
export type AgentConfig = z.infer<typeof agentConfigSchema>;

const envNames: Partial<Record<keyof AgentConfig, string>> = {
  natsCredsFile: 'NATS_CREDS',
  natsNkeySeedFile: 'FASTGPU_NODE_NKEY_SEED_FILE',
  natsUser: 'NATS_USER',
  natsPassword: 'NATS_PASSWORD',
  nodeId: 'FASTGPU_AGENT_NODE_ID',
  workRoot: 'FASTGPU_AGENT_WORK_ROOT',
  nvidiaSmi: 'FASTGPU_AGENT_NVIDIA_SMI',
  nvidiaSmiTimeoutMs: 'FASTGPU_AGENT_NVIDIA_SMI_TIMEOUT_MS',
  gpuModel: 'FASTGPU_AGENT_GPU_MODEL',
  labels: 'FASTGPU_AGENT_LABELS',
  runUid: 'FASTGPU_AGENT_RUN_UID',
  runGid: 'FASTGPU_AGENT_RUN_GID',
  runPath: 'FASTGPU_AGENT_RUN_PATH',
  secretsDir: 'FASTGPU_AGENT_SECRETS_DIR',
  stopGraceMs: 'FASTGPU_AGENT_STOP_GRACE_MS',
  onRestart: 'FASTGPU_AGENT_ON_RESTART',
  resultBytesMax: 'FASTGPU_AGENT_RESULT_BYTES_MAX',
  logAttemptBytesMax: 'FASTGPU_AGENT_LOG_BYTES_MAX',
  logPollMs: 'FASTGPU_AGENT_LOG_POLL_MS',
  logPartialFlushMs: 'FASTGPU_AGENT_LOG_PARTIAL_FLUSH_MS',
  manageStreams: 'FASTGPU_AGENT_MANAGE_STREAMS',
  logsMessageBytesMax: 'FASTGPU_LOGS_MESSAGE_BYTES_MAX',
  logsMaxAgeMs: 'FASTGPU_LOGS_MAX_AGE_MS',
  logsStreamBytesMax: 'FASTGPU_LOGS_STREAM_BYTES_MAX',
  resultsMaxAgeMs: 'FASTGPU_RESULTS_MAX_AGE_MS',
  resultsBucketBytesMax: 'FASTGPU_RESULTS_BUCKET_BYTES_MAX',
  oomCounterFile: 'FASTGPU_AGENT_OOM_COUNTER_FILE',
  kmsg: 'FASTGPU_AGENT_KMSG',
};

/** A node id from the host name: the characters a subject token allows. */
export function nodeIdFromHostname(name = hostname()): string {
  return name.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 128) || 'node';
}

export function loadAgentConfig(overrides: Partial<Record<keyof AgentConfig, unknown>> = {}, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const platform = loadConfig({}, env);
  const fromEnv: Record<string, unknown> = { natsUrl: platform.natsUrl, subjectPrefix: platform.subjectPrefix, heartbeatIntervalMs: platform.heartbeatIntervalMs, nodeId: nodeIdFromHostname(), workRoot: '/var/lib/fastgpu-agent' };
  for (const [key, name] of Object.entries(envNames)) {
    const value = env[name];
    if (value !== undefined && value !== '') fromEnv[key] = value;
  }
  const parsed = agentConfigSchema.safeParse({ ...fromEnv, ...overrides });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const key = String(issue?.path[0] ?? '');
    throw new Error(`invalid agent configuration ${envNames[key as keyof AgentConfig] ?? key}: ${issue?.message}`);
  }
  const signIns = [parsed.data.natsCredsFile, parsed.data.natsNkeySeedFile, parsed.data.natsUser].filter((value) => value !== undefined).length;
  if (signIns > 1) throw new Error('invalid agent configuration: give one of NATS_CREDS, FASTGPU_NODE_NKEY_SEED_FILE or NATS_USER');
  return parsed.data;
}
