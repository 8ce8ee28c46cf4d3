import 'reflect-metadata';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'vitest';
import { newEventId, type DomainEvent, type EventData, type EventType } from '@fastgpu/contracts';
import { EventPublisher } from '@fastgpu/messaging';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, insertTestApiKey, usageRecordedData, type TestEnvironment } from '@fastgpu/testing';
import type { BillingOptions } from '../../src/billing.config';
import { createBillingService } from '../../src/billing.service';
import type { InvoiceDocument } from '../../src/invoices/invoice-document';

/**
 * One billing service on a fresh database and stream prefix (real nats-server and Postgres) for
 * the document tests: a finance key, two tenant keys, the seller settings PDFs print, and helpers
 * to publish what other services would and to read PDFs back with poppler-utils.
 */
export const ADMIN = 'test-admin-key-0123456789abcdef';
export const FINANCE = 'fgk_finance_key_for_docs_000000000';
export const ACME = 'fgk_acme_key_for_docs_00000000000';
export const GLOBEX = 'fgk_globex_key_for_docs_0000000000';

export const SELLER: BillingOptions['seller'] = { name: 'FastGPU Europe SAS', address: '12 rue de la Paix\n75002 Paris\nFrance', taxId: 'FR12345678901', email: 'billing@fastgpu.example' };

export interface Answer {
  status: number;
  headers: Headers;
  buffer: Buffer;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

export class DocumentsHarness {
  private constructor(
    readonly env: TestEnvironment,
    readonly runtime: OwnedRuntime,
    readonly started: StartedApp,
    readonly publisher: EventPublisher,
  ) {}

  static async start(options: Partial<BillingOptions> = {}): Promise<DocumentsHarness> {
    const env = await createTestEnvironment({ adminKey: ADMIN });
    const runtime = await createRuntime(env.config);
    for (const [key, role, tenantId] of [
      [FINANCE, 'finance', null],
      [ACME, 'tenant', 'acme'],
      [GLOBEX, 'tenant', 'globex'],
    ] as const) {
      await insertTestApiKey(runtime.db, { keyId: `key-${role}-${tenantId ?? 'platform'}`, tenantId, role, issuedAt: new Date(), secret: key });
    }
    const started = await startServices(runtime, [createBillingService({ autoFinalizeIntervalMs: 0, seller: SELLER, paymentTermsDays: 14, ...options })], { port: 0, logger: false });
    return new DocumentsHarness(env, runtime, started, new EventPublisher(env.bus.js, env.bus.topology, 'test'));
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
    const buffer = Buffer.from(await response.arrayBuffer());
    const text = buffer.toString('utf8');
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: response.status, headers: response.headers, buffer, text, json };
  }

  /** Publishes an event as its service would; returns its stream sequence. */
  async publish<T extends EventType>(type: T, data: EventData<T>, options: { tenantId?: string | null; time?: string; id?: string } = {}): Promise<number> {
    const id = options.id ?? newEventId();
    const event = this.publisher.build(type, data, { id, time: options.time ?? new Date().toISOString(), tenantId: options.tenantId ?? null, correlationId: id }) as DomainEvent;
    return (await this.publisher.publish(event)).sequence;
  }

  async tenant(tenantId: string, name: string, billingTimeZone: string, currency: string): Promise<void> {
    await this.publish('TenantCreated', { tenantId, name, billingTimeZone, currency, createdAt: '2026-01-01T00:00:00.000Z' }, { tenantId });
  }

  async priceBook(body: unknown): Promise<void> {
    const r = await this.call('POST', '/v1/price-books', FINANCE, body);
    expect(r.status, r.text).toBe(201);
  }

  async taxRates(tenantId: string, rates: Array<{ name: string; rate: string }>): Promise<void> {
    const r = await this.call('POST', '/v1/billing/tax-rates', FINANCE, { tenantId, rates, effectiveFrom: '2026-01-01T00:00:00.000Z', reason: 'tax registration' });
    expect(r.status, r.text).toBe(201);
  }

  async usage(tenantId: string, usageId: string, startAt: string, endAt: string, extra: Partial<EventData<'UsageRecorded'>> = {}): Promise<number> {
    return this.publish('UsageRecorded', usageRecordedData(tenantId, usageId, startAt, endAt, extra), { tenantId });
  }

  async finalize(invoiceId: string, at?: string): Promise<InvoiceDocument> {
    const r = await this.call('POST', `/v1/invoices/${invoiceId}/finalize`, FINANCE, { reason: 'month closed', ...(at ? { at } : {}) });
    expect(r.status, r.text).toBe(200);
    return r.json as InvoiceDocument;
  }

  async document(invoiceId: string, key = FINANCE): Promise<InvoiceDocument> {
    const r = await this.call('GET', `/v1/invoices/${invoiceId}`, key);
    expect(r.status, r.text).toBe(200);
    return r.json as InvoiceDocument;
  }

  /** Makes the ledger catch up with the stream (the price-book list waits for it). */
  async settle(): Promise<void> {
    await this.call('GET', '/v1/price-books', FINANCE);
  }
}

// ------------------------------------------------------------------------------------------------
// Reading PDFs back. Needs poppler-utils (`apt-get install -y poppler-utils`: pdftoppm, pdftotext).

const execFileAsync = promisify(execFile);

export async function requirePoppler(): Promise<void> {
  for (const tool of ['pdftoppm', 'pdftotext']) {
    try {
      await execFileAsync(tool, ['-v']);
    } catch {
      throw new Error(`${tool} is missing: these tests read PDFs back with poppler-utils (apt-get install -y poppler-utils)`);
    }
  }
}

export interface WordBox {
  page: number;
  xMin: number;
  yMin: number;
  xMax: number;
  yMax: number;
  text: string;
}

export interface ReadPdf {
  pages: Array<{ width: number; height: number }>;
  words: WordBox[];
  /** The text of each page, in reading order (pdftotext -layout). */
  text: string[];
  /** PNG files of every page (pdftoppm), in page order. */
  pngs: string[];
}

/** Renders every page to PNG and reads every word's box and the text, with poppler-utils. */
export async function readPdf(pdf: Buffer): Promise<ReadPdf> {
  const folder = await mkdtemp(path.join(tmpdir(), 'fastgpu-pdf-'));
  try {
    const file = path.join(folder, 'document.pdf');
    await writeFile(file, pdf);
    await execFileAsync('pdftoppm', ['-r', '50', '-png', file, path.join(folder, 'page')]);
    const pngs = (await readdir(folder)).filter((f) => f.endsWith('.png')).sort();
    const { stdout: html } = await execFileAsync('pdftotext', ['-bbox', file, '-'], { maxBuffer: 64 * 1024 * 1024 });
    const pages: ReadPdf['pages'] = [];
    const words: WordBox[] = [];
    for (const [index, chunk] of html.split('<page ').slice(1).entries()) {
      const size = /width="([\d.]+)" height="([\d.]+)"/.exec(chunk)!;
      pages.push({ width: Number(size[1]), height: Number(size[2]) });
      for (const m of chunk.matchAll(/<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)<\/word>/g)) {
        words.push({ page: index + 1, xMin: Number(m[1]), yMin: Number(m[2]), xMax: Number(m[3]), yMax: Number(m[4]), text: m[5]!.replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"') });
      }
    }
    const text: string[] = [];
    for (let page = 1; page <= pages.length; page++) {
      const { stdout } = await execFileAsync('pdftotext', ['-layout', '-f', String(page), '-l', String(page), file, '-'], { maxBuffer: 64 * 1024 * 1024 });
      text.push(stdout);
    }
    return { pages, words, text, pngs };
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}

/** Pairs of words whose boxes overlap by more than `tolerance` points both ways, and words off their page. */
export function layoutProblems(read: ReadPdf, tolerance = 0.5): string[] {
  const problems: string[] = [];
  for (const [index, page] of read.pages.entries()) {
    const words = read.words.filter((w) => w.page === index + 1);
    for (const w of words) {
      if (w.xMin < 0 || w.yMin < 0 || w.xMax > page.width || w.yMax > page.height) problems.push(`page ${index + 1}: "${w.text}" lies off the page`);
    }
    for (let i = 0; i < words.length; i++) {
      for (let j = i + 1; j < words.length; j++) {
        const a = words[i]!;
        const b = words[j]!;
        const overlapX = Math.min(a.xMax, b.xMax) - Math.max(a.xMin, b.xMin);
        const overlapY = Math.min(a.yMax, b.yMax) - Math.max(a.yMin, b.yMin);
        if (overlapX > tolerance && overlapY > tolerance) problems.push(`page ${index + 1}: "${a.text}" overlaps "${b.text}"`);
      }
    }
  }
  return problems;
}
