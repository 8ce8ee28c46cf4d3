import { createHash } from 'node:crypto';
import { availableParallelism, loadavg } from 'node:os';
import pg from 'pg';
import { sql } from 'kysely';
import { createDatabase, migrateToLatest } from '@fastgpu/db';
import { money, PriceTimeline, sumMoney } from '@fastgpu/money';
import { BillingStore } from '../apps/billing/src/ledger/billing.store';
import { SEQUENCE_MAX, type PieceRow } from '../apps/billing/src/ledger/billing-tables';
import { ratedPartRows } from '../apps/billing/src/ledger/rated-parts';
import { InvoiceReader } from '../apps/billing/src/invoices/invoice.reader';
import { canonicalJson, type InvoiceDocument } from '../apps/billing/src/invoices/invoice-document';

/**
 * `npm run bench -- billing [--tenants=10000] [--rows=1000000] [--keep]`: rates one billing period for
 * every tenant (the same code the API and CLI use: bulk-loaded draft inputs → buildInvoice per
 * invoice, every rule applied) and compares, in the same run on the same Postgres, with a plain SQL
 * `GROUP BY` sum of GPU-ms per invoice, GPU model and capacity type — over the usage pieces (the
 * issue's baseline) and over the rated parts the invoice run reads; the faster of the two is the
 * baseline. Runs alternate (baselines, then the invoice run) so load moves both alike. Prints
 * invoices/s, the ratio (the goal: the invoice run costs at most 3× the plain aggregate), peak
 * memory, the load average, and a SHA-256 over every invoice's canonical JSON (equal digests: the
 * same bytes). Runs in a fresh database on 127.0.0.1:5432 that it drops afterwards.
 */
const RUNS = 5;
/** Rows per generated insert batch. */
const INSERT_BATCH_ROWS = 20_000;

function flag(flags: string[], name: string, fallback: number): number {
  const hit = flags.find((f) => f.startsWith(`--${name}=`));
  const value = hit ? Number(hit.split('=')[1]) : fallback;
  if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`--${name} must be a positive integer`);
  return value;
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: process.env.TEST_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

export default async function billingBench(flags: string[]): Promise<void> {
  const tenants = flag(flags, 'tenants', 10_000);
  const rows = flag(flags, 'rows', 1_000_000);
  const dbName = `fgbilling_bench_${process.pid}`;
  const url = new URL(process.env.TEST_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
  url.pathname = `/${dbName}`;
  await admin((c) => c.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`));
  await admin((c) => c.query(`CREATE DATABASE ${dbName}`));
  const handle = createDatabase({ databaseUrl: url.toString(), poolSize: 4 });
  try {
    const db = handle.db;
    await migrateToLatest(db);
    const t0 = performance.now();
    await sql`INSERT INTO billing_tenants (tenant_id, name, currency, billing_time_zone, event_id, sequence)
      SELECT 't' || i, 'Tenant ' || i, 'USD', (ARRAY['UTC', 'America/New_York', 'Europe/Berlin'])[1 + i % 3], 'tenant-' || i, i FROM generate_series(1, ${tenants}) AS i`.execute(db);
    const prices = (a100: string, h100: string) =>
      JSON.stringify(
        ['on-demand', 'preemptible'].flatMap((capacityType, k) => [
          { gpuModel: 'a100', capacityType, pricePerGpuHour: k ? '1.0333333' : a100, incrementMs: 1000, minimumMs: 60_000 },
          { gpuModel: 'h100', capacityType, pricePerGpuHour: k ? '2.4166667' : h100, incrementMs: 1000, minimumMs: 60_000 },
        ]),
      );
    await db
      .insertInto('billing_price_books')
      .values([
        { price_book_id: 'standard', version: 1, currency: 'USD', effective_from_ms: Date.UTC(2026, 0, 1), prices: prices('2.123456789', '4.5'), published_by: 'bench', published_at: '2026-01-01T00:00:00.000Z', event_id: 'pb-1', sequence: 1 },
        { price_book_id: 'standard', version: 2, currency: 'USD', effective_from_ms: Date.UTC(2026, 9, 15), prices: prices('2.25', '4.75'), published_by: 'bench', published_at: '2026-10-01T00:00:00.000Z', event_id: 'pb-2', sequence: 2 },
      ])
      .execute();
    await sql`INSERT INTO billing_invoices (invoice_id, tenant_id, period, status) SELECT 'inv-t' || i, 't' || i, '2026-10', 'draft' FROM generate_series(1, ${tenants}) AS i`.execute(db);
    // Allocations of 30 s to 4 h starting between 1 and 30 October, 1–8 GPUs, every 50th interrupted;
    // each piece is rated into its parts by the ledger's own function, as the projection does on arrival.
    const timeline = new PriceTimeline(await new BillingStore(db, (name) => name).priceVersions());
    const base = Date.UTC(2026, 9, 1, 5);
    for (let first = 1; first <= rows; first += INSERT_BATCH_ROWS) {
      const pieces: PieceRow[] = [];
      for (let i = first; i < Math.min(first + INSERT_BATCH_ROWS, rows + 1); i++) {
        const tenant = `t${1 + (i % tenants)}`;
        const startMs = base + ((i * 7919) % (29 * 86_400)) * 1000;
        const endMs = startMs + ((i * 104_729) % 14_400 + 30) * 1000 + (i % 1000);
        pieces.push({
          event_id: `e${i}`, piece: 0, usage_id: `u${i}`, tenant_id: tenant, service_period: '2026-10', invoice_id: `inv-${tenant}`,
          gpu_model: Math.floor(i / 7) % 2 ? 'h100' : 'a100', capacity_type: Math.floor(i / 3) % 2 ? 'preemptible' : 'on-demand', gpus: [1, 2, 4, 8][i % 4]!,
          start_ms: startMs, end_ms: endMs, allocation_start_ms: startMs, allocation_end_ms: endMs, interrupted: i % 50 === 0, sequence: i + 10, assigned_sequence: i + 10,
        });
      }
      const parts = pieces.flatMap((p) => ratedPartRows(p, timeline));
      const column = <T>(list: T[], key: keyof T) => list.map((r) => r[key]);
      await sql`INSERT INTO billing_usage_pieces (event_id, piece, usage_id, tenant_id, service_period, invoice_id, gpu_model, capacity_type, gpus, start_ms, end_ms, allocation_start_ms, allocation_end_ms, interrupted, sequence, assigned_sequence)
        SELECT * FROM unnest(${column(pieces, 'event_id')}::text[], ${column(pieces, 'piece')}::int[], ${column(pieces, 'usage_id')}::text[], ${column(pieces, 'tenant_id')}::text[], ${column(pieces, 'service_period')}::text[],
          ${column(pieces, 'invoice_id')}::text[], ${column(pieces, 'gpu_model')}::text[], ${column(pieces, 'capacity_type')}::text[], ${column(pieces, 'gpus')}::int[], ${column(pieces, 'start_ms')}::bigint[], ${column(pieces, 'end_ms')}::bigint[],
          ${column(pieces, 'allocation_start_ms')}::bigint[], ${column(pieces, 'allocation_end_ms')}::bigint[], ${column(pieces, 'interrupted')}::boolean[], ${column(pieces, 'sequence')}::bigint[], ${column(pieces, 'assigned_sequence')}::bigint[])`.execute(db);
      await sql`INSERT INTO billing_rated_parts (event_id, piece, part, invoice_id, service_period, gpu_model, capacity_type, interrupted, price_book_id, version, start_ms, billed_gpu_ms)
        SELECT * FROM unnest(${column(parts, 'event_id')}::text[], ${column(parts, 'piece')}::int[], ${column(parts, 'part')}::int[], ${column(parts, 'invoice_id')}::text[], ${column(parts, 'service_period')}::text[],
          ${column(parts, 'gpu_model')}::text[], ${column(parts, 'capacity_type')}::text[], ${column(parts, 'interrupted')}::boolean[], ${column(parts, 'price_book_id')}::text[], ${column(parts, 'version')}::int[],
          ${column(parts, 'start_ms')}::bigint[], ${column(parts, 'billed_gpu_ms')}::bigint[])`.execute(db);
    }
    // As autovacuum would after a load: statistics, and the visibility map that index-only scans need.
    await sql`VACUUM ANALYZE`.execute(db);
    console.log(`data: ${tenants.toLocaleString('en-US')} tenants, ${rows.toLocaleString('en-US')} usage rows, 2 price versions (a change on 15 October), loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    let rssPeakBytes = process.memoryUsage().rss;
    const sampler = setInterval(() => (rssPeakBytes = Math.max(rssPeakBytes, process.memoryUsage().rss)), 20);
    const loadBefore = loadavg();

    const piecesAggregateMs: number[] = [];
    const partsAggregateMs: number[] = [];
    const invoiceMs: number[] = [];
    let aggregateGroups = 0;
    let partsBilledGpuMs = 0;
    const reader = new InvoiceReader(new BillingStore(db, (name) => name), 'FGPU');
    let docs: InvoiceDocument[] = [];
    for (let run = 0; run < RUNS; run++) {
      let start = performance.now();
      const pieces = await sql`SELECT invoice_id, gpu_model, capacity_type, sum(gpus::bigint * (end_ms - start_ms)) AS gpu_ms
        FROM billing_usage_pieces WHERE service_period = '2026-10' GROUP BY invoice_id, gpu_model, capacity_type`.execute(db);
      piecesAggregateMs.push(performance.now() - start);
      aggregateGroups = pieces.rows.length;
      start = performance.now();
      const parts = await sql<{ gpu_ms: string }>`SELECT invoice_id, gpu_model, capacity_type, sum(billed_gpu_ms) AS gpu_ms
        FROM billing_rated_parts WHERE service_period = '2026-10' GROUP BY invoice_id, gpu_model, capacity_type`.execute(db);
      partsAggregateMs.push(performance.now() - start);
      partsBilledGpuMs = parts.rows.reduce((sum, r) => sum + Number(r.gpu_ms), 0);
      start = performance.now();
      docs = await reader.periodDocuments('2026-10', undefined, SEQUENCE_MAX, Date.UTC(2026, 10, 4));
      invoiceMs.push(performance.now() - start);
      if (docs.some((d) => d.validationErrors.length)) throw new Error('benchmark data left usage without a price');
    }
    clearInterval(sampler);
    rssPeakBytes = Math.max(rssPeakBytes, process.memoryUsage().rss);
    const loadAfter = loadavg();

    // Both sides read the same rows: the invoices bill exactly the GPU-ms the plain aggregate of the parts sums.
    const billedGpuMs = docs.reduce((sum, d) => sum + d.lines.reduce((n, l) => n + (l.kind === 'usage' ? (l.quantityGpuMs ?? 0) : 0), 0), 0);
    if (billedGpuMs !== partsBilledGpuMs) throw new Error(`the invoices bill ${billedGpuMs} GPU-ms, the parts sum to ${partsBilledGpuMs}`);
    const lines = docs.reduce((n, d) => n + d.lines.length, 0);
    const total = sumMoney(docs.map((d) => money(d.total)));
    const digest = createHash('sha256');
    for (const d of docs) digest.update(canonicalJson(d));

    const piecesAggregate = median(piecesAggregateMs);
    const partsAggregate = median(partsAggregateMs);
    const aggregate = Math.min(piecesAggregate, partsAggregate);
    const invoiceRun = median(invoiceMs);
    const ratio = invoiceRun / aggregate;
    const load = (l: number[]) => l.map((x) => x.toFixed(2)).join(' ');
    console.log(`load average:        ${load(loadBefore)} (before), ${load(loadAfter)} (after), ${availableParallelism()} cores`);
    console.log(`plain SQL GROUP BY:  ${piecesAggregate.toFixed(0)} ms over usage pieces, ${partsAggregate.toFixed(0)} ms over rated parts (medians of ${RUNS}), ${aggregateGroups.toLocaleString('en-US')} groups`);
    console.log(`invoice run:         ${invoiceRun.toFixed(0)} ms (median of ${RUNS}: ${invoiceMs.map((m) => m.toFixed(0)).join(', ')}), ${docs.length.toLocaleString('en-US')} invoices, ${lines.toLocaleString('en-US')} lines, total ${total.toFixed(2)} USD`);
    console.log(`invoices/s:          ${Math.round(docs.length / (invoiceRun / 1000)).toLocaleString('en-US')} (${Math.round(rows / (invoiceRun / 1000)).toLocaleString('en-US')} usage rows/s)`);
    console.log(`ratio:               ${ratio.toFixed(2)}× the faster plain aggregate (goal ≤ 3×: ${ratio <= 3 ? 'met' : 'NOT met'})`);
    console.log(`peak memory (RSS):   ${(rssPeakBytes / 1024 / 1024).toFixed(0)} MiB`);
    console.log(`documents SHA-256:   ${digest.digest('hex')} (canonical JSON of every invoice, in order)`);
  } finally {
    await handle.close();
    if (flags.includes('--keep')) console.log(`kept database ${dbName} (--keep)`);
    else await admin((c) => c.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`));
  }
}
