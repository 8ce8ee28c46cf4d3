import { DiscardPolicy, RetentionPolicy, StorageType, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import type { Topology } from '@fastgpu/contracts';

const SECOND_NS = 1_000_000_000;
const HOUR_NS = 3600 * SECOND_NS;

/**
 * Limits of the LOGS stream (sub-tasks' stdout/stderr, written by node agents): configuration.
 * No byte cap by default: nats-server reserves a stream's `max_bytes` against its store when the
 * stream is created, so a cap is the operator's choice for the host (docs/node-agent.md).
 */
export interface LogsStreamLimits {
  /** Largest message, headers included (the agent chunks below it). */
  messageBytesMax: number;
  /** Retention age. */
  maxAgeMs: number;
  /** Bytes kept for the whole stream (oldest dropped first); -1: no cap but the age. */
  streamBytesMax: number;
}
export const LOGS_STREAM_LIMITS_DEFAULT: LogsStreamLimits = { messageBytesMax: 64 * 1024, maxAgeMs: 7 * 24 * 3600 * 1000, streamBytesMax: -1 };

/**
 * Streams of the event log. Domain facts go to one stream (one total order); heartbeats and
 * node commands have their own retention; one dead-letter stream. Everything here exists on
 * nats-server 2.9.10 (no per-message TTL, no multi-filter consumers; `sync_interval` is a server
 * setting, docs/cluster.md). `replicas`: 1 on one server, 3 on a cluster (every stream alike).
 */
export function streamConfigs(topo: Topology, logs: LogsStreamLimits = LOGS_STREAM_LIMITS_DEFAULT, replicas = 1): Array<Partial<StreamConfig> & { name: string; subjects: string[] }> {
  return withReplicas(replicas, [
    {
      name: topo.streams.events,
      subjects: [topo.subjects.eventsAll],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      max_age: 0,
      // Bus-level dedupe window; consumers dedupe permanently by event id.
      duplicate_window: 10 * 60 * SECOND_NS,
      num_replicas: 1,
    },
    {
      name: topo.streams.heartbeats,
      subjects: [topo.subjects.heartbeatsAll],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      max_age: 24 * HOUR_NS,
      duplicate_window: 60 * SECOND_NS,
      num_replicas: 1,
    },
    {
      name: topo.streams.commands,
      subjects: [topo.subjects.commandsAll],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      max_age: 24 * HOUR_NS,
      duplicate_window: 10 * 60 * SECOND_NS,
      num_replicas: 1,
    },
    {
      name: topo.streams.deadLetters,
      subjects: [topo.subjects.deadLettersAll],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      max_age: 0,
      duplicate_window: 10 * 60 * SECOND_NS,
      num_replicas: 1,
    },
    {
      // Sub-task output: bulky, of no use to projections, kept for its own age and size. No
      // per-tenant limit exists in JetStream: intake caps each tenant's bytes here by purging only
      // that tenant's oldest messages (apps/intake/src/outputs/tenant-log-quota.ts).
      name: topo.streams.logs,
      subjects: [topo.subjects.logsAll],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      max_age: logs.maxAgeMs * 1_000_000,
      max_bytes: logs.streamBytesMax,
      max_msg_size: logs.messageBytesMax,
      // A chunk resent after a lost publish acknowledgement is dropped by its message id.
      duplicate_window: 2 * 60 * SECOND_NS,
      num_replicas: 1,
    },
  ]);
}

function withReplicas<T extends Partial<StreamConfig>>(replicas: number, configs: T[]): T[] {
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > 5) throw new Error(`stream replicas must be an integer from 1 to 5, not ${replicas}`);
  return configs.map((config) => ({ ...config, num_replicas: replicas }));
}

/** The limits of the LOGS stream: an update without explicit limits keeps what the stream has. */
const LOGS_LIMIT_FIELDS = ['max_age', 'max_bytes', 'max_msg_size'] as const;

/**
 * Creates or updates every stream, then reads each back and asserts the server kept our settings.
 * The LOGS stream gets `options.logs` when given; without them it is created with the defaults
 * and an existing one keeps its limits (every process connects with this, few configure logs).
 * Likewise `options.replicas`: when given, every stream is created or scaled to it and asserted;
 * without it a new stream gets 1 and an existing one keeps its replicas (a process that does not
 * say never scales a cluster's streams down).
 */
export async function ensureTopology(jsm: JetStreamManager, topo: Topology, options: { logs?: LogsStreamLimits; replicas?: number } = {}): Promise<void> {
  for (const configured of streamConfigs(topo, options.logs, options.replicas ?? 1)) {
    let wanted = configured;
    let info;
    try {
      info = await jsm.streams.info(wanted.name);
      if (wanted.name === topo.streams.logs && !options.logs) wanted = Object.fromEntries(Object.entries(wanted).filter(([field]) => !(LOGS_LIMIT_FIELDS as readonly string[]).includes(field))) as typeof wanted;
      if (options.replicas === undefined) wanted = { ...wanted, num_replicas: info.config.num_replicas };
      info = await jsm.streams.update(wanted.name, { ...info.config, ...wanted });
    } catch (error) {
      if (!/stream not found/i.test((error as Error).message)) throw error;
      info = await jsm.streams.add(wanted);
    }
    const got = info.config;
    const mismatches: string[] = [];
    if (JSON.stringify(got.subjects) !== JSON.stringify(wanted.subjects)) mismatches.push(`subjects ${JSON.stringify(got.subjects)}`);
    if (got.retention !== wanted.retention) mismatches.push(`retention ${got.retention}`);
    if (got.storage !== wanted.storage) mismatches.push(`storage ${got.storage}`);
    if (got.duplicate_window !== wanted.duplicate_window) mismatches.push(`duplicate_window ${got.duplicate_window}`);
    for (const field of LOGS_LIMIT_FIELDS) if (wanted[field] !== undefined && got[field] !== wanted[field]) mismatches.push(`${field} ${got[field]}`);
    // A single server refuses more than one replica outright; a cluster with fewer servers than asked does too.
    if (got.num_replicas !== wanted.num_replicas) mismatches.push(`num_replicas ${got.num_replicas}`);
    if (mismatches.length) throw new Error(`stream ${wanted.name} was not configured as asked: ${mismatches.join(', ')}`);
  }
}

export async function deleteTopology(jsm: JetStreamManager, topo: Topology): Promise<void> {
  for (const name of Object.values(topo.streams)) {
    await jsm.streams.delete(name).catch(() => false);
  }
  for (const bucket of Object.values(topo.buckets)) {
    await jsm.streams.delete(`OBJ_${bucket}`).catch(() => false);
  }
  // Leader leases (projections', the scheduler's).
  const base = topo.streams.events.replace(/_EVENTS$/, '');
  for (const name of [`${base}_LEADERS`, `${base}_SCHEDULER_LEADER`]) await jsm.streams.delete(name).catch(() => false);
}
