import { z } from 'zod';

/**
 * Configuration, read from the environment once and validated. Every service takes the same
 * shape; tests build one with `loadConfig({ ... })` overrides instead of touching process.env.
 */
const configSchema = z.object({
  /** NATS server; the embedded `npm start` starts a local nats-server when none answers. */
  natsUrl: z.string().default('nats://127.0.0.1:4222'),
  /** Subject prefix; stream names derive from it. Each test run uses its own. */
  subjectPrefix: z.string().regex(/^[a-z][a-z0-9_-]*$/i).default('fastgpu'),
  /** PostgreSQL connection string; when absent the embedded PGlite database is used. */
  databaseUrl: z.string().optional(),
  /** Folder for embedded data (PGlite, nats-server JetStream store). */
  dataDir: z.string().default('.fastgpu'),
  httpPort: z.coerce.number().int().min(0).max(65535).default(8080),
  httpHost: z.string().default('127.0.0.1'),
  /** gRPC listener of the services that serve gRPC (intake, billing); 0 picks a free port. */
  grpcPort: z.coerce.number().int().min(0).max(65535).default(50051),
  /** Admin API key; generated and printed at start when not given. */
  adminKey: z.string().min(20).optional(),
  /** Multiplies simulated run times (0.001 = a declared hour runs in 3.6 s). */
  simulatorSpeed: z.coerce.number().positive().default(1),
  simulatedNodes: z.string().default('a100:8x2,h100:8x2'),
  /** Fault runs: a JSON file `{ nodeId: skewMs }` the node simulator reads its nodes' clock skews from. */
  simulatorClockSkewFile: z.string().optional(),
  heartbeatIntervalMs: z.coerce.number().int().positive().default(5000),
  missedHeartbeatsBeforeLost: z.coerce.number().int().positive().default(3),
  otlpEndpoint: z.string().optional(),
  logLevel: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
  /**
   * Token buckets per API key and per tenant, over HTTP and gRPC together: a bucket holds up to
   * `…Burst` requests and refills at `…PerSecond`; 0 per second turns that limit off. The
   * defaults let a busy integrator through and stop a runaway loop; each process keeps its own
   * buckets (N replicas admit N times as much).
   */
  rateLimitKeyPerSecond: z.coerce.number().min(0).max(1_000_000).default(200),
  rateLimitKeyBurst: z.coerce.number().int().min(1).max(10_000_000).default(400),
  rateLimitTenantPerSecond: z.coerce.number().min(0).max(1_000_000).default(500),
  rateLimitTenantBurst: z.coerce.number().int().min(1).max(10_000_000).default(1000),
  /** Open job-watch streams (gRPC WatchJob) one tenant may hold in this process. */
  watchStreamsPerTenantMax: z.coerce.number().int().min(1).max(100_000).default(32),
  /**
   * Replicas of every stream (and of the durable consumers, which inherit their stream's):
   * 1 on one nats-server (embedded), 3 on a JetStream cluster (docs/cluster.md). Unset: streams
   * that exist keep theirs and new ones get 1, so a process that does not say cannot scale a
   * cluster's streams down.
   */
  streamReplicas: z.coerce.number().int().min(1).max(5).optional(),
  /**
   * How long a publish is retried (same Nats-Msg-Id, so the stream stores it once) while
   * JetStream does not answer: a stream leader being elected, no quorum, a reconnect. Past it the
   * request fails; an API answers 503 with Retry-After.
   */
  publishRetryMs: z.coerce.number().int().min(0).max(600_000).default(15_000),
  /** This process's name among instances of the same service (leases, logs); generated when absent. */
  instanceId: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/).optional(),
  /**
   * A service started alone (`npm run start:<service>`, any number of instances) applies each
   * projection in one instance at a time, the holder of a lease renewed every third of this; a
   * standby takes over this long after the holder stops renewing. 0: every instance applies
   * (still once per event: the checkpoint row is locked by the transaction that applies a batch).
   */
  projectionLeaseTtlMs: z.coerce.number().int().min(0).max(600_000).default(3000),
});

export type FastGpuConfig = z.infer<typeof configSchema>;

const envNames: Record<keyof FastGpuConfig, string> = {
  natsUrl: 'NATS_URL',
  subjectPrefix: 'FASTGPU_PREFIX',
  databaseUrl: 'DATABASE_URL',
  dataDir: 'FASTGPU_DATA_DIR',
  httpPort: 'PORT',
  httpHost: 'HOST',
  grpcPort: 'FASTGPU_GRPC_PORT',
  adminKey: 'FASTGPU_ADMIN_KEY',
  simulatorSpeed: 'FASTGPU_SIMULATOR_SPEED',
  simulatedNodes: 'FASTGPU_SIMULATED_NODES',
  simulatorClockSkewFile: 'FASTGPU_SIMULATOR_CLOCK_SKEW_FILE',
  heartbeatIntervalMs: 'FASTGPU_HEARTBEAT_INTERVAL_MS',
  missedHeartbeatsBeforeLost: 'FASTGPU_MISSED_HEARTBEATS',
  otlpEndpoint: 'OTEL_EXPORTER_OTLP_ENDPOINT',
  logLevel: 'LOG_LEVEL',
  rateLimitKeyPerSecond: 'FASTGPU_RATE_LIMIT_KEY_PER_SECOND',
  rateLimitKeyBurst: 'FASTGPU_RATE_LIMIT_KEY_BURST',
  rateLimitTenantPerSecond: 'FASTGPU_RATE_LIMIT_TENANT_PER_SECOND',
  rateLimitTenantBurst: 'FASTGPU_RATE_LIMIT_TENANT_BURST',
  watchStreamsPerTenantMax: 'FASTGPU_WATCH_STREAMS_PER_TENANT_MAX',
  streamReplicas: 'FASTGPU_STREAM_REPLICAS',
  publishRetryMs: 'FASTGPU_PUBLISH_RETRY_MS',
  instanceId: 'FASTGPU_INSTANCE_ID',
  projectionLeaseTtlMs: 'FASTGPU_PROJECTION_LEASE_TTL_MS',
};

export function loadConfig(overrides: Partial<FastGpuConfig> = {}, env: NodeJS.ProcessEnv = process.env): FastGpuConfig {
  const fromEnv: Record<string, unknown> = {};
  for (const [key, name] of Object.entries(envNames)) {
    const value = env[name];
    if (value !== undefined && value !== '') fromEnv[key] = value;
  }
  const parsed = configSchema.safeParse({ ...fromEnv, ...overrides });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const key = String(issue?.path[0] ?? '');
    throw new Error(`invalid configuration ${envNames[key as keyof FastGpuConfig] ?? key}: ${issue?.message}`);
  }
  return parsed.data;
}

/** The configuration table for the README, generated from the same names. */
export const configEnvironmentNames = envNames;

export const CONFIG = Symbol('FastGpuConfig');
