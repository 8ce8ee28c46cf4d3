/**
 * Instances that start at the same moment create one lease stream between them (issue 16: on a
 * cluster, a second scheduler exited when the stream another instance was creating could not be
 * read yet). Real NATS; the stream is named per run and deleted after.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnvironment, type TestEnvironment } from '@fastgpu/testing';
import { LeaderLease } from './leader-lease';

let env: TestEnvironment;
const stream = `LEASE_RACE_${process.pid}_${Date.now()}`;

beforeAll(async () => {
  env = await createTestEnvironment();
});

afterAll(async () => {
  await env?.bus.jsm.streams.delete(stream).catch(() => undefined);
  await env?.cleanup();
});

describe('LeaderLease.ensureStream', () => {
  it('lets eight instances starting together share one stream, configured as asked', async () => {
    const subject = `${env.bus.topology.prefix}.leader.race`;
    const leases = Array.from({ length: 8 }, (_, i) => new LeaderLease({ bus: env.bus, instanceId: `instance-${i}`, ttlMs: 1_000, stream, subject }));
    const outcomes = await Promise.allSettled(leases.map((lease) => lease.ensureStream()));
    expect(outcomes.filter((o) => o.status === 'rejected')).toEqual([]);
    const info = await env.bus.jsm.streams.info(stream);
    expect(info.config.subjects).toEqual([subject]);
    expect(info.config.max_msgs_per_subject).toBe(1);
  });

  it('still refuses a stream of that name configured otherwise', async () => {
    const subject = `${env.bus.topology.prefix}.leader.other`;
    await expect(new LeaderLease({ bus: env.bus, instanceId: 'late', ttlMs: 1_000, stream, subject }).ensureStream()).rejects.toThrow(/not configured as asked/);
  });
});
