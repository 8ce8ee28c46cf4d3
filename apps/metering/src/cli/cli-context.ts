import path from 'node:path';
import { loadConfig, type FastGpuConfig } from '@fastgpu/config';
import { createDatabase, migrateToLatest, type DatabaseHandle } from '@fastgpu/db';

/**
 * The database an operator command works on: DATABASE_URL, or the embedded PGlite folder (which
 * only one process can open: stop `npm start` first, or point both at PostgreSQL).
 */
export async function openOperatorDatabase(config: FastGpuConfig = loadConfig()): Promise<DatabaseHandle> {
  const handle = createDatabase({ databaseUrl: config.databaseUrl, dataDir: path.join(config.dataDir, 'pglite'), poolSize: 4 });
  await migrateToLatest(handle.db);
  return handle;
}
