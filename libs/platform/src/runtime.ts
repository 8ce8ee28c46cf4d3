import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import type { FastGpuConfig } from '@fastgpu/config';
import { createDatabase, migrateToLatest } from '@fastgpu/db';
import { connectBus } from '@fastgpu/messaging';
import { hashSecret, newApiKeySecret } from '@fastgpu/auth';
import { ConnectionWatch, HealthRegistry, systemClock, type Clock, type Runtime } from '@fastgpu/runtime';

export interface OwnedRuntime extends Runtime {
  /** The admin key when it was generated here (printed once at start). */
  generatedAdminKey?: string;
  close(): Promise<void>;
}

/** Connects to NATS and Postgres (or PGlite), applies migrations, registers health checks. */
/** This process's name among instances: FASTGPU_INSTANCE_ID, or host, pid and a random part. */
export function instanceIdOf(config: FastGpuConfig): string {
  return config.instanceId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

/**
 * Connects to NATS and Postgres (or PGlite), applies migrations, registers health checks.
 * `projectionLeases`: this process is one of several instances of a service (runStandalone), so
 * its projections apply only while they hold their lease (FASTGPU_PROJECTION_LEASE_TTL_MS).
 */
export async function createRuntime(config: FastGpuConfig, options: { clock?: Clock; migrate?: boolean; projectionLeases?: boolean } = {}): Promise<OwnedRuntime> {
  const database = createDatabase({ databaseUrl: config.databaseUrl, dataDir: path.join(config.dataDir, 'pglite') });
  const leases = options.projectionLeases && config.projectionLeaseTtlMs > 0 ? { leases: { instanceId: instanceIdOf(config), ttlMs: config.projectionLeaseTtlMs } } : {};
  let bus;
  try {
    if (options.migrate !== false) await migrateToLatest(database.db);
    bus = await connectBus({ natsUrl: config.natsUrl, subjectPrefix: config.subjectPrefix, name: 'fastgpu', ...(config.streamReplicas !== undefined ? { replicas: config.streamReplicas } : {}), ...leases });
  } catch (error) {
    // A start that is tried again (startWithRetry) leaves no pool behind.
    await database.close().catch(() => undefined);
    throw error;
  }
  const generatedAdminKey = config.adminKey ? undefined : newApiKeySecret();
  const health = new HealthRegistry();
  // Not ready while NATS is down, reconnecting included (the client retries for ever, so "not closed" is not "up").
  const connection = new ConnectionWatch(bus.nc);
  health.register('nats', connection.healthCheck());
  health.register('postgres', {
    check: async () => {
      await sql`select 1`.execute(database.db);
      return { ok: true };
    },
  });
  return {
    config,
    bus,
    db: database.db,
    clock: options.clock ?? systemClock,
    health,
    adminKeyHash: hashSecret(config.adminKey ?? generatedAdminKey!),
    generatedAdminKey,
    close: async () => {
      connection.stop();
      await bus.close();
      await database.close();
    },
  };
}
