import { randomBytes } from 'node:crypto';
import type { TestProject } from 'vitest/node';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { createDatabase, migrateToLatest } from '@fastgpu/db';
import { databaseUrl, testServices, withAdminClient } from './services';

/**
 * Once per test run: a run id, and a template database migrated once, which each test file
 * copies (`CREATE DATABASE … TEMPLATE …`, as Immich's medium tests do). Teardown drops the
 * run's databases and streams, so runs never collide and can run back to back.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const runId = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const template = `fgt_${runId}_template`;
  await withAdminClient((c) => c.query(`CREATE DATABASE ${template}`));
  const handle = createDatabase({ databaseUrl: databaseUrl(template), poolSize: 1 });
  try {
    await migrateToLatest(handle.db);
  } finally {
    await handle.close();
  }
  project.provide('runId', runId);
  project.provide('templateDatabase', template);

  return async () => {
    await withAdminClient(async (c) => {
      const { rows } = await c.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE $1`, [`fgt_${runId}_%`]);
      for (const row of rows) await c.query(`DROP DATABASE IF EXISTS ${row.datname} WITH (FORCE)`);
    });
    const nc = await connect({ servers: testServices.natsUrl });
    try {
      const jsm = await jetstreamManager(nc);
      const prefix = `T${runId}`.toUpperCase();
      for await (const name of jsm.streams.names()) {
        if (name.startsWith(prefix)) await jsm.streams.delete(name).catch(() => false);
      }
    } finally {
      await nc.close();
    }
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    runId: string;
    templateDatabase: string;
  }
}
