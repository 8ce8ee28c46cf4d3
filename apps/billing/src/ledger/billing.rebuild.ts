import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { BillingDatabase } from '@fastgpu/db';
import { lastSequence, ProjectionRunner, type Bus } from '@fastgpu/messaging';
import { billingProjection, BILLING_PROJECTION } from './billing.projection';
import { BILLING_TABLES, tableNames } from './billing-tables';
import { BillingStore } from './billing.store';

/** Bound on how long a rebuild may take to reach the stream's end. */
export const REBUILD_TIMEOUT_MS = 10 * 60_000;

function assertSuffix(suffix: string): void {
  if (!/^_[a-z0-9_]{1,30}$/.test(suffix)) throw new Error(`rebuild suffix "${suffix}" must look like _rebuild_1`);
}

/** Fresh, empty copies of every billing projection table (`<table><suffix>`), with their constraints and indexes. */
export async function createRebuildTables(db: Kysely<BillingDatabase>, suffix: string): Promise<void> {
  assertSuffix(suffix);
  for (const table of BILLING_TABLES) {
    await sql.raw(`DROP TABLE IF EXISTS ${table}${suffix}`).execute(db);
    await sql.raw(`CREATE TABLE ${table}${suffix} (LIKE ${table} INCLUDING ALL)`).execute(db);
  }
}

export async function dropRebuildTables(db: Kysely<BillingDatabase>, suffix: string): Promise<void> {
  assertSuffix(suffix);
  for (const table of BILLING_TABLES) await sql.raw(`DROP TABLE IF EXISTS ${table}${suffix}`).execute(db);
  await db.deleteFrom('projection_checkpoints').where('projection', '=', `${BILLING_PROJECTION}@${suffix.slice(1)}`).execute();
}

/**
 * Replays the whole domain stream from sequence 1 into fresh suffixed tables, with side effects
 * off, while the live tables keep serving. Returns a store over the rebuilt tables. `batchMax`
 * bounds the events applied per transaction (default: the runner's, up to a thousand).
 */
export async function rebuildLedger(bus: Bus, db: Kysely<BillingDatabase>, suffix: string, timeoutMs = REBUILD_TIMEOUT_MS, options: { batchMax?: number } = {}): Promise<{ store: BillingStore; lastSequence: number }> {
  await createRebuildTables(db, suffix);
  const checkpointName = `${BILLING_PROJECTION}@${suffix.slice(1)}`;
  await db.deleteFrom('projection_checkpoints').where('projection', '=', checkpointName).execute();
  const runner = new ProjectionRunner(bus, db, billingProjection(checkpointName), { live: false, tableSuffix: suffix, checkpointName, ...(options.batchMax ? { batchMax: options.batchMax } : {}) });
  const target = await lastSequence(bus, bus.topology.streams.events);
  await runner.start();
  try {
    if (!(await runner.waitFor(target, timeoutMs))) throw new Error(`rebuild did not reach sequence ${target}: ${runner.health.error ?? 'timed out'}`);
  } finally {
    await runner.stop();
  }
  return { store: new BillingStore(db, tableNames(suffix)), lastSequence: target };
}
