import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { loadConfig, type FastGpuConfig } from '@fastgpu/config';
import { createDatabase, type DatabaseHandle } from '@fastgpu/db';
import { connectBus, deleteTopology, type Bus } from '@fastgpu/messaging';
import { databaseUrl, testServices, withAdminClient } from './services';

/** A test's own database (copied from the migrated template) and its own streams. */
export interface TestEnvironment {
  config: FastGpuConfig;
  bus: Bus;
  database: DatabaseHandle;
  cleanup(): Promise<void>;
}

export async function createTestEnvironment(overrides: Partial<FastGpuConfig> = {}): Promise<TestEnvironment> {
  const runId = inject('runId');
  const template = inject('templateDatabase');
  const unique = randomBytes(4).toString('hex');
  const dbName = `fgt_${runId}_${unique}`;
  await withAdminClient(async (c) => {
    for (let attempt = 1; ; attempt++) {
      try {
        await c.query(`CREATE DATABASE ${dbName} TEMPLATE ${template}`);
        return;
      } catch (error) {
        // Two files copying the template at the same instant can collide; retry briefly.
        if (attempt >= 10 || !/being accessed by other users/.test((error as Error).message)) throw error;
        await new Promise((r) => setTimeout(r, 100 * attempt));
      }
    }
  });
  const config = loadConfig({
    natsUrl: testServices.natsUrl,
    databaseUrl: databaseUrl(dbName),
    subjectPrefix: `t${runId}${unique}`,
    httpPort: 0,
    grpcPort: 0,
    ...overrides,
  });
  const bus = await connectBus({ natsUrl: config.natsUrl, subjectPrefix: config.subjectPrefix, name: `test-${unique}` });
  const database = createDatabase({ databaseUrl: config.databaseUrl, poolSize: 5 });
  return {
    config,
    bus,
    database,
    cleanup: async () => {
      await deleteTopology(bus.jsm, bus.topology).catch(() => undefined);
      await bus.close();
      await database.close();
      await withAdminClient((c) => c.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`)).catch(() => undefined);
    },
  };
}

/** Polls `check` until it returns a value (not undefined/false) or the time runs out. */
export async function eventually<T>(check: () => Promise<T | undefined | false> | T | undefined | false, options: { timeoutMs?: number; intervalMs?: number; message?: string } = {}): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 15_000);
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) throw new Error(`${options.message ?? 'condition not met in time'}${lastError ? `: ${(lastError as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 50));
  }
}
