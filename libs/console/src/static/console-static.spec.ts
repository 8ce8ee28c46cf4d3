/**
 * Proves what each path below /console is answered with (consoleAnswer, pure): the app for its
 * own routes, files of the build with their cache rule, 404 for a missing file, a dotfile or a
 * path leaving the folder, and "not built" for everything while index.html is missing.
 */
import { describe, expect, it } from 'vitest';
import { consoleAnswer } from './console-static';

const built = new Set(['index.html', 'assets/index-abc.js', 'assets/index-abc.css', 'favicon.svg']);
const exists = async (file: string) => built.has(file);

describe('consoleAnswer', () => {
  it('answers the app for the root and every route of the app, deep links included', async () => {
    for (const path of ['', '/', 'index.html', 'jobs', 'jobs/job-1', 'fleet/', 'invoices/inv-2026-11/lines']) expect([path, await consoleAnswer(path, exists)]).toEqual([path, { kind: 'app' }]);
  });

  it('sends files of the build: hashed assets immutable, the rest revalidated', async () => {
    expect(await consoleAnswer('assets/index-abc.js', exists)).toEqual({ kind: 'file', file: 'assets/index-abc.js', cacheControl: 'public, max-age=31536000, immutable' });
    expect(await consoleAnswer('favicon.svg', exists)).toEqual({ kind: 'file', file: 'favicon.svg', cacheControl: 'no-cache' });
  });

  it('is 404 for a missing file, a dotfile or a path out of the folder', async () => {
    for (const path of ['assets/index-old.js', 'assets/anything', 'robots.txt', 'logo.png', '../package.json', 'jobs/../../x', '.env', 'assets/.hidden']) {
      expect([path, await consoleAnswer(path, exists)]).toEqual([path, { kind: 'missing' }]);
    }
  });

  it('answers "not built" for every path while index.html is missing', async () => {
    const nothing = async () => false;
    for (const path of ['', 'jobs/1', 'assets/index-abc.js']) expect(await consoleAnswer(path, nothing)).toEqual({ kind: 'not-built' });
  });
});
