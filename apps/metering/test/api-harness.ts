import 'reflect-metadata';
import { decodeEvent, type DomainEvent } from '@fastgpu/contracts';
import { lastSequence } from '@fastgpu/messaging';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, eventually, insertTestApiKey, logNow, type TestEnvironment } from '@fastgpu/testing';
import { meteringService } from '../src/metering.service';

/**
 * The metering service on real NATS and Postgres for HTTP tests: its clock is the log's clock at
 * start (`now`), so the lateness horizon at the door and the stream times the projection sees
 * agree; every instant a test uses is derived from `now`.
 */
export class MeteringHarness {
  private constructor(
    readonly env: TestEnvironment,
    readonly runtime: OwnedRuntime,
    readonly app: StartedApp,
    readonly now: number,
  ) {}

  static async start(): Promise<MeteringHarness> {
    const env = await createTestEnvironment();
    const now = await logNow(env.bus);
    const runtime = await createRuntime(env.config, { clock: { now: () => new Date(now) } });
    const app = await startServices(runtime, [meteringService], { port: 0, logger: false });
    return new MeteringHarness(env, runtime, app, now);
  }

  async close(): Promise<void> {
    await this.app.close();
    await this.runtime.close();
    await this.env.cleanup();
  }

  /** An API key of `role` for `tenantId` (null: a platform key). */
  async issueKey(keyId: string, tenantId: string | null, role: string): Promise<string> {
    return insertTestApiKey(this.env.database.db, { keyId, tenantId, role, issuedAt: new Date(this.now) });
  }

  /** An HTTP call; a JSON body is sent as is (`raw`: a string body). */
  async call(method: string, path: string, key: string | undefined, options: { body?: unknown; raw?: string; contentType?: string; headers?: Record<string, string> } = {}) {
    const hasBody = options.body !== undefined || options.raw !== undefined;
    const response = await fetch(`${this.app.url}${path}`, {
      method,
      headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(hasBody ? { 'content-type': options.contentType ?? 'application/json' } : {}), ...options.headers },
      body: options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body)),
    });
    const text = await response.text();
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON (CSV): the text
    }
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    return { status: response.status, headers: response.headers, body: body as any };
  }

  lastSequence(): Promise<number> {
    return lastSequence(this.env.bus, this.env.bus.topology.streams.events);
  }

  /** The events the log stored after `afterSequence`, in order. */
  async eventsAfter(afterSequence: number): Promise<DomainEvent[]> {
    const last = await this.lastSequence();
    const events: DomainEvent[] = [];
    for (let seq = afterSequence + 1; seq <= last; seq++) {
      const message = await this.env.bus.jsm.streams.getMessage(this.env.bus.topology.streams.events, { seq });
      if (!message) throw new Error(`sequence ${seq}: not in the stream`);
      const decoded = decodeEvent(message.data);
      if (!decoded.ok) throw new Error(`sequence ${seq}: ${decoded.reason}`);
      events.push(decoded.event);
    }
    return events;
  }

  /** Waits until the usage projection has applied everything the log holds now. */
  async settle(): Promise<void> {
    const last = await this.lastSequence();
    await eventually(async () => {
      const row = await this.env.database.db.selectFrom('projection_checkpoints').select('last_sequence').where('projection', '=', 'usage').executeTakeFirst();
      return Number(row?.last_sequence ?? 0) >= last;
    });
  }
}

export type ExternalType = 'ExternalAllocationStarted' | 'ExternalAllocationStopped';

export function cloudEvent(id: string, type: ExternalType, data: Record<string, unknown>, source = 'urn:partner:cluster-7') {
  return { specversion: '1.0', id, source, type, datacontenttype: 'application/json', data };
}
export const started = (id: string, allocationId: string, atMs: number, gpus = 2, source?: string) =>
  cloudEvent(id, 'ExternalAllocationStarted', { allocationId, projectId: 'ext', gpuModel: 'L40S', gpus, capacityType: 'on-demand', startedAt: new Date(atMs).toISOString() }, source);
export const stopped = (id: string, allocationId: string, atMs: number, source?: string) => cloudEvent(id, 'ExternalAllocationStopped', { allocationId, stoppedAt: new Date(atMs).toISOString() }, source);
