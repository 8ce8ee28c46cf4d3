/**
 * Proves that health tells the truth without telling strangers why, on real NATS and Postgres:
 * the public `/healthz` and `/readyz` answer only `{status: "up"|"down"}` with 200 / 503 (no
 * checks, no projection states, no error text); `GET /v1/health` gives every check with its
 * detail, to an sre or admin key only (401 without a key, 403 for tenant and finance keys), and
 * says down with the failing check's reason when one fails.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { intakeService } from '../../apps/intake/src/intake.service';
import { ADMIN, isErrorShape, startEdge, type Edge } from './harness';

let edge: Edge;
let keys: { tenant: string; finance: string; sre: string };

beforeAll(async () => {
  edge = await startEdge([intakeService]);
  keys = { tenant: (await edge.tenantKey('acme')).secret, finance: (await edge.platformKey('finance')).secret, sre: (await edge.platformKey('sre')).secret };
});
afterAll(async () => edge?.close());

describe('health', () => {
  it('answers only up or down in public', async () => {
    for (const path of ['/healthz', '/readyz', '/healthz?details=1']) {
      const answer = await edge.http('GET', path);
      expect([path, answer.status, answer.body]).toEqual([path, 200, { status: 'up' }]);
    }
  });

  it('gives the details to sre and admin keys only', async () => {
    const anonymous = await edge.http('GET', '/v1/health');
    expect(anonymous.status).toBe(401);
    expect(isErrorShape(anonymous.body)).toBe(true);
    expect((await edge.http('GET', '/v1/health', keys.tenant)).status).toBe(403);
    expect((await edge.http('GET', '/v1/health', keys.finance)).status).toBe(403);
    for (const key of [keys.sre, ADMIN]) {
      const answer = await edge.http('GET', '/v1/health', key);
      expect(answer.status).toBe(200);
      expect(answer.body.status).toBe('up');
      expect(answer.body.checks).toMatchObject({ nats: { ok: true }, postgres: { ok: true }, 'projection:intake-jobs': { ok: true, detail: { status: 'running' } } });
    }
  });

  it('says down in public without the reason, and the reason with a key', async () => {
    edge.runtime.health.register('edge-test-failure', { check: () => ({ ok: false, detail: 'internal reason: sequence 42 cannot be applied' }) });
    for (const path of ['/healthz', '/readyz']) {
      const answer = await edge.http('GET', path);
      expect([path, answer.status, answer.body]).toEqual([path, 503, { status: 'down' }]);
      expect(answer.text).not.toContain('sequence 42');
    }
    const details = await edge.http('GET', '/v1/health', keys.sre);
    expect(details.status).toBe(503);
    expect(details.body).toMatchObject({ status: 'down', checks: { 'edge-test-failure': { ok: false, detail: 'internal reason: sequence 42 cannot be applied' }, postgres: { ok: true } } });
  });
});
