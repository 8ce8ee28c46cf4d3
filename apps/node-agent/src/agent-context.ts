import { fileURLToPath } from 'node:url';
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { ObjectStore } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Topology } from '@fastgpu/contracts';
import type { AgentConfig } from './agent.config';
import type { RunBook } from './runs/run-book';

/** The agent's NATS connection, JetStream clients and subjects. */
export interface AgentBus {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  topology: Topology;
}

export type AgentLog = (level: 'info' | 'warn' | 'error', message: string) => void;

export interface RegisteredGpu {
  uuid: string;
  name: string;
}

/** What the agent found on its host at start (nvidia-smi, cgroups, the outputs it writes to). */
export interface AgentHost {
  gpus: RegisteredGpu[];
  gpuModel: string;
  gpuMemoryGb: number;
  oomCounterFile?: string;
  results?: ObjectStore;
  logChunkBytesMax: number;
}

/** What every part of the agent shares: its connection, configuration, host, runs, log, and whether it stopped. */
export interface AgentContext {
  readonly bus: AgentBus;
  readonly config: AgentConfig;
  readonly host: AgentHost;
  readonly book: RunBook;
  readonly log: AgentLog;
  /** True once `stop` began: nothing new is started, reported or acknowledged. */
  closed(): boolean;
}

/**
 * The run supervisor's script. Resolved here, at the top of the agent's sources, because a bundle
 * of `npm run build` sits where this file does and has the script copied beside it as
 * `runs/supervisor.mjs` (scripts/build.mjs).
 */
export const SUPERVISOR = fileURLToPath(new URL('./runs/supervisor.mjs', import.meta.url));

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
