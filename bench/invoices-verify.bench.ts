import { createHash, randomBytes } from 'node:crypto';
import { DeliverPolicy } from '@nats-io/jetstream';
import { HOUR_MS, newEventId, type DomainEvent, type EventData, type EventType } from '@fastgpu/contracts';
import { createDatabase, migrateToLatest } from '@fastgpu/db';
import { connectBus, deleteTopology, EventPublisher, lastSequence, ProjectionRunner, type Bus } from '@fastgpu/messaging';
import { databaseUrl, testServices, withAdminClient } from '@fastgpu/testing';
import { billingProjection } from '../apps/billing/src/ledger/billing.projection';
import { formatInvoiceNumber, invoiceIdFor } from '../apps/billing/src/ledger/invoice-ids';
import { BillingStore } from '../apps/billing/src/ledger/billing.store';
import type { InvoiceRow } from '../apps/billing/src/ledger/billing-tables';
import { documentSha256 } from '../apps/billing/src/invoices/invoice-document';
import { buildInvoice } from '../apps/billing/src/invoices/invoice-builder';
import { DEFAULT_PRESENTATION } from '../apps/billing/src/invoices/document-format';
import { decideCreditNoteDocument } from '../apps/billing/src/credit-notes/credit-note.decider';
import { verifyInvoices } from '../apps/billing/src/cli/verify';

/**
 * `npm run bench -- invoices-verify [--invoices=2000] [--runs=1]`: `npm run invoices -- verify` over a log
 * with thousands of finalized invoices (one per tenant, four usage records each, every tenth paid,
 * every twentieth credited), against a baseline measured in the same run on the same machine:
 * the raw read of the same invoices — every event of the stream read with an ordered consumer and
 * JSON-parsed, plus every finalized document read from Postgres, parsed and hashed. Runs alternate
 * (baseline, then verify; `--runs` of each, medians) so load moves both alike. Prints the ratio
 * verify/baseline, invoices per second, peak RSS and the load average. Uses its own stream prefix
 * and database, dropped afterwards.
 */
const USAGE_PER_INVOICE = 4;
const PERIOD = '2026-10';
/** Events published per acknowledged batch while generating. */
const PUBLISH_BATCH = 500;
/** Longest wait for the live ledger to apply the generated log. */
const CATCH_UP_TIMEOUT_MS = 600_000;

function flagValue(flags: string[], name: string, fallback: number): number {
  const hit = flags.find((f) => f.startsWith(`--${name}=`));
  const value = hit ? Number(hit.split('=')[1]) : fallback;
  if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`--${name} must be a positive integer`);
  return value;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

function build<T extends EventType>(publisher: EventPublisher, type: T, data: EventData<T>, time: string): DomainEvent {
  const id = newEventId();
  return publisher.build(type, data, { id, time, tenantId: null, correlationId: id }) as DomainEvent;
}

async function publishInBatches(publisher: EventPublisher, events: DomainEvent[]): Promise<void> {
  for (let start = 0; start < events.length; start += PUBLISH_BATCH) await publisher.publishAll(events.slice(start, start + PUBLISH_BATCH));
}

/** Tenants, a price book and usage, then each invoice finalized (in number order), some paid or credited. */
async function generate(bus: Bus, db: ReturnType<typeof createDatabase>['db'], invoices: number): Promise<void> {
  const publisher = new EventPublisher(bus.js, bus.topology, 'bench');
  const time = '2026-11-05T00:00:00.000Z';
  const events: DomainEvent[] = [
    build(publisher, 'PriceBookPublished', { priceBookId: 'standard', version: 1, currency: 'USD', effectiveFrom: '2026-01-01T00:00:00.000Z', prices: [{ gpuModel: 'a100', capacityType: 'on-demand', pricePerGpuHour: '2.123456', incrementMs: 1000, minimumMs: 60_000 }, { gpuModel: 'h100', capacityType: 'on-demand', pricePerGpuHour: '4.5', incrementMs: 1000, minimumMs: 60_000 }], publishedBy: 'bench', publishedAt: time }, time),
  ];
  for (let t = 0; t < invoices; t++) {
    events.push(build(publisher, 'TenantCreated', { tenantId: `t${t}`, name: `Tenant ${t}`, billingTimeZone: 'UTC', currency: 'USD', createdAt: time }, time));
    events.push(build(publisher, 'TaxRatesSet', { tenantId: `t${t}`, rates: [{ name: 'VAT', rate: '0.2' }], effectiveAt: time, effectiveFrom: '2026-01-01T00:00:00.000Z', actor: 'bench', reason: 'bench' }, time));
  }
  for (let t = 0; t < invoices; t++) {
    for (let u = 0; u < USAGE_PER_INVOICE; u++) {
      const startMs = Date.UTC(2026, 9, 1 + ((t + u * 7) % 28), u * 3);
      const endMs = startMs + (1 + ((t * 13 + u) % 40)) * HOUR_MS + (t % 997) * 1000;
      events.push(
        build(publisher, 'UsageRecorded', { usageId: `u${t}-${u}`, tenantId: `t${t}`, projectId: 'p', gpuModel: u % 2 ? 'h100' : 'a100', capacityType: 'on-demand', gpus: 1 + (u % 4), startAt: new Date(startMs).toISOString(), endAt: new Date(endMs).toISOString(), gpuMs: (1 + (u % 4)) * (endMs - startMs), interrupted: false, sourceSequences: [] }, time),
      );
    }
  }
  await publishInBatches(publisher, events);

  const ledger = new ProjectionRunner(bus, db, billingProjection());
  await ledger.start();
  try {
    const caughtUp = async () => {
      const end = await lastSequence(bus, bus.topology.streams.events);
      if (!(await ledger.waitFor(end, CATCH_UP_TIMEOUT_MS))) throw new Error(`the ledger did not reach ${end}: ${ledger.health.error ?? 'timed out'}`);
      return end;
    };
    const cutoff = await caughtUp();
    const store = new BillingStore(db, (name) => name);
    const finalizedAt = '2026-11-04T00:00:00.000Z';
    const actions: DomainEvent[] = [];
    let creditNotes = 0;
    for (let t = 0; t < invoices; t++) {
      const row = (await store.invoice(invoiceIdFor(`t${t}`, PERIOD))) as InvoiceRow;
      const number = formatInvoiceNumber('FGPU', t + 1);
      const built = buildInvoice(await store.inputs(row, { cutoff, atMs: Date.parse(finalizedAt), issuer: 'FGPU', finalization: { number, finalizedAt } }));
      const d = built.document;
      // In number order, one at a time: the ledger checks numbers are gapless.
      await publisher.publish(
        build(publisher, 'InvoiceFinalized', { invoiceId: d.invoiceId, tenantId: `t${t}`, period: PERIOD, number, total: d.total, currency: 'USD', cutoffSequence: cutoff, priceBookVersion: built.priceBookVersion, sha256: documentSha256(d), actor: 'bench', reason: 'bench', finalizedAt }, finalizedAt),
      );
      if (t % 10 === 0) actions.push(build(publisher, 'InvoicePaid', { invoiceId: d.invoiceId, tenantId: `t${t}`, amount: d.amountDue, currency: 'USD', paidAt: time, actor: 'bench', reason: 'wire' }, time));
      if (t % 20 === 5) {
        creditNotes++;
        const invoice = { invoiceId: d.invoiceId, tenantId: `t${t}`, number, status: 'finalized' as const, settlement: null, currency: 'USD', subtotal: d.subtotal, total: d.total, taxes: d.taxes, lines: d.lines };
        const note = decideCreditNoteDocument(invoice, [], { request: { kind: 'lines', lines: [{ invoiceLine: 1, quantityGpuHours: '1' }] }, creditNoteId: `cn-${t}`, number: `CN-FGPU-${String(creditNotes).padStart(6, '0')}`, issuedAt: time, actor: 'bench', reason: 'bench', requestSha256: '0'.repeat(64) });
        actions.push(build(publisher, 'CreditNoteIssued', note, time));
      }
    }
    // Credit notes in number order (the ledger checks they are gapless too).
    for (const action of actions) await publisher.publish(action);
    await caughtUp();
  } finally {
    await ledger.stop();
  }
}

/** The baseline: every event read and parsed (ordered consumer), every finalized document read, parsed and hashed. */
async function rawRead(bus: Bus, db: ReturnType<typeof createDatabase>['db'], last: number): Promise<{ ms: number; documents: number }> {
  const started = performance.now();
  const consumer = await bus.js.consumers.get(bus.topology.streams.events, { deliver_policy: DeliverPolicy.All });
  const messages = await consumer.consume({ max_messages: 5000 });
  for await (const m of messages) {
    m.json();
    if (m.seq >= last) break;
  }
  await messages.close();
  let documents = 0;
  let after = '';
  for (;;) {
    const page = await db.selectFrom('billing_invoices').select(['invoice_id', 'document']).where('status', '=', 'finalized').where('invoice_id', '>', after).orderBy('invoice_id').limit(500).execute();
    if (page.length === 0) break;
    after = page[page.length - 1]!.invoice_id;
    for (const row of page) {
      JSON.parse(row.document as string);
      createHash('sha256').update(row.document as string).digest('hex');
      documents++;
    }
  }
  return { ms: performance.now() - started, documents };
}

export default async function invoicesVerifyBench(flags: string[]): Promise<void> {
  const invoices = flagValue(flags, 'invoices', 2000);
  const runs = flagValue(flags, 'runs', 1);
  const runId = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const prefix = `benchv${runId}`;
  const dbName = `fastgpu_bench_verify_${runId}`;
  await withAdminClient((c) => c.query(`CREATE DATABASE ${dbName}`));
  const database = createDatabase({ databaseUrl: databaseUrl(dbName), poolSize: 4 });
  let bus: Bus | undefined;
  try {
    await migrateToLatest(database.db);
    bus = await connectBus({ natsUrl: testServices.natsUrl, subjectPrefix: prefix, name: 'bench-invoices-verify' });
    const generatedAt = performance.now();
    await generate(bus, database.db, invoices);
    const last = await lastSequence(bus, bus.topology.streams.events);
    console.log(`generated ${fmt(invoices)} finalized invoices from ${fmt(last)} events in ${((performance.now() - generatedAt) / 1000).toFixed(1)} s`);

    const baselines: number[] = [];
    const verifies: number[] = [];
    const rebuilds: number[] = [];
    const compares: number[] = [];
    let peakRssMb = 0;
    let outcome = '';
    for (let run = 0; run < runs; run++) {
      const raw = await rawRead(bus, database.db, last);
      if (raw.documents !== invoices) throw new Error(`the baseline read ${raw.documents} documents, expected ${invoices}`);
      baselines.push(raw.ms);
      const sampler = setInterval(() => (peakRssMb = Math.max(peakRssMb, process.memoryUsage().rss / 1_048_576)), 50);
      const started = performance.now();
      let lines = 0;
      const result = await verifyInvoices(bus, database.db, { suffix: `_bench_verify_${run}`, presentation: DEFAULT_PRESENTATION, pdf: false, out: () => lines++ });
      verifies.push(performance.now() - started);
      rebuilds.push(result.rebuildMs);
      compares.push(result.compareMs);
      clearInterval(sampler);
      if (result.invoices !== invoices || result.differences !== 0) throw new Error(`verify compared ${result.invoices} invoices with ${result.differences} difference(s)`);
      outcome = `${fmt(result.invoices)} invoices, ${fmt(result.creditNotes)} credit notes, ${result.differences} differences, ${fmt(lines)} lines printed`;
    }
    const [baseline, verify] = [median(baselines), median(verifies)];
    console.log(`verify: ${outcome}`);
    console.log(`
| figure | value |
| --- | --- |
| finalized invoices | ${fmt(invoices)} |
| events in the log | ${fmt(last)} |
| raw read (events parsed + documents parsed and hashed), median of ${runs} | ${fmt(baseline)} ms |
| invoices verify (rebuild from the log + comparison), median of ${runs} | ${fmt(verify)} ms |
|   of which the rebuild of the ledger / the comparison | ${fmt(median(rebuilds))} ms / ${fmt(median(compares))} ms |
| verify / raw read | ${(verify / baseline).toFixed(1)}× |
| invoices verified per second | ${fmt(invoices / (verify / 1000))} |
| peak RSS during verify | ${fmt(peakRssMb)} MB |`);
  } finally {
    if (bus) {
      await deleteTopology(bus.jsm, bus.topology).catch(() => undefined);
      await bus.close();
    }
    await database.close();
    await withAdminClient((c) => c.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`));
  }
}
