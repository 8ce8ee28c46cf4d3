/* eslint-disable @typescript-eslint/no-explicit-any -- axe-core's results are typed at run time */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';

/**
 * The browser side of the console tests and of `npm run bench -- console`: the built console,
 * Debian's Chromium driven by playwright-core (the system browser, never a downloaded one),
 * screenshots and axe-core. Nothing here imports vitest, so the benchmark uses it too.
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** Screenshots are test artefacts (reports/ is git-ignored), one PNG per view. */
export const SCREENSHOTS = path.join(root, 'reports/console');

/** Builds the console once when `dist/console` has no build yet (`npm run build:console`). */
export function ensureConsoleBuilt(): void {
  if (existsSync(path.join(root, 'dist/console/index.html'))) return;
  const build = spawnSync('npm', ['run', 'build:console'], { cwd: root, encoding: 'utf8', stdio: 'pipe' });
  if (build.status !== 0) throw new Error(`npm run build:console failed (${build.status}):\n${build.stdout}\n${build.stderr}`);
}

/** The Chromium on PATH (Debian's package; `.ci/run` installs it), or a clear error. */
export function chromiumPath(): string {
  try {
    return execFileSync('sh', ['-c', 'command -v chromium || command -v chromium-browser'], { encoding: 'utf8' }).trim().split('\n')[0]!;
  } catch {
    throw new Error('no chromium on PATH: the console browser tests drive the system Chromium (apt-get install -y chromium; .ci/run does it)');
  }
}

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath(), headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
}

/** The main views are checked at a desktop width and at a phone's. */
export const DESKTOP = { width: 1280, height: 800 } as const;
export const PHONE = { width: 390, height: 844 } as const;

/** Saves a full-page PNG of what the page shows now under reports/console/<name>.png. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const file = path.join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: Array<{ target: string[] }>;
}

/** axe-core's violations of impact serious or critical on the page as it is now (WCAG 2 A/AA rules). */
export async function seriousAccessibilityViolations(page: Page): Promise<AxeViolation[]> {
  // These run in the page (globalThis is its window; this project's types have no DOM). The console's
  // Content-Security-Policy refuses inline scripts, so axe is evaluated over the DevTools protocol,
  // which the policy does not govern, rather than added as a script element.
  if (!(await page.evaluate(() => 'axe' in globalThis))) await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const page = globalThis as any;
    const result = await page.axe.run(page.document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
    return result.violations as AxeViolation[];
  });
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target })) }));
}

/** Opens the console at `path` (below /console) and signs in with `key` through its form; answers once signed in. */
export async function signIn(page: Page, origin: string, key: string, path = '/'): Promise<void> {
  const answer = await page.goto(`${origin}/console${path}`);
  if (!answer?.ok()) throw new Error(`GET /console${path}: ${answer?.status()} ${await answer?.text()}`);
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}

/**
 * Marks the document, so a test can later tell that what it saw arrived without a reload (a
 * reload or a new page load drops the mark).
 */
export async function markDocument(page: Page): Promise<void> {
  await page.evaluate(() => Object.assign(globalThis, { consoleTestMark: true }));
}

export function documentStillMarked(page: Page): Promise<boolean> {
  return page.evaluate(() => (globalThis as any).consoleTestMark === true);
}
