/**
 * The console as an SRE sees it, in Debian's Chromium against the whole platform (real NATS and
 * PostgreSQL, two simulated 8-GPU A100 nodes): the fleet shows which tenant's job holds each GPU;
 * draining the node that runs a job (confirmed in a dialog) leaves it drained with every GPU free
 * once the job's work has ended; the dead letters view lists a message no consumer could decode.
 * Fleet and dead letters are screenshotted at 1280 px and checked by axe-core.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext } from 'playwright-core';
import { DESKTOP, launchBrowser, screenshot, seriousAccessibilityViolations, signIn } from './browser';
import { FLOW_TIMEOUT_MS, startConsoleSystem, type ConsoleSystem } from './harness';

/** Long enough for a loaded machine; the job below runs for seconds. */
const STATE_TIMEOUT_MS = 30_000;
const GPUS_PER_NODE = 8;

let system: ConsoleSystem;
let browser: Browser;
let context: BrowserContext;
let sre: string;

beforeAll(async () => {
  [system, browser] = await Promise.all([startConsoleSystem({ fleet: `a100:${GPUS_PER_NODE}x2` }), launchBrowser()]);
  context = await browser.newContext({ viewport: DESKTOP });
  sre = await system.platformKey('sre');
});

afterAll(async () => {
  await context?.close();
  await browser?.close();
  await system?.close();
});

describe('console: sre', { timeout: FLOW_TIMEOUT_MS }, () => {
  it('drains the node a job runs on and sees its GPUs empty', async () => {
    const acme = await system.tenantKey('acme');
    const jobId = await system.submitJob(acme, { projectId: 'training', gpuModels: ['a100'], gpusPerSubtask: GPUS_PER_NODE, subtaskCount: 1, runtimeSeconds: 8 }, 'fills-a-node');
    const running = await system.waitForJob(acme, jobId, 'running');
    const nodeId = running.subtasks[0].nodeId as string;

    const page = await context.newPage();
    await signIn(page, system.url, sre, '/fleet');
    const row = page.getByTestId(`node-${nodeId}`);
    const held = row.getByRole('img', { name: /^GPU \d+: acme, job / });
    const free = row.getByRole('img', { name: /^GPU \d+: free$/ });
    await held.nth(GPUS_PER_NODE - 1).waitFor({ timeout: STATE_TIMEOUT_MS });
    expect(await held.count()).toBe(GPUS_PER_NODE);
    await screenshot(page, 'fleet');
    expect(await seriousAccessibilityViolations(page)).toEqual([]);

    await row.getByRole('button', { name: `Drain ${nodeId}` }).click();
    const dialog = page.getByRole('dialog', { name: `Drain ${nodeId}?` });
    await dialog.getByRole('button', { name: 'Drain node' }).click();
    await page.getByRole('status').filter({ hasText: `${nodeId}:` }).filter({ hasText: /sequence \d+/ }).waitFor({ timeout: STATE_TIMEOUT_MS });

    // The work already there finishes; then the node is drained and every GPU of it free.
    await row.filter({ hasText: 'drained' }).getByRole('button', { name: `Undrain ${nodeId}` }).waitFor({ timeout: STATE_TIMEOUT_MS });
    await free.nth(GPUS_PER_NODE - 1).waitFor({ timeout: STATE_TIMEOUT_MS });
    expect(await free.count()).toBe(GPUS_PER_NODE);
    expect(await held.count()).toBe(0);
    const nodes = await system.http('GET', '/v1/nodes', sre);
    expect(nodes.body.nodes.find((n: { nodeId: string }) => n.nodeId === nodeId)).toMatchObject({ status: 'drained', freeGpus: GPUS_PER_NODE });
    await screenshot(page, 'fleet-drained');
    await page.close();
  });

  it('lists a message no consumer could decode among the dead letters', async () => {
    const subject = system.env.bus.topology.subjects.tenant('garbage');
    await system.env.bus.js.publish(subject, new TextEncoder().encode('{not json'), { msgID: 'console-dead-letter' });

    const page = await context.newPage();
    await signIn(page, system.url, sre, '/dead-letters');
    const letter = page.getByRole('row').filter({ hasText: subject });
    for (const deadline = Date.now() + STATE_TIMEOUT_MS; (await letter.count()) === 0; ) {
      if (Date.now() > deadline) throw new Error(`no dead letter of ${subject} listed`);
      await page.getByRole('button', { name: 'Refresh' }).click();
      await page.waitForTimeout(250);
    }
    const seq = (await letter.first().getByRole('cell').first().textContent())!.trim();
    await letter.first().getByRole('button', { name: `Inspect ${seq}` }).click();
    expect(await page.getByLabel(`Body of dead letter ${seq}`).textContent()).toContain('{not json');
    await screenshot(page, 'dead-letters');
    expect(await seriousAccessibilityViolations(page)).toEqual([]);
    await page.close();
  });
});
