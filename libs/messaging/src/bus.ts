import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { topology, type Topology } from '@fastgpu/contracts';
import { ensureTopology } from './streams';

/** A connection to NATS with JetStream handles and the run's subject/stream names. */
export interface Bus {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  topology: Topology;
  /** The server URL(s) it connected with: for helpers that open their own connection (the replay's reader thread). */
  natsUrl: string;
  /**
   * Replicas this process asked streams to have (FASTGPU_STREAM_REPLICAS), for the small streams
   * it creates itself (leader leases); undefined when it did not say.
   */
  replicas?: number;
  /**
   * Set when several instances of a service may run (FASTGPU_PROJECTION_LEASE_TTL_MS): each live
   * projection runner applies only while it holds its lease, the others stand by (ProjectionRunner).
   */
  leases?: { instanceId: string; ttlMs: number };
  close(): Promise<void>;
}

export interface BusOptions {
  natsUrl: string;
  subjectPrefix: string;
  name?: string;
  /** Create or update streams and assert what the server accepted (default true). */
  ensureStreams?: boolean;
  /** Replicas of every stream, asserted at start; absent: existing streams keep theirs, new ones get 1. */
  replicas?: number;
  /** One active instance per projection (see Bus.leases). */
  leases?: { instanceId: string; ttlMs: number };
}

/**
 * Servers and credentials from a NATS_URL: comma-separated URLs; `nats://user:password@host:port`
 * signs in as that user (the client library itself does not read credentials from a URL).
 */
export function natsServers(natsUrl: string): { servers: string[]; user?: string; pass?: string } {
  let user: string | undefined;
  let pass: string | undefined;
  const servers = natsUrl
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((server) => {
      const match = /^([a-z]+:\/\/)([^@/]*)@(.*)$/i.exec(server);
      if (!match) return server;
      const [name, password] = match[2]!.split(':');
      user = decodeURIComponent(name ?? '');
      pass = password === undefined ? undefined : decodeURIComponent(password);
      return `${match[1]}${match[3]}`;
    });
  return { servers, ...(user ? { user } : {}), ...(pass !== undefined ? { pass } : {}) };
}

export async function connectBus(options: BusOptions): Promise<Bus> {
  const nc = await connect({
    ...natsServers(options.natsUrl),
    name: options.name ?? 'fastgpu',
    // Async stack traces cost ~45% of publish throughput (toolchain.md); errors still carry messages.
    noAsyncTraces: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
  });
  const js = jetstream(nc, { timeout: 10_000 });
  const topo = topology(options.subjectPrefix);
  let jsm: JetStreamManager;
  try {
    jsm = await jetstreamManager(nc, { timeout: 10_000 });
    if (options.ensureStreams !== false) await ensureTopology(jsm, topo, options.replicas !== undefined ? { replicas: options.replicas } : {});
  } catch (error) {
    // JetStream not answering (yet): the connection is not left reconnecting behind the failure.
    await nc.close().catch(() => undefined);
    throw error;
  }
  return {
    nc,
    js,
    jsm,
    topology: topo,
    natsUrl: options.natsUrl,
    ...(options.replicas !== undefined ? { replicas: options.replicas } : {}),
    ...(options.leases ? { leases: options.leases } : {}),
    close: async () => {
      if (!nc.isClosed()) await nc.drain().catch(() => nc.close());
    },
  };
}
