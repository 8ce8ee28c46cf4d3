import 'reflect-metadata';
import { expect } from 'vitest';
import { sql } from 'kysely';
import { newEventId, type DomainEvent, type EventData, type EventType } from '@fastgpu/contracts';
import { EventPublisher, lastSequence } from '@fastgpu/messaging';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, insertTestApiKey, usageRecordedData, type TestEnvironment } from '@fastgpu/testing';
import { createBillingService } from '../../src/billing.service';
import type { InvoiceDocument } from '../../src/invoices/invoice-document';
import type { BillingOptions } from '../../src/billing.config';
import { BILLING_TABLES } from '../../src/ledger/billing-tables';
import { dropRebuildTables, rebuildLedger } from '../../src/ledger/billing.rebuild';

/**
 * One billing service on a fresh database and stream prefix (real nats-server and Postgres), with
 * a finance key and two tenant keys, and helpers to publish the events other services would.
 */
export const ADMIN = 'test-admin-key-0123456789abcdef';
export const FINANCE = 'fgk_finance_key_for_tests_000000000';
export const ACME = 'fgk_acme_key_for_tests_00000000000';
export const GLOBEX = 'fgk_globex_key_for_tests_0000000000';

export interface Answer {
  status: number;
  headers: Headers;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

export class BillingHarness {
  private constructor(
    readonly env: TestEnvironment,
    readonly runtime: OwnedRuntime,
    readonly started: StartedApp,
    readonly publisher: EventPublisher,
  ) {}

  static async start(options: Partial<BillingOptions> = {}): Promise<BillingHarness> {
    const env = await createTestEnvironment({ adminKey: ADMIN });
    const runtime = await createRuntime(env.config);
    for (const [key, role, tenantId] of [
      [FINANCE, 'finance', null],
      [ACME, 'tenant', 'acme'],
      [GLOBEX, 'tenant', 'globex'],
    ] as const) {
      await insertTestApiKey(runtime.db, { keyId: `key-${role}-${tenantId ?? 'platform'}`, tenantId, role, issuedAt: new Date(), secret: key });
    }
    const started = await startServices(runtime, [createBillingService({ autoFinalizeIntervalMs: 0, ...options })], { port: 0, logger: false });
    return new BillingHarness(env, runtime, started, new EventPublisher(env.bus.js, env.bus.topology, 'test'));
  }

  async close(): Promise<void> {
    await this.started.close();
    await this.runtime.close();
    await this.env.cleanup();
  }

  async call(method: string, path: string, key: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
    const response = await fetch(`${this.started.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    const text = await response.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: response.status, headers: response.headers, text, json };
  }

  /** Publishes an event as its service would; returns its stream sequence. */
  async publish<T extends EventType>(type: T, data: EventData<T>, options: { tenantId?: string | null; time?: string; id?: string } = {}): Promise<number> {
    const id = options.id ?? newEventId();
    const event = this.publisher.build(type, data, { id, time: options.time ?? new Date().toISOString(), tenantId: options.tenantId ?? null, correlationId: id }) as DomainEvent;
    return (await this.publisher.publish(event)).sequence;
  }

  async streamEnd(): Promise<number> {
    return lastSequence(this.env.bus, this.env.bus.topology.streams.events);
  }

  async tenant(tenantId: string, billingTimeZone = 'UTC', currency = 'USD'): Promise<void> {
    await this.publish('TenantCreated', { tenantId, name: `${tenantId} corp`, billingTimeZone, currency, createdAt: '2026-01-01T00:00:00.000Z' }, { tenantId });
  }

  async priceBook(body: unknown): Promise<void> {
    const r = await this.call('POST', '/v1/price-books', FINANCE, body);
    expect(r.status, r.text).toBe(201);
  }

  async document(invoiceId: string, key = FINANCE): Promise<InvoiceDocument> {
    const r = await this.call('GET', `/v1/invoices/${invoiceId}`, key);
    expect(r.status, r.text).toBe(200);
    return r.json as InvoiceDocument;
  }

  /**
   * Rebuilds the ledger from sequence 1 into fresh tables, twice — one event per transaction, and
   * in batches as large as the log allows — and returns the billing tables whose rows differ from
   * the live ones (every column, in a total order), then drops the copies. Both equal: a batch
   * gives the rows of its events applied one by one.
   */
  async rebuildDifferences(): Promise<string[]> {
    await this.settle();
    const differences: string[] = [];
    for (const batchMax of [1, 1000]) {
      const suffix = `_rebuild_check_${batchMax}`;
      await rebuildLedger(this.env.bus, this.runtime.db, suffix, undefined, { batchMax });
      try {
        for (const table of BILLING_TABLES) {
          const read = async (name: string) => (await sql.raw(`SELECT * FROM ${name} ORDER BY to_jsonb(${name}.*)::text`).execute(this.runtime.db)).rows;
          const [live, rebuilt] = [await read(table), await read(`${table}${suffix}`)];
          if (JSON.stringify(live) !== JSON.stringify(rebuilt)) differences.push(`${table} (batches of ${batchMax})`);
        }
      } finally {
        await dropRebuildTables(this.runtime.db, suffix);
      }
    }
    return differences;
  }

  /** Makes the ledger catch up with the stream (the price-book list waits for it). */
  async settle(): Promise<void> {
    await this.call('GET', '/v1/price-books', FINANCE);
  }
}

/** A UsageRecorded as metering publishes it, for an allocation [startAt, endAt). */
export const usageData = usageRecordedData;

/** The flat test price book: a100 on-demand 2.00/GPU-hour, preemptible 0.60/GPU-hour, from 2026-01-01. */
export const FLAT_PRICES = {
  priceBookId: 'standard',
  currency: 'USD',
  effectiveFrom: '2026-01-01T00:00:00.000Z',
  prices: [
    { gpuModel: 'a100', capacityType: 'on-demand', pricePerGpuHour: '2.00' },
    { gpuModel: 'a100', capacityType: 'preemptible', pricePerGpuHour: '0.60' },
  ],
};
