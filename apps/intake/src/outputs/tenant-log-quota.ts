import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { DeliverPolicy, JsHeaders, type ConsumerMessages, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { z } from 'zod';
import type { Topology } from '@fastgpu/contracts';
import { RUNTIME, type Runtime } from '@fastgpu/runtime';

/**
 * Per-tenant limits on the LOGS stream (docs/node-agent.md, "Logs: limits and retention").
 *
 * JetStream's own limits are per stream (`max_bytes`, oldest dropped first, whoever wrote it)
 * or per subject (one attempt): neither stops one tenant's chatty job from pushing another
 * tenant's logs out. So the stream keeps no byte cap by default, and this keeper gives each
 * tenant its own: it follows the stream (headers only: it never reads output), counts each
 * tenant's output bytes still in the stream, and when a tenant holds more than
 * `tenantBytesMax` it purges that tenant's oldest messages, and only that tenant's
 * (`purge {filter: <p>.logs.<tenant>.>, seq}`), down to the cap. Another tenant's logs are
 * never touched by it; they leave by age (`max_age`) alone.
 *
 * It keeps no table: at start it counts the stream from its first message again. Several
 * intake instances each purge the same ranges (a purge below a sequence is idempotent).
 * A tenant may exceed its cap for as long as the keeper lags behind the stream (normally
 * milliseconds). A message older than the stream's `max_age` is no longer counted. Memory: three
 * numbers per LOGS message still counted (about 24 bytes; a million messages, some 24 MB).
 */
export interface TenantLogQuotaOptions {
  /** Output bytes one tenant may keep in the LOGS stream; -1: no per-tenant cap. */
  tenantBytesMax: number;
  /** LOGS stream retention to apply at start (the platform's credentials may, a node's may not); absent: the stream's own. */
  maxAgeMs?: number;
  /** LOGS stream `max_bytes` to apply at start (a backstop for the whole stream, oldest of any tenant dropped first); absent: the stream's own. */
  streamBytesMax?: number;
}

const DAY_MS = 24 * 3600 * 1000;
/** The default per-tenant cap: 1 GiB of output within the retention window. */
export const TENANT_LOG_BYTES_MAX_DEFAULT = 1024 * 1024 * 1024;

const quotaConfigSchema = z.object({
  tenantBytesMax: z.coerce.number().int().refine((n) => n === -1 || n >= 64 * 1024, 'at least 65536 (one log message), or -1 for none').default(TENANT_LOG_BYTES_MAX_DEFAULT),
  maxAgeMs: z.coerce.number().int().min(3600 * 1000).max(3650 * DAY_MS).optional(),
  streamBytesMax: z.coerce.number().int().min(-1).optional(),
});
const quotaEnvNames: Record<keyof TenantLogQuotaOptions, string> = {
  tenantBytesMax: 'FASTGPU_LOGS_TENANT_BYTES_MAX',
  maxAgeMs: 'FASTGPU_LOGS_MAX_AGE_MS',
  streamBytesMax: 'FASTGPU_LOGS_STREAM_BYTES_MAX',
};

/** The keeper's settings from the environment, validated like the rest of the configuration (libs/config). */
export function loadTenantLogQuotaOptions(env: NodeJS.ProcessEnv = process.env): TenantLogQuotaOptions {
  const fromEnv: Record<string, unknown> = {};
  for (const [key, name] of Object.entries(quotaEnvNames)) if (env[name] !== undefined && env[name] !== '') fromEnv[key] = env[name];
  const parsed = quotaConfigSchema.safeParse(fromEnv);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`invalid configuration ${quotaEnvNames[String(issue?.path[0]) as keyof TenantLogQuotaOptions]}: ${issue?.message}`);
  }
  return parsed.data;
}

interface TenantLogs {
  /** Sequences and sizes of the tenant's counted messages, oldest first, from `head`. */
  seqs: number[];
  sizes: number[];
  times: number[];
  head: number;
  bytes: number;
}

export class TenantLogQuota {
  private readonly tenants = new Map<string, TenantLogs>();
  private messages?: ConsumerMessages;
  private loop?: Promise<void>;
  private maxAgeMs = 0;
  private readonly subjectStart: string;
  /** Messages of a tenant purged by this keeper (for tests and logs). */
  readonly purged = new Map<string, number>();

  constructor(
    private readonly bus: { js: JetStreamClient; jsm: JetStreamManager; topology: Topology },
    private readonly options: TenantLogQuotaOptions,
    private readonly log: (message: string) => void = () => undefined,
  ) {
    this.subjectStart = bus.topology.subjects.logsAll.slice(0, -1);
  }

  /** Output bytes a tenant keeps in the stream, as far as the keeper has read. */
  bytes(tenantId: string): number {
    return this.tenants.get(tenantId)?.bytes ?? 0;
  }

  async start(): Promise<void> {
    const { jsm, topology } = this.bus;
    const name = topology.streams.logs;
    let info = await jsm.streams.info(name);
    if (this.options.maxAgeMs !== undefined || this.options.streamBytesMax !== undefined) {
      const wanted = { max_age: this.options.maxAgeMs !== undefined ? this.options.maxAgeMs * 1_000_000 : info.config.max_age, max_bytes: this.options.streamBytesMax ?? info.config.max_bytes };
      if (wanted.max_age !== info.config.max_age || wanted.max_bytes !== info.config.max_bytes) {
        info = await jsm.streams.update(name, { ...info.config, ...wanted });
        if (info.config.max_age !== wanted.max_age || info.config.max_bytes !== wanted.max_bytes) throw new Error(`stream ${name} kept max_age ${info.config.max_age} and max_bytes ${info.config.max_bytes}`);
      }
    }
    this.maxAgeMs = info.config.max_age / 1_000_000;
    if (this.options.tenantBytesMax < 0) return;
    const consumer = await this.bus.js.consumers.get(name, { filter_subjects: topology.subjects.logsAll, deliver_policy: DeliverPolicy.All, headers_only: true });
    this.messages = await consumer.consume({ max_messages: 1024 });
    const messages = this.messages;
    this.loop = (async () => {
      for await (const m of messages) {
        try {
          await this.count(m.subject, m.seq, Number(m.headers?.get(JsHeaders.MessageSizeHdr) ?? m.data.length), m.info.timestampNanos / 1_000_000);
        } catch (error) {
          // Counted again from the start at the next start; until then this tenant may stay over its cap.
          this.log(`log quota: ${(error as Error).message}`);
        }
      }
    })();
  }

  async stop(): Promise<void> {
    await this.messages?.close();
    await this.loop;
  }

  private async count(subject: string, seq: number, size: number, timeMs: number): Promise<void> {
    if (!subject.startsWith(this.subjectStart)) return;
    const tenantId = subject.slice(this.subjectStart.length).split('.')[0]!;
    let tenant = this.tenants.get(tenantId);
    if (!tenant) this.tenants.set(tenantId, (tenant = { seqs: [], sizes: [], times: [], head: 0, bytes: 0 }));
    tenant.seqs.push(seq);
    tenant.sizes.push(size);
    tenant.times.push(timeMs);
    tenant.bytes += size;
    // What the stream's age limit removed is no longer the tenant's.
    const oldestKept = this.maxAgeMs > 0 ? Date.now() - this.maxAgeMs : -Infinity;
    while (tenant.head < tenant.seqs.length && tenant.times[tenant.head]! < oldestKept) tenant.bytes -= tenant.sizes[tenant.head++]!;
    if (tenant.bytes > this.options.tenantBytesMax) {
      const from = tenant.head;
      while (tenant.bytes > this.options.tenantBytesMax && tenant.head < tenant.seqs.length - 1) tenant.bytes -= tenant.sizes[tenant.head++]!;
      const keepFrom = tenant.seqs[tenant.head]!;
      const response = await this.bus.jsm.streams.purge(this.bus.topology.streams.logs, { filter: `${this.subjectStart}${tenantId}.>`, seq: keepFrom });
      this.purged.set(tenantId, (this.purged.get(tenantId) ?? 0) + response.purged);
      this.log(`tenant ${tenantId} over its log limit of ${this.options.tenantBytesMax} bytes: its ${tenant.head - from} oldest log messages (below sequence ${keepFrom}) removed`);
    }
    if (tenant.head > 4096 && tenant.head * 2 > tenant.seqs.length) {
      tenant.seqs = tenant.seqs.slice(tenant.head);
      tenant.sizes = tenant.sizes.slice(tenant.head);
      tenant.times = tenant.times.slice(tenant.head);
      tenant.head = 0;
    }
  }
}

/** The keeper in intake, with the platform's credentials (purging needs stream rights a node has not). */
@Injectable()
export class TenantLogQuotaService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('intake.log-quota');
  private readonly quota: TenantLogQuota;

  constructor(@Inject(RUNTIME) runtime: Runtime) {
    this.quota = new TenantLogQuota(runtime.bus, loadTenantLogQuotaOptions(), (message) => this.logger.warn(message));
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.quota.start().catch((error: Error) => this.logger.error(`per-tenant log limits not enforced: ${error.message}`));
  }

  async onApplicationShutdown(): Promise<void> {
    await this.quota.stop();
  }
}
