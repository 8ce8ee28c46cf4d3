/**
 * The console as finance sees it, in Debian's Chromium against the whole platform (real NATS and
 * PostgreSQL, simulated A100 nodes): every tenant's invoices; a tenant's draft, priced from a job
 * that ran, is finalized and then credited, each action confirmed in a dialog and each showing
 * the event it appended (InvoiceFinalized, CreditNoteIssued) with its stream sequence. The
 * invoices list and the invoice are screenshotted at 1280 px and checked by axe-core.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext } from 'playwright-core';
import { DESKTOP, launchBrowser, screenshot, seriousAccessibilityViolations, signIn } from './browser';
import { FLOW_TIMEOUT_MS, startConsoleSystem, type ConsoleSystem } from './harness';

const STATE_TIMEOUT_MS = 30_000;

let system: ConsoleSystem;
let browser: Browser;
let context: BrowserContext;
let finance: string;
let acme: string;

beforeAll(async () => {
  [system, browser] = await Promise.all([startConsoleSystem(), launchBrowser()]);
  context = await browser.newContext({ viewport: DESKTOP });
  finance = await system.platformKey('finance');
  acme = await system.tenantKey('acme');
});

afterAll(async () => {
  await context?.close();
  await browser?.close();
  await system?.close();
});

describe('console: finance', { timeout: FLOW_TIMEOUT_MS }, () => {
  it("finalizes a tenant's invoice and issues a credit note, each confirmed and showing its event", async () => {
    const jobId = await system.submitJob(acme, { projectId: 'vision', gpuModels: ['a100'], gpusPerSubtask: 1, subtaskCount: 1, runtimeSeconds: 2 }, 'billable');
    await system.waitForJob(acme, jobId, 'succeeded');

    const page = await context.newPage();
    await signIn(page, system.url, finance, '/invoices');
    const draft = page.getByRole('link', { name: /^Draft \d{4}-\d{2} \(acme\)$/ });
    for (const deadline = Date.now() + STATE_TIMEOUT_MS; (await draft.count()) === 0; ) {
      // The draft appears with the job's usage (billing follows the log); the list is a page, not live.
      if (Date.now() > deadline) throw new Error("acme's draft invoice is not listed");
      await page.waitForTimeout(250);
      await page.reload();
    }
    await screenshot(page, 'finance-invoices');
    expect(await seriousAccessibilityViolations(page)).toEqual([]);
    await draft.click();
    await page.getByTestId('invoice-total').filter({ hasText: /[1-9]/ }).waitFor({ timeout: STATE_TIMEOUT_MS });
    await page.getByTestId('invoice-status').filter({ hasText: /^draft$/ }).waitFor();

    const actions = page.getByRole('group', { name: 'Invoice actions' });
    await actions.getByRole('button', { name: 'Finalize…' }).click();
    const finalize = page.getByRole('dialog', { name: 'Finalize this invoice?' });
    await finalize.getByLabel('Reason (optional)').fill('month closed');
    await finalize.getByRole('button', { name: 'Finalize invoice' }).click();
    const result = page.getByTestId('action-result');
    await result.filter({ hasText: /Invoice finalized as \S+/ }).filter({ hasText: /Event InvoiceFinalized (appended )?at sequence \d+/ }).waitFor({ timeout: STATE_TIMEOUT_MS });
    await page.getByTestId('invoice-status').filter({ hasText: /^finalized$/ }).waitFor({ timeout: STATE_TIMEOUT_MS });
    const invoiceId = decodeURIComponent(new URL(page.url()).pathname.split('/').pop()!);
    expect((await system.http('GET', `/v1/invoices/${invoiceId}/status`, finance)).body.status).toBe('finalized');

    await actions.getByRole('button', { name: 'Issue credit note…' }).click();
    const credit = page.getByRole('dialog', { name: 'Issue a credit note?' });
    await credit.getByLabel('Reason').fill('goodwill');
    await credit.getByRole('button', { name: 'Issue credit note' }).click();
    await result.filter({ hasText: /Credit note \S+ issued for/ }).filter({ hasText: /Event CreditNoteIssued (appended )?at sequence \d+/ }).waitFor({ timeout: STATE_TIMEOUT_MS });
    const status = await system.http('GET', `/v1/invoices/${invoiceId}/status`, finance);
    expect(status.body.creditNotes).toHaveLength(1);
    await screenshot(page, 'finance-invoice');
    expect(await seriousAccessibilityViolations(page)).toEqual([]);
    await page.close();
  });
});
