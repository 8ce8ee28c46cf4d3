/**
 * Proves that another tenant's object answers exactly like a missing one, body and work alike.
 * libs/auth's `findForTenant`, on real Postgres: for a foreign id and for a missing id it runs the
 * same SQL (the tenant is in the query, so a foreign row is never read), the same catch-up on a
 * miss and the same number of lookups, and throws the same 404; a platform key finds both
 * tenants' objects. Over HTTP and gRPC with intake running: another tenant's job and a job that
 * does not exist get the same status and the same body (but for the id itself); another
 * tenant's lease likewise, to GET and DELETE over HTTP and GetLease and ReleaseLease over gRPC,
 * and the refused release leaves the owner's lease as it was.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { findForTenant, type Principal } from '@fastgpu/auth';
import { ApiError } from '@fastgpu/http';
import { intakeService } from '../../apps/intake/src/intake.service';
import { metadata, startEdge, unary, type Edge } from './harness';

let edge: Edge;

beforeAll(async () => {
  edge = await startEdge([intakeService]);
});
afterAll(async () => edge?.close());

describe('findForTenant', () => {
  it('does the same work and answers the same for a foreign id as for a missing one', async () => {
    const db = edge.env.database.db;
    const row = (jobId: string, tenantId: string) => ({ job_id: jobId, tenant_id: tenantId, project_id: 'p', name: null, spec: JSON.stringify({}), state: 'pending', submitted_at: new Date().toISOString(), last_sequence: 1 });
    await db.insertInto('jobs').values([row('scope-acme', 'acme'), row('scope-globex', 'globex')]).execute();

    /** What one read costs: every statement it runs and every catch-up it waits for. */
    async function read(principal: Principal, jobId: string): Promise<{ work: string[]; outcome: unknown }> {
      const work: string[] = [];
      const lookup = (tenantId: string | null) => {
        let query = db.selectFrom('jobs').selectAll().where('job_id', '=', jobId);
        if (tenantId !== null) query = query.where('tenant_id', '=', tenantId);
        const compiled = query.compile();
        work.push(`${compiled.sql} [${compiled.parameters.length} parameters]`);
        return query.executeTakeFirst();
      };
      const onMiss = async () => {
        work.push('catch up');
      };
      try {
        const found = await findForTenant(principal, `job ${jobId}`, lookup, { onMiss });
        return { work, outcome: found.job_id };
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        return { work, outcome: { status: error.status, body: error.body() } };
      }
    }

    const acme: Principal = { keyId: 'k-acme', role: 'tenant', tenantId: 'acme' };
    const foreign = await read(acme, 'scope-globex');
    const missing = await read(acme, 'scope-nobody');
    expect(foreign.work).toEqual(missing.work);
    expect(foreign.work.filter((w) => w === 'catch up')).toHaveLength(1);
    expect(foreign.work.filter((w) => w.includes('"tenant_id" = $2'))).toHaveLength(2);
    const normalise = (outcome: unknown, id: string) => JSON.parse(JSON.stringify(outcome).replaceAll(id, '<id>'));
    expect(normalise(foreign.outcome, 'scope-globex')).toEqual(normalise(missing.outcome, 'scope-nobody'));
    expect(foreign.outcome).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });

    // The owner finds it at once; a platform key finds either tenant's.
    expect(await read(acme, 'scope-acme')).toEqual({ work: [expect.stringContaining('"tenant_id" = $2')], outcome: 'scope-acme' });
    const finance: Principal = { keyId: 'k-fin', role: 'finance', tenantId: null };
    expect((await read(finance, 'scope-globex')).outcome).toBe('scope-globex');
  });
});

describe("another tenant's job over HTTP and gRPC", () => {
  it('answers like a job that does not exist', async () => {
    const acme = await edge.tenantKey('acme');
    const globex = await edge.tenantKey('globex');
    const submitted = await edge.http('POST', '/v1/jobs', globex.secret, { projectId: 'p', gpuModels: ['a100'], gpusPerSubtask: 1, subtaskCount: 1, runtimeSeconds: 60 }, { 'idempotency-key': 'scope-1' });
    expect(submitted.status).toBeLessThan(300);
    const globexJob = submitted.body.jobId as string;
    const missingJob = `${globexJob.slice(0, -4)}0000`;

    const foreign = await edge.http('GET', `/v1/jobs/${globexJob}`, acme.secret);
    const missing = await edge.http('GET', `/v1/jobs/${missingJob}`, acme.secret);
    expect(foreign.status).toBe(404);
    expect([foreign.status, foreign.text.replaceAll(globexJob, '<id>')]).toEqual([missing.status, missing.text.replaceAll(missingJob, '<id>')]);

    const intake = edge.intake();
    const overGrpc = async (jobId: string) => {
      const answer = await unary(intake, 'GetJob', { jobId }, metadata(acme.secret));
      if (answer.ok) throw new Error(`${jobId} answered`);
      return { code: answer.error.code, details: answer.error.details.replaceAll(jobId, '<id>'), trailer: answer.error.metadata.get('fastgpu-error-code') };
    };
    const grpcForeign = await overGrpc(globexJob);
    expect(grpcForeign.code).toBe(grpc.status.NOT_FOUND);
    expect(grpcForeign).toEqual(await overGrpc(missingJob));
  });
});

describe("another tenant's lease over HTTP and gRPC", () => {
  it('answers like a lease that does not exist, to reads and to a release', async () => {
    const acme = await edge.tenantKey('acme');
    const globex = await edge.tenantKey('globex');
    const requested = await edge.http('POST', '/v1/leases', globex.secret, { projectId: 'p', gpuModels: ['a100'], gpus: 1 });
    expect(requested.status, requested.text).toBeLessThan(300);
    const globexLease = requested.body.leaseId as string;
    const missingLease = `${globexLease.slice(0, -4)}0000`;
    for (const method of ['GET', 'DELETE']) {
      const foreign = await edge.http(method, `/v1/leases/${globexLease}`, acme.secret);
      const missing = await edge.http(method, `/v1/leases/${missingLease}`, acme.secret);
      expect(foreign.status, method).toBe(404);
      expect([foreign.status, foreign.text.replaceAll(globexLease, '<id>')], method).toEqual([missing.status, missing.text.replaceAll(missingLease, '<id>')]);
    }
    // The release was refused: the owner's lease is untouched.
    expect((await edge.http('GET', `/v1/leases/${globexLease}`, globex.secret)).body.state).toBe('requested');

    const intake = edge.intake();
    const overGrpc = async (method: string, leaseId: string) => {
      const answer = await unary(intake, method, { leaseId }, metadata(acme.secret));
      if (answer.ok) throw new Error(`${leaseId} answered`);
      return { code: answer.error.code, details: answer.error.details.replaceAll(leaseId, '<id>'), trailer: answer.error.metadata.get('fastgpu-error-code') };
    };
    for (const method of ['GetLease', 'ReleaseLease']) {
      const foreign = await overGrpc(method, globexLease);
      expect(foreign.code, method).toBe(grpc.status.NOT_FOUND);
      expect(foreign, method).toEqual(await overGrpc(method, missingLease));
    }
  });
});
