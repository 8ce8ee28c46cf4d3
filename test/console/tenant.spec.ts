/**
 * The console as a tenant sees it, in Debian's Chromium against the whole platform (real NATS and
 * PostgreSQL, simulated A100 nodes): signing in with a key, submitting a job through the form and
 * watching it go pending → running → succeeded on the open page (no reload), its sub-tasks on the
 * timeline, the usage chart of another tab moving once the job has run, the draft invoice's PDF
 * downloaded, another tenant's job id in the URL answered "not found", the leases view listing the
 * tenant's leases (from GET /v1/leases) and never another tenant's, and the price books in the
 * tenant's menu. Each main view is
 * screenshotted (1280 px, and the jobs table at a phone's 390 px) and checked by axe-core.
 */
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { DESKTOP, documentStillMarked, launchBrowser, markDocument, PHONE, screenshot, seriousAccessibilityViolations, signIn } from './browser';
import { FLOW_TIMEOUT_MS, startConsoleSystem, type ConsoleSystem } from './harness';

/** Long enough for a browser on a loaded machine to see each state; the run times below are seconds. */
const STATE_TIMEOUT_MS = 30_000;

let system: ConsoleSystem;
let browser: Browser;
let context: BrowserContext;
let acme: string;
let globex: string;
let acmeJobId: string;
let globexJobId: string;

beforeAll(async () => {
  [system, browser] = await Promise.all([startConsoleSystem({ fleet: 'a100:8x2' }), launchBrowser()]);
  context = await browser.newContext({ viewport: DESKTOP });
  acme = await system.tenantKey('acme');
  globex = await system.tenantKey('globex');
});

afterAll(async () => {
  await context?.close();
  await browser?.close();
  await system?.close();
});

/** Waits until the element shows exactly `text`. */
async function showsText(page: Page, testId: string, text: string): Promise<void> {
  await page.getByTestId(testId).filter({ hasText: new RegExp(`^${text}$`) }).waitFor({ timeout: STATE_TIMEOUT_MS });
}

describe('console: tenant', { timeout: FLOW_TIMEOUT_MS }, () => {
  it('submits a job and watches it go pending → running → succeeded live, with its timeline, usage and invoice PDF', async () => {
    // Another tenant's job holds all 16 GPUs until it is cancelled below, so the console's job waits first.
    globexJobId = await system.submitJob(globex, { projectId: 'blocker', gpuModels: ['a100'], gpusPerSubtask: 8, subtaskCount: 2, runtimeSeconds: 3600 }, 'blocker-1');
    await system.waitForJob(globex, globexJobId, 'running');

    // A second tab on the usage view, signed in on its own (the key is kept per tab), before the job runs.
    const usageTab = await context.newPage();
    await signIn(usageTab, system.url, acme, '/usage');
    const usageTotal = usageTab.getByTestId('usage-total');
    await usageTotal.waitFor();
    const totalBefore = await usageTotal.textContent();
    const chartBefore = await usageTab.getByTestId('usage-chart').getAttribute('aria-label');

    const page = await context.newPage();
    await signIn(page, system.url, acme);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Submit job' }).click();
    await page.getByLabel('Project').fill('vision');
    await page.getByLabel('GPU models').fill('a100');
    await page.getByLabel('GPUs per sub-task').fill('2');
    await page.getByLabel('Sub-tasks').fill('1');
    await page.getByLabel('Run time per sub-task (seconds)').fill('5');
    await page.getByRole('button', { name: 'Submit job' }).click();

    await page.getByRole('heading', { name: /^Job / }).waitFor();
    acmeJobId = decodeURIComponent(new URL(page.url()).pathname.split('/').pop()!);
    await markDocument(page);
    await showsText(page, 'job-state', 'pending');
    await page.getByRole('heading', { name: 'Why it waits' }).waitFor({ timeout: STATE_TIMEOUT_MS });
    await screenshot(page, 'job-detail-pending');
    expect((await system.http('DELETE', `/v1/jobs/${globexJobId}`, globex)).status).toBe(202);
    await showsText(page, 'job-state', 'running');
    await showsText(page, 'job-state', 'succeeded');
    expect(await documentStillMarked(page)).toBe(true);
    // The API agrees with what the page showed.
    expect((await system.http('GET', `/v1/jobs/${acmeJobId}`, acme)).body.state).toBe('succeeded');

    // The timeline draws the sub-task's bar, and says in words what it shows.
    const timeline = page.getByTestId('subtask-timeline');
    await timeline.filter({ has: page.locator('rect') }).waitFor();
    expect(await timeline.getAttribute('aria-label')).toMatch(/^Timeline of 1 sub-tasks: 1 succeeded/);
    await screenshot(page, 'job-detail');
    expect(await seriousAccessibilityViolations(page)).toEqual([]);

    // The usage tab, never reloaded, moved once the job's usage was recorded.
    await usageTotal.filter({ hasNotText: totalBefore ?? '' }).waitFor({ timeout: STATE_TIMEOUT_MS });
    expect(await usageTab.getByTestId('usage-chart').getAttribute('aria-label')).not.toBe(chartBefore);
    expect(await usageTab.getByTestId('usage-chart').getAttribute('aria-label')).toContain('vision');
    await screenshot(usageTab, 'usage');
    expect(await seriousAccessibilityViolations(usageTab)).toEqual([]);
    await usageTab.close();

    // The jobs table lists it as succeeded.
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Jobs' }).click();
    const row = page.getByRole('row').filter({ has: page.getByRole('link', { name: acmeJobId }) });
    await row.filter({ hasText: 'succeeded' }).waitFor();
    await screenshot(page, 'jobs');
    expect(await seriousAccessibilityViolations(page)).toEqual([]);

    // The month's draft invoice, once billing has priced the usage, and its PDF.
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Invoices' }).click();
    await page.getByRole('link', { name: /^Draft / }).first().click();
    await page.getByTestId('invoice-status').filter({ hasText: 'draft' }).waitFor();
    await page.getByTestId('invoice-total').filter({ hasText: /[1-9]/ }).waitFor({ timeout: STATE_TIMEOUT_MS });
    await screenshot(page, 'invoice-detail');
    expect(await seriousAccessibilityViolations(page)).toEqual([]);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download PDF' }).click()]);
    const pdf = await readFile(await download.path());
    expect(pdf.subarray(0, 5).toString('latin1')).toBe('%PDF-');
    expect(download.suggestedFilename()).toMatch(/\.pdf$/);
    await page.close();
  });

  it("answers another tenant's job id in the URL with not found", async () => {
    expect(globexJobId).toBeDefined();
    const page = await context.newPage();
    await signIn(page, system.url, acme, `/jobs/${encodeURIComponent(globexJobId)}`);
    await page.getByRole('heading', { name: 'Job not found' }).waitFor();
    expect(await page.getByText(globexJobId).isVisible()).toBe(true);
    expect(await page.getByText('blocker').count()).toBe(0);
    await page.close();
  });

  it("lists the tenant's leases and never another tenant's, and offers the price books in its menu", async () => {
    const lease = async (key: string, projectId: string) => {
      const answer = await system.http('POST', '/v1/leases', key, { projectId, gpuModels: ['a100'], gpus: 1 }, { 'idempotency-key': `console-${projectId}` });
      expect([201, 202]).toContain(answer.status);
      return answer.body.leaseId as string;
    };
    const own = await lease(acme, 'lease-own');
    const others = await lease(globex, 'lease-other');
    const page = await context.newPage();
    await signIn(page, system.url, acme);
    const menu = page.getByRole('navigation', { name: 'Main' });
    await menu.getByRole('link', { name: 'Price books' }).waitFor();
    await menu.getByRole('link', { name: 'Leases' }).click();
    const list = page.getByRole('region', { name: 'Your leases' });
    await list.getByText(own, { exact: true }).waitFor();
    expect(await list.getByText(others, { exact: true }).count()).toBe(0);
    expect(await list.getByText('lease-other').count()).toBe(0);
    await screenshot(page, 'leases');
    expect(await seriousAccessibilityViolations(page)).toEqual([]);
    await page.close();
  });

  it('shows the jobs and invoices views at 1280 px and the jobs table at 390 px without serious accessibility issues', async () => {
    const page = await context.newPage();
    await signIn(page, system.url, acme, '/invoices');
    await page.getByRole('link', { name: /^Draft / }).first().waitFor();
    await screenshot(page, 'invoices');
    expect(await seriousAccessibilityViolations(page)).toEqual([]);
    await page.close();

    const phone = await browser.newContext({ viewport: PHONE, isMobile: true, hasTouch: true });
    try {
      const small = await phone.newPage();
      await signIn(small, system.url, acme, '/jobs');
      await small.getByRole('link', { name: acmeJobId }).waitFor();
      // Nothing wider than the phone's screen but the table's own scroll region.
      const overflow = await small.evaluate(() => (globalThis as unknown as { document: { documentElement: { scrollWidth: number } } }).document.documentElement.scrollWidth);
      expect(overflow).toBeLessThanOrEqual(PHONE.width);
      await screenshot(small, 'jobs-phone');
      expect(await seriousAccessibilityViolations(small)).toEqual([]);
    } finally {
      await phone.close();
    }
  });
});
