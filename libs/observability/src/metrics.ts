import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Subscription } from '@nats-io/transport-node';
import { decodeValue, Heartbeat, parseJson, peekType, type EventType } from '@fastgpu/contracts';
import { headerType, registerProjectionRunnerMetrics, StreamFollower } from '@fastgpu/messaging';
import type { Runtime } from '@fastgpu/runtime';
import { evolveFleet, fleetFigures, initialFleetState, type FleetState } from './fleet.fold';
import { registerNodeReportMetrics } from './node-reports';

/** Consumers listed per stream at most: bounds the work of one scrape. */
export const CONSUMERS_PER_STREAM_MAX = 512;
/** Nodes whose GPU utilisation is kept (latest heartbeat each). */
export const NODES_TRACKED_MAX = 10_000;
/** Event types the fleet fold decodes; others are only counted. */
const FLEET_TYPES: ReadonlySet<string> = new Set<EventType>([
  'SubtaskCreated', 'SubtaskPlaced', 'SubtaskRequeued', 'SubtaskPreempted', 'SubtaskCompleted', 'SubtaskFailed', 'SubtaskAbandoned',
  'JobCompleted', 'LeaseRequested', 'LeaseGranted', 'LeaseReleased', 'NodeRegistered', 'NodeLost', 'NodeRecovered',
]);
const PLACEMENT_TYPES: ReadonlySet<string> = new Set(['SubtaskPlaced', 'LeaseGranted']);

/**
 * The Prometheus registry of one FastGPU process. Bus and database figures (consumer lag,
 * dead letters, projection freshness) are read at scrape time; log-derived figures (events,
 * placements, queue depth, GPUs) come from a fold of the domain stream followed live;
 * GPU utilisation from the latest heartbeat of each node.
 */
export class FastGpuMetrics {
  readonly registry = new Registry();
  readonly httpDuration: Histogram<'method' | 'route' | 'status_code'>;
  /** Authenticated requests by tenant (`platform` for platform keys), key id, transport and outcome (`allowed`, `limited_by_key`, `limited_by_tenant`). */
  readonly rateLimitRequests: Counter<'tenant' | 'key' | 'transport' | 'outcome'>;
  /** Job-watch streams open now, and refused at the per-tenant bound. */
  readonly watchStreamsOpen: Gauge<'tenant'>;
  readonly watchStreamsRefused: Counter<'tenant'>;
  private readonly consumerPending: Gauge<'stream' | 'durable'>;
  private readonly consumerAckPending: Gauge<'stream' | 'durable'>;
  private readonly consumerRedelivered: Gauge<'stream' | 'durable'>;
  private readonly deadLetters: Gauge<'consumer'>;
  private readonly streamLastSequence: Gauge<'stream'>;
  private readonly eventsPublished: Counter<'type'>;
  private readonly placements: Counter;
  private readonly queueDepth: Gauge<'tenant' | 'gpu_model' | 'kind'>;
  private readonly gpusTotal: Gauge<'gpu_model'>;
  private readonly gpusAllocated: Gauge<'gpu_model'>;
  private readonly gpuUtilization: Gauge<'node' | 'gpu_model' | 'gpu'>;
  private readonly projectionLag: Gauge<'projection'>;
  private readonly projectionStalled: Gauge<'projection'>;
  private readonly projectionUpdatedAge: Gauge<'projection'>;
  private readonly fold: FleetState = initialFleetState();
  private readonly heartbeats = new Map<string, { receivedAtMs: number; beat: Heartbeat }>();
  private follower?: StreamFollower;
  private heartbeatSubscription?: Subscription;
  private refreshing?: Promise<void>;
  private started = false;

  constructor(private readonly runtime: Runtime) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ prefix: runtime.config.subjectPrefix });
    collectDefaultMetrics({ register: this.registry });
    this.httpDuration = new Histogram({
      name: 'fastgpu_http_request_duration_seconds',
      help: 'HTTP request latency by method, route template and status code',
      labelNames: ['method', 'route', 'status_code'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.rateLimitRequests = new Counter({
      name: 'fastgpu_rate_limit_requests_total',
      help: 'Authenticated requests by tenant, API key id, transport and rate-limit outcome (allowed, limited_by_key, limited_by_tenant)',
      labelNames: ['tenant', 'key', 'transport', 'outcome'],
      registers,
    });
    this.watchStreamsOpen = new Gauge({ name: 'fastgpu_watch_streams_open', help: 'Open job-watch streams (gRPC WatchJob) by tenant', labelNames: ['tenant'], registers });
    this.watchStreamsRefused = new Counter({ name: 'fastgpu_watch_streams_refused_total', help: 'Job-watch streams refused because the tenant held its maximum', labelNames: ['tenant'], registers });
    this.consumerPending = new Gauge({ name: 'fastgpu_consumer_pending_messages', help: 'Messages not yet delivered to a durable consumer (its lag)', labelNames: ['stream', 'durable'], registers });
    this.consumerAckPending = new Gauge({ name: 'fastgpu_consumer_ack_pending_messages', help: 'Messages delivered to a durable consumer and not yet acknowledged', labelNames: ['stream', 'durable'], registers });
    this.consumerRedelivered = new Gauge({ name: 'fastgpu_consumer_redelivered_messages', help: 'Messages currently redelivered at least once to a durable consumer', labelNames: ['stream', 'durable'], registers });
    this.deadLetters = new Gauge({ name: 'fastgpu_dead_letters', help: 'Messages in the dead-letter stream, by the consumer that gave up on them', labelNames: ['consumer'], registers });
    this.streamLastSequence = new Gauge({ name: 'fastgpu_stream_last_sequence', help: 'Last sequence stored in each stream', labelNames: ['stream'], registers });
    this.eventsPublished = new Counter({ name: 'fastgpu_events_published_total', help: 'Domain events stored in the log, by type (counted from the log, so exact)', labelNames: ['type'], registers });
    this.placements = new Counter({ name: 'fastgpu_placements_total', help: 'Placements (SubtaskPlaced + LeaseGranted); rate() gives placements per second', registers });
    this.queueDepth = new Gauge({ name: 'fastgpu_queue_depth', help: 'Queued sub-tasks and leases by tenant and preferred GPU model', labelNames: ['tenant', 'gpu_model', 'kind'], registers });
    this.gpusTotal = new Gauge({ name: 'fastgpu_gpus', help: 'GPUs on registered nodes that are not lost', labelNames: ['gpu_model'], registers });
    this.gpusAllocated = new Gauge({ name: 'fastgpu_gpus_allocated', help: 'GPUs held by placed sub-tasks and granted leases', labelNames: ['gpu_model'], registers });
    this.gpuUtilization = new Gauge({ name: 'fastgpu_gpu_utilization_ratio', help: 'GPU utilisation from the latest heartbeat (0..1), per node and GPU index', labelNames: ['node', 'gpu_model', 'gpu'], registers });
    this.projectionLag = new Gauge({ name: 'fastgpu_projection_lag_events', help: 'Events stored after a projection checkpoint (0 = fresh)', labelNames: ['projection'], registers });
    this.projectionStalled = new Gauge({ name: 'fastgpu_projection_stalled', help: '1 when a projection stopped at an event it cannot apply', labelNames: ['projection'], registers });
    this.projectionUpdatedAge = new Gauge({ name: 'fastgpu_projection_checkpoint_age_seconds', help: 'Seconds since a projection checkpoint last moved', labelNames: ['projection'], registers });
    // Counted by the projection runners of this process (apply failures, stalls).
    registerProjectionRunnerMetrics(this.registry);
    // Counted by the consumers of node reports in this process (refused reports, clock skew).
    registerNodeReportMetrics(this.registry);
  }

  /** Follows the domain stream for the fleet fold and listens to heartbeats. Idempotent. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    const { bus } = this.runtime;
    this.follower = new StreamFollower(bus, { stream: bus.topology.streams.events, fromSequence: 1, onBatch: async (messages) => {
      for (const m of messages) {
        // Every FastGPU publisher names the type in a header: count without parsing the body
        // unless the fleet fold needs it (bodies of other producers are parsed).
        const named = headerType(m.headers);
        if (named !== undefined && !FLEET_TYPES.has(named)) {
          this.eventsPublished.inc({ type: named });
          if (PLACEMENT_TYPES.has(named)) this.placements.inc();
          continue;
        }
        const parsed = parseJson(m.data);
        if (!parsed.ok) continue;
        const type = peekType(parsed.value);
        if (type === undefined) continue;
        this.eventsPublished.inc({ type });
        if (PLACEMENT_TYPES.has(type)) this.placements.inc();
        if (!FLEET_TYPES.has(type)) continue;
        const decoded = decodeValue(parsed.value);
        if (decoded.ok) evolveFleet(this.fold, decoded.event);
      }
    } });
    await this.follower.start();
    this.heartbeatSubscription = bus.nc.subscribe(bus.topology.subjects.heartbeatsAll, {
      callback: (error, msg) => {
        if (error) return;
        const parsed = parseJson(msg.data);
        const beat = parsed.ok ? Heartbeat.safeParse(parsed.value) : undefined;
        if (!beat?.success) return;
        if (!this.heartbeats.has(beat.data.nodeId) && this.heartbeats.size >= NODES_TRACKED_MAX) return;
        this.heartbeats.set(beat.data.nodeId, { receivedAtMs: Date.now(), beat: beat.data });
      },
    });
  }

  async stop(): Promise<void> {
    this.started = false;
    this.heartbeatSubscription?.unsubscribe();
    await this.follower?.stop();
  }

  /** Reads bus and database figures; concurrent scrapes share one refresh. */
  refresh(): Promise<void> {
    this.refreshing ??= this.readFigures().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  /** The Prometheus exposition text. */
  async render(): Promise<string> {
    await this.refresh();
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private async readFigures(): Promise<void> {
    const { bus, db, config } = this.runtime;
    const { streams, subjects } = bus.topology;
    const lastSequences = new Map<string, number>();
    this.consumerPending.reset();
    this.consumerAckPending.reset();
    this.consumerRedelivered.reset();
    for (const stream of [streams.events, streams.commands, streams.heartbeats]) {
      try {
        let listed = 0;
        for await (const info of bus.jsm.consumers.list(stream)) {
          if (++listed > CONSUMERS_PER_STREAM_MAX) break;
          // Ordered consumers of replays and projections are ephemeral; lag is reported per durable.
          const durable = info.config.durable_name;
          if (!durable) continue;
          this.consumerPending.set({ stream, durable }, info.num_pending);
          this.consumerAckPending.set({ stream, durable }, info.num_ack_pending);
          this.consumerRedelivered.set({ stream, durable }, info.num_redelivered);
        }
      } catch {
        // A missing stream has no consumers to report.
      }
    }
    this.deadLetters.reset();
    this.streamLastSequence.reset();
    for (const stream of Object.values(streams)) {
      try {
        const info = stream === streams.deadLetters ? await bus.jsm.streams.info(stream, { subjects_filter: subjects.deadLettersAll }) : await bus.jsm.streams.info(stream);
        this.streamLastSequence.set({ stream }, info.state.last_seq);
        lastSequences.set(stream, info.state.last_seq);
        if (stream === streams.deadLetters) {
          const dlqPrefix = subjects.deadLetter('');
          for (const [subject, count] of Object.entries(info.state.subjects ?? {})) this.deadLetters.set({ consumer: subject.slice(dlqPrefix.length) }, count);
        }
      } catch {
        // Stream absent (not created yet): nothing to report.
      }
    }
    const eventsLast = lastSequences.get(streams.events) ?? 0;
    this.projectionLag.reset();
    this.projectionStalled.reset();
    this.projectionUpdatedAge.reset();
    try {
      const rows = await db.selectFrom('projection_checkpoints').select(['projection', 'last_sequence', 'status', 'updated_at']).execute();
      const nowMs = Date.now();
      for (const row of rows as Array<{ projection: string; last_sequence: number; status: string; updated_at: Date }>) {
        this.projectionLag.set({ projection: row.projection }, Math.max(0, eventsLast - Number(row.last_sequence)));
        this.projectionStalled.set({ projection: row.projection }, row.status === 'stalled' ? 1 : 0);
        this.projectionUpdatedAge.set({ projection: row.projection }, Math.max(0, (nowMs - new Date(row.updated_at).getTime()) / 1000));
      }
    } catch {
      // The database is down: readiness reports it; the scrape still answers.
    }
    const figures = fleetFigures(this.fold);
    this.queueDepth.reset();
    for (const q of figures.queueDepth) this.queueDepth.set({ tenant: q.tenantId, gpu_model: q.gpuModel, kind: q.kind }, q.count);
    this.gpusTotal.reset();
    this.gpusAllocated.reset();
    for (const g of figures.gpus) {
      this.gpusTotal.set({ gpu_model: g.gpuModel }, g.total);
      this.gpusAllocated.set({ gpu_model: g.gpuModel }, g.allocated);
    }
    this.gpuUtilization.reset();
    const staleAfterMs = config.heartbeatIntervalMs * config.missedHeartbeatsBeforeLost;
    const nowMs = Date.now();
    for (const [nodeId, { receivedAtMs, beat }] of this.heartbeats) {
      if (nowMs - receivedAtMs > staleAfterMs) {
        this.heartbeats.delete(nodeId);
        continue;
      }
      const gpuModel = this.fold.nodes.get(nodeId)?.gpuModel ?? 'unknown';
      for (const gpu of beat.gpus) this.gpuUtilization.set({ node: nodeId, gpu_model: gpuModel, gpu: String(gpu.index) }, gpu.utilizationPercent / 100);
    }
  }
}

const byRuntime = new WeakMap<Runtime, FastGpuMetrics>();

/** The one metrics registry of a runtime (the HTTP hooks and the /metrics controller share it). */
export function metricsFor(runtime: Runtime): FastGpuMetrics {
  let metrics = byRuntime.get(runtime);
  if (!metrics) {
    metrics = new FastGpuMetrics(runtime);
    byRuntime.set(runtime, metrics);
  }
  return metrics;
}
