/**
 * Proves per-tenant limits on the LOGS stream (issue 18; apps/intake/src/outputs/tenant-log-quota.ts)
 * on real NATS with the real agent: with a per-tenant cap, a tenant whose chatty jobs write far
 * more than its cap loses only its own oldest output (its newest, up to the end marker of its
 * last run, stays), while another tenant's logs written before the flood stay whole, byte for
 * byte; the configured retention is applied to the stream; and a keeper started again counts
 * the same per-tenant bytes from the stream alone (it keeps no table).
 */
import { DeliverPolicy } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { loadTenantLogQuotaOptions, TenantLogQuota } from '../../intake/src/outputs/tenant-log-quota';
import { agentConfig, EventTail, FakeHost, runCommand, send, startAgent, type RunningAgent } from './agent-harness';

const NODE = 'gpu-host-quota';
const TENANT_BYTES_MAX = 256 * 1024;
const RETENTION_MS = 3 * 3600 * 1000;
let env: TestEnvironment;
let host: FakeHost;
let tail: EventTail;
let agent: RunningAgent;
let quota: TenantLogQuota;

beforeAll(async () => {
  env = await createTestEnvironment();
  host = await FakeHost.create();
  tail = new EventTail(env.bus);
  await tail.start();
  agent = await startAgent(env, agentConfig(env, host, { nodeId: NODE, logAttemptBytesMax: 1024 * 1024 }));
  quota = new TenantLogQuota(env.bus, loadTenantLogQuotaOptions({ FASTGPU_LOGS_TENANT_BYTES_MAX: String(TENANT_BYTES_MAX), FASTGPU_LOGS_MAX_AGE_MS: String(RETENTION_MS) }));
  await quota.start();
});

afterAll(async () => {
  await quota?.stop();
  await agent?.stop();
  await tail?.stop();
  await host?.cleanup();
  await env?.cleanup();
});

interface Stored {
  seq: number;
  subject: string;
  text: string;
}

/** Everything the LOGS stream holds under `filter`, in order. */
async function stored(filter: string): Promise<Stored[]> {
  const out: Stored[] = [];
  const state = (await env.bus.jsm.streams.info(env.bus.topology.streams.logs, { subjects_filter: filter })).state;
  const total = Object.values(state.subjects ?? {}).reduce((sum, n) => sum + n, 0);
  if (total === 0) return out;
  const consumer = await env.bus.js.consumers.get(env.bus.topology.streams.logs, { filter_subjects: filter, deliver_policy: DeliverPolicy.All });
  while (out.length < total) {
    const m = await consumer.next({ expires: 2000 });
    if (!m) break;
    out.push({ seq: m.seq, subject: m.subject, text: new TextDecoder().decode(m.data) });
  }
  return out;
}
const bytesOf = (messages: Stored[]) => messages.reduce((sum, m) => sum + Buffer.byteLength(m.text), 0);
const tenantLogs = (tenantId: string) => stored(`${env.bus.topology.subjects.logsAll.slice(0, -1)}${tenantId}.>`);

describe('per-tenant log limits', () => {
  it('applies the configured retention to the LOGS stream', async () => {
    const info = await env.bus.jsm.streams.info(env.bus.topology.streams.logs);
    expect(info.config.max_age).toBe(RETENTION_MS * 1_000_000);
    expect(info.config.max_bytes).toBe(-1);
  });

  it('a flooding tenant loses only its own oldest output; another tenant\'s logs stay whole', async () => {
    const quiet = runCommand({ subtaskId: 'st-quiet', jobId: 'job-quiet', tenantId: 'globex', script: "for (let i = 0; i < 300; i++) console.log('globex line ' + i); require('fs').writeFileSync(process.env.FASTGPU_RESULT_PATH, 'ok')" });
    await send(env, NODE, quiet);
    await tail.waitFor('SubtaskCompleted', (e) => e.data.subtaskId === 'st-quiet');
    const before = await eventually(async () => {
      const messages = await tenantLogs('globex');
      return messages.some((m) => m.text === '' && m.seq === messages.at(-1)!.seq) && messages;
    });
    const quietText = before.map((m) => m.text).join('');
    expect(quietText).toBe(Array.from({ length: 300 }, (_, i) => `globex line ${i}\n`).join(''));

    // Three runs of ~400 KB each: about five times the tenant's cap.
    const floods = [1, 2, 3].map((n) => runCommand({ subtaskId: `st-flood-${n}`, jobId: `job-flood-${n}`, tenantId: 'acme', script: `for (let i = 0; i < 4000; i++) console.log('flood ${n} line ' + String(i).padStart(5, '0') + ' ' + 'z'.repeat(80)); require('fs').writeFileSync(process.env.FASTGPU_RESULT_PATH, 'ok')` }));
    for (const command of floods) {
      await send(env, NODE, command);
      await tail.waitFor('SubtaskCompleted', (e) => e.data.subtaskId === command.subtaskId);
    }
    const lastSubject = env.bus.topology.subjects.logs('acme', 'job-flood-3', 0, 1);
    const kept = await eventually(async () => {
      const messages = await tenantLogs('acme');
      const ended = messages.at(-1)?.subject === lastSubject && messages.at(-1)!.text === '';
      return ended && bytesOf(messages) <= TENANT_BYTES_MAX && messages;
    }, { message: 'acme not brought under its cap' });
    expect(quota.purged.get('acme')).toBeGreaterThan(0);
    expect(quota.bytes('acme')).toBe(bytesOf(kept));
    // What acme keeps is its newest output: the tail of its last run, in order, ending with the end marker.
    expect(kept.every((m) => m.subject === lastSubject)).toBe(true);
    expect(kept.at(-2)!.text.trimEnd().endsWith(`flood 3 line 03999 ${'z'.repeat(80)}`)).toBe(true);

    const after = await tenantLogs('globex');
    expect(after).toEqual(before);
    expect(quota.purged.get('globex')).toBeUndefined();
  });

  it('counts the same bytes again from the stream alone when started again', async () => {
    const again = new TenantLogQuota(env.bus, { tenantBytesMax: TENANT_BYTES_MAX });
    await again.start();
    try {
      const acme = bytesOf(await tenantLogs('acme'));
      const globex = bytesOf(await tenantLogs('globex'));
      await eventually(() => again.bytes('acme') === acme && again.bytes('globex') === globex, { message: `counted ${again.bytes('acme')}/${again.bytes('globex')}, stream holds ${acme}/${globex}` });
      expect(again.purged.size).toBe(0);
    } finally {
      await again.stop();
    }
  });

  it('refuses a cap below one log message', () => {
    expect(() => loadTenantLogQuotaOptions({ FASTGPU_LOGS_TENANT_BYTES_MAX: '1000' })).toThrow(/FASTGPU_LOGS_TENANT_BYTES_MAX/);
    expect(loadTenantLogQuotaOptions({}).tenantBytesMax).toBe(1024 * 1024 * 1024);
  });
});
