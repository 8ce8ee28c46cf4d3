import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchBrowser, signIn } from './browser';

/**
 * The README's picture of the console, taken from a running `npm start`:
 *
 *   npx tsx test/console/readme-screenshot.ts <url> <demo tenant key>
 *
 * submits a few jobs as the tenant (some short, some long, more than the demo fleet's GPUs, so
 * the table shows succeeded, running and pending ones), waits for the short ones to end, and
 * writes the jobs table at 1280×720 to docs/images/console-jobs.png.
 */
const JOBS = [
  { projectId: 'vision', gpuModels: ['a100'], gpusPerSubtask: 2, subtaskCount: 2, runtimeSeconds: 3, name: 'resnet-eval' },
  { projectId: 'vision', gpuModels: ['a100'], gpusPerSubtask: 4, subtaskCount: 2, runtimeSeconds: 1800, name: 'vit-finetune' },
  { projectId: 'speech', gpuModels: ['h100'], gpusPerSubtask: 8, subtaskCount: 1, runtimeSeconds: 3600, name: 'whisper-pretrain' },
  { projectId: 'speech', gpuModels: ['h100', 'a100'], gpusPerSubtask: 1, subtaskCount: 4, runtimeSeconds: 2, name: 'asr-batch' },
  { projectId: 'search', gpuModels: ['a100'], gpusPerSubtask: 1, subtaskCount: 3, runtimeSeconds: 4, name: 'embed-docs' },
  { projectId: 'search', gpuModels: ['h100'], gpusPerSubtask: 8, subtaskCount: 2, runtimeSeconds: 3600, name: 'rerank-train' },
  { projectId: 'vision', gpuModels: ['a100'], gpusPerSubtask: 8, subtaskCount: 2, runtimeSeconds: 600, name: 'detector-sweep' },
  { projectId: 'robotics', gpuModels: ['a100'], gpusPerSubtask: 2, subtaskCount: 1, runtimeSeconds: 2, name: 'policy-eval' },
];
/** The short jobs above have ended by then on the demo fleet (FASTGPU_SIMULATOR_SPEED 1). */
const SETTLE_MS = 8_000;
const VIEWPORT = { width: 1280, height: 720 } as const;

const [url, key] = process.argv.slice(2);
if (!url || !key) {
  console.error('usage: npx tsx test/console/readme-screenshot.ts <url of npm start> <demo tenant key>');
  process.exit(2);
}
for (const [i, job] of JOBS.entries()) {
  const answer = await fetch(`${url}/v1/jobs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'idempotency-key': `readme-screenshot-${i}` },
    body: JSON.stringify(job),
  });
  if (answer.status !== 202 && answer.status !== 200) throw new Error(`job ${job.name}: ${answer.status} ${await answer.text()}`);
}
await new Promise((r) => setTimeout(r, SETTLE_MS));
const browser = await launchBrowser();
try {
  const page = await (await browser.newContext({ viewport: VIEWPORT })).newPage();
  await signIn(page, url, key, '/jobs');
  await page.getByTestId('jobs-count').filter({ hasText: new RegExp(`^${JOBS.length} of ${JOBS.length} jobs shown$`) }).waitFor();
  const file = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../docs/images/console-jobs.png');
  await writeFile(file, await page.screenshot());
  console.log(`wrote ${file}`);
} finally {
  await browser.close();
}
