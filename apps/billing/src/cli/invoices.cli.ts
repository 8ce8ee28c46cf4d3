import 'reflect-metadata';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '@fastgpu/config';
import { createDatabase, migrateToLatest, readCheckpoint } from '@fastgpu/db';
import { connectBus } from '@fastgpu/messaging';
import { money } from '@fastgpu/money';
import { billingOptions } from '../billing.config';
import { BILLING_PROJECTION } from '../ledger/billing.projection';
import { dropRebuildTables, rebuildLedger } from '../ledger/billing.rebuild';
import { BillingStore } from '../ledger/billing.store';
import { InvoiceReader, statusOf } from '../invoices/invoice.reader';
import { canonicalJson } from '../invoices/invoice-document';
import { invoiceCsv, invoiceJson, invoicePdf, periodCsv, presentationOf } from '../invoices/invoice-exports';

/**
 * `npm run invoices -- <command>` for finance, against DATABASE_URL (or the embedded PGlite data):
 *   export --period 2026-10 --format csv|json|pdf [--tenant T] [--out PATH]
 *       every invoice of the period from the same documents the API serves; CSV and JSON go to
 *       stdout (or --out), PDF writes one file per invoice into --out (default invoices-<period>/).
 *   verify
 *       rebuilds the ledger from the log (NATS_URL) into fresh tables and checks every finalized
 *       invoice comes back byte-identical in JSON, CSV and PDF with the same finance actions
 *       (payments, voids, credit notes), and the same number of finance actions in all; exits 1 on
 *       any difference.
 */
const USAGE = 'usage: npm run invoices -- export --period YYYY-MM --format csv|json|pdf [--tenant ID] [--out PATH]\n       npm run invoices -- verify';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { period: { type: 'string' }, format: { type: 'string', default: 'csv' }, tenant: { type: 'string' }, out: { type: 'string' } },
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
  const suffix = `_verify_${process.pid}`;
  try {
    const { store, lastSequence } = await rebuildLedger(bus, handle.db, suffix);
    const live = new InvoiceReader(new BillingStore(handle.db, (name) => name), options.issuer);
    const rebuilt = new InvoiceReader(store, options.issuer);
    const rows = await handle.db.selectFrom('billing_invoices').selectAll().where('status', '=', 'finalized').where('finalized_sequence', '<=', lastSequence).orderBy('invoice_id').execute();
    let differences = 0;
    for (const row of rows) {
      const other = await store.invoice(row.invoice_id);
      if (!other) {
        differences++;
        console.log(`MISSING ${row.number} ${row.invoice_id}`);
        continue;
      }
      const a = await live.document(row as never, 0, 0);
      const b = await rebuilt.document(other, 0, 0);
      // Payments, voids and credit notes are events too: the rebuilt ones must be the live ones (up to the rebuild's end).
      const liveActions = (await live.view(row as never, 0, 0)).actions.filter((action) => action.sequence <= lastSequence);
      const rebuiltView = await rebuilt.view(other, 0, 0);
      const same =
        invoiceJson(a) === invoiceJson(b) &&
        invoiceCsv(a) === invoiceCsv(b) &&
        (await invoicePdf(a)).equals(await invoicePdf(b)) &&
        JSON.stringify(liveActions) === JSON.stringify(rebuiltView.actions);
      if (!same) differences++;
      console.log(`${same ? 'same' : 'DIFFERENT'} ${row.number} ${row.sha256} ${statusOf(rebuiltView)}${money(rebuiltView.credited).gt(0) ? ` credited ${rebuiltView.credited}` : ''}`);
    }
    const countActions = async (table: string) => Number((await handle.db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).where('sequence', '<=', lastSequence).executeTakeFirstOrThrow()).n);
    const [liveCount, rebuiltCount] = [await countActions('billing_finance_actions'), await countActions(`billing_finance_actions${suffix}`)];
    if (liveCount !== rebuiltCount) differences++;
    console.log(`${liveCount === rebuiltCount ? 'same' : 'DIFFERENT'} finance actions: ${liveCount} live, ${rebuiltCount} rebuilt`);
    console.log(`${rows.length} finalized invoice(s) rebuilt from ${lastSequence} events: ${differences} difference(s)`);
    return differences === 0;
  } finally {
    await dropRebuildTables(handle.db, suffix);
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
