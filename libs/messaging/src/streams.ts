import { DiscardPolicy, RetentionPolicy, StorageType, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import type { Topology } from '@fastgpu/contracts';

const SECOND_NS = 1_000_000_000;
const HOUR_NS = 3600 * SECOND_NS;

/**
 * Streams of the event log. Domain facts go to one stream (one total order); heartbeats and
 * node commands have their own retention; one dead-letter stream. Everything here exists on
 * nats-server 2.9.10 (no sync_interval, no per-message TTL, no multi-filter consumers).
 */
export function streamConfigs(topo: Topology): Array<Partial<StreamConfig> & { name: string; subjects: string[] }> {
  return [
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
  ];
}

/** Creates or updates every stream, then reads each back and asserts the server kept our settings. */
export async function ensureTopology(jsm: JetStreamManager, topo: Topology): Promise<void> {
  for (const wanted of streamConfigs(topo)) {
    let info;
    try {
      info = await jsm.streams.info(wanted.name);
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
    if (mismatches.length) throw new Error(`stream ${wanted.name} was not configured as asked: ${mismatches.join(', ')}`);
  }
}

export async function deleteTopology(jsm: JetStreamManager, topo: Topology): Promise<void> {
  for (const name of Object.values(topo.streams)) {
    await jsm.streams.delete(name).catch(() => false);
  }
}
