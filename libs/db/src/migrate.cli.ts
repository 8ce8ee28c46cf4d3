import { loadConfig } from '@fastgpu/config';
import path from 'node:path';
import { createDatabase } from './database';
import { migrateToLatest } from './migrate';

// `npm run migrate`: applies migrations/ to DATABASE_URL, or to the embedded PGlite database.
const config = loadConfig();
const handle = createDatabase({ databaseUrl: config.databaseUrl, dataDir: path.join(config.dataDir, 'pglite') });
try {
  const applied = await migrateToLatest(handle.db);
  console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
} finally {
  await handle.close();
}
