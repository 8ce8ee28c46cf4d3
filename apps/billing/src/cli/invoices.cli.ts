import 'reflect-metadata';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '@fastgpu/config';
import { createDatabase, migrateToLatest, readCheckpoint } from '@fastgpu/db';
import { connectBus } from '@fastgpu/messaging';
import { billingOptions } from '../billing.config';
import { BILLING_PROJECTION } from '../ledger/billing.projection';
import { BillingStore } from '../ledger/billing.store';
import { InvoiceReader } from '../invoices/invoice.reader';
import { verifyInvoices } from './verify';
import { canonicalJson } from '../invoices/invoice-document';
import { invoicePdf } from '../invoices/invoice-pdf';
import { periodCsv } from '../invoices/invoice-csv';
import { presentationOf } from '../invoices/document-format';

/**
 * `npm run invoices -- <command>` for finance, against DATABASE_URL (or the embedded PGlite data):
 *   export --period 2026-10 --format csv|json|pdf [--tenant T] [--out PATH]
 *       every invoice of the period from the same documents the API serves; CSV and JSON go to
 *       stdout (or --out), PDF writes one file per invoice into --out (default invoices-<period>/).
 *   verify [--pdf]
 *       rebuilds the ledger from the log (NATS_URL) into fresh tables and checks, page by page,
 *       every finalized invoice comes back byte-identical in JSON and CSV (and PDF with --pdf) with
 *       the same finance actions (payments, voids, credit notes) and credit-note documents, and the
 *       same number of finance actions in all; exits 1 on any difference (cli/verify.ts).
 */
const USAGE = 'usage: npm run invoices -- export --period YYYY-MM --format csv|json|pdf [--tenant ID] [--out PATH]\n       npm run invoices -- verify [--pdf]';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { period: { type: 'string' }, format: { type: 'string', default: 'csv' }, tenant: { type: 'string' }, out: { type: 'string' }, pdf: { type: 'boolean', default: false } },
});
const command = positionals[0];
const config = loadConfig();
const options = billingOptions();
const handle = createDatabase({ databaseUrl: config.databaseUrl, dataDir: path.join(config.dataDir, 'pglite') });

async function exportPeriod(): Promise<void> {
  const period = values.period;
  if (!period || !/^\d{4}-(0[1-9]|1[0-2])$/.test(period)) throw new Error(`--period YYYY-MM is required\n${USAGE}`);
  const format = values.format;
  if (format !== 'csv' && format !== 'json' && format !== 'pdf') throw new Error(`--format must be csv, json or pdf\n${USAGE}`);
  const reader = new InvoiceReader(new BillingStore(handle.db, (name) => name), options.issuer);
  const checkpoint = Number((await readCheckpoint(handle.db, BILLING_PROJECTION))?.last_sequence ?? 0);
  const nowMs = Date.now();
  const docs = await reader.periodDocuments(period, values.tenant, checkpoint, nowMs);
  if (format === 'pdf') {
    const folder = values.out ?? `invoices-${period}`;
    mkdirSync(folder, { recursive: true });
    for (const doc of docs) writeFileSync(path.join(folder, `${doc.number ?? `draft-${doc.tenant.tenantId}-${doc.period}`}.pdf`), await invoicePdf(doc, presentationOf(options)));
    console.error(`${docs.length} invoice PDF(s) written to ${folder}/`);
    return;
  }
  const text = format === 'csv' ? periodCsv(docs) : `${canonicalJson(docs)}\n`;
  if (values.out) writeFileSync(values.out, text);
  else process.stdout.write(text);
  console.error(`${docs.length} invoice(s) of ${period} (${docs.filter((d) => d.status === 'finalized').length} finalized)`);
}

async function verify(): Promise<boolean> {
  await migrateToLatest(handle.db);
  const bus = await connectBus({ natsUrl: config.natsUrl, subjectPrefix: config.subjectPrefix, name: 'fastgpu-invoices-verify', ensureStreams: false });
  try {
    const result = await verifyInvoices(bus, handle.db, { suffix: `_verify_${process.pid}`, presentation: presentationOf(options), pdf: values.pdf === true, out: (line) => console.log(line) });
    return result.differences === 0;
  } finally {
    await bus.close();
  }
}

let ok = true;
try {
  if (command === 'export') await exportPeriod();
  else if (command === 'verify') ok = await verify();
  else {
    console.error(USAGE);
    ok = false;
  }
} catch (error) {
  console.error((error as Error).message);
  ok = false;
} finally {
  await handle.close();
}
process.exit(ok ? 0 : 1);
