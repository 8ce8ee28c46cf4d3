import { sql, type Kysely } from 'kysely';

/**
 * Metering: external allocations reported beyond the lateness horizon are kept, flagged `late`,
 * and never metered into billable usage (no hourly rows, no UsageRecorded): `late_received_ms` is
 * when FastGPU received the first late report. The partial index serves the late-usage report.
 * A rebuild copy left by an unfinished `npm run replay -- usage` gets the columns too, so it can
 * resume (its rows are rebuilt from the log either way).
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  for (const table of ['metering_allocations', 'metering_allocations_rebuild']) {
    await sql`ALTER TABLE IF EXISTS ${sql.table(table)} ADD COLUMN IF NOT EXISTS late boolean NOT NULL DEFAULT false, ADD COLUMN IF NOT EXISTS late_received_ms bigint`.execute(db);
  }
  await sql`CREATE INDEX metering_allocations_late ON metering_allocations (tenant_id COLLATE "C", allocation_key COLLATE "C") WHERE late`.execute(db);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP INDEX IF EXISTS metering_allocations_late`.execute(db);
  for (const table of ['metering_allocations', 'metering_allocations_rebuild']) {
    await sql`ALTER TABLE IF EXISTS ${sql.table(table)} DROP COLUMN IF EXISTS late, DROP COLUMN IF EXISTS late_received_ms`.execute(db);
  }
}
