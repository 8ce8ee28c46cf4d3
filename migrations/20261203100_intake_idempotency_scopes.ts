import { sql, type Kysely } from 'kysely';

// Intake: Idempotency-Keys for every create route, not only jobs. A key is scoped by the
// route's resource kind (job, lease, tenant), so the same key string on two routes names two
// requests; `resource_id` is the id the first request created (a job, lease or tenant id).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('idempotency_keys').addColumn('scope', 'text', (c) => c.notNull().defaultTo('job')).execute();
  await db.schema.alterTable('idempotency_keys').renameColumn('job_id', 'resource_id').execute();
  await sql`alter table idempotency_keys drop constraint idempotency_keys_pk`.execute(db);
  await sql`alter table idempotency_keys add constraint idempotency_keys_pk primary key (tenant_id, scope, key)`.execute(db);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await sql`delete from idempotency_keys where scope <> 'job'`.execute(db);
  await sql`alter table idempotency_keys drop constraint idempotency_keys_pk`.execute(db);
  await sql`alter table idempotency_keys add constraint idempotency_keys_pk primary key (tenant_id, key)`.execute(db);
  await db.schema.alterTable('idempotency_keys').renameColumn('resource_id', 'job_id').execute();
  await db.schema.alterTable('idempotency_keys').dropColumn('scope').execute();
}
