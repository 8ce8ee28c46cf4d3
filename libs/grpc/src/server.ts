import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { Authenticator, type Principal } from '@fastgpu/auth';
import { idSchema, type Role } from '@fastgpu/contracts';
import { parseInput } from '@fastgpu/http';
import type { Runtime } from '@fastgpu/runtime';
import { extractTraceContext, inSpan, SpanKind } from '@fastgpu/telemetry';
import { GrpcError, toServiceError } from './errors';
import type { GrpcHandlers, JobRecord, LeaseRecord } from './ports';
import { firstSequenceOfJob, watchJob } from './watch';

export const protoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../proto');
export const protoFiles = ['fastgpu/intake/v1/intake.proto', 'fastgpu/billing/v1/billing.proto'];
/** How long close() waits for in-flight calls before cutting them. */
const SHUTDOWN_GRACE_MS = 2000;
export const IntakeServiceName = 'fastgpu.intake.v1.IntakeService';
export const BillingServiceName = 'fastgpu.billing.v1.BillingService';

/**
 * Options shared by the server and the tests' clients: proto field names as lowerCamelCase (the
 * HTTP JSON names), and 64-bit integers read as decimal strings, so a uint64 (a stream sequence)
 * arrives exact whatever its size (a JS number is exact only up to 2^53) and is checked exactly.
 */
export const protoLoaderOptions: protoLoader.Options = { keepCase: false, longs: String, enums: String, defaults: false, arrays: true, oneofs: true, includeDirs: [protoRoot] };

export function loadFastGpuProtos(): protoLoader.PackageDefinition {
  return protoLoader.loadSync(protoFiles.map((f) => path.join(protoRoot, f)), protoLoaderOptions);
}

/** Request messages as proto-loader decodes them, minus its synthetic `_field` oneof markers. */
function plain(request: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(request).filter(([key]) => !key.startsWith('_')));
}

function required(value: unknown, field: string): string {
  const parsed = idSchema.safeParse(value);
  if (!parsed.success) throw new GrpcError(grpc.status.INVALID_ARGUMENT, `${field}: ${value === undefined || value === '' ? 'is required' : parsed.error.issues[0]!.message}`, 'invalid_request', field);
  return parsed.data;
}

function jobMessage(job: JobRecord, created = false): Record<string, unknown> {
  const undefinedIfNull = <T>(v: T | null | undefined) => (v === null ? undefined : v);
  return {
    jobId: job.jobId,
    tenantId: job.tenantId,
    projectId: job.projectId,
    name: undefinedIfNull(job.name),
    state: job.state,
    reason: undefinedIfNull(job.reason),
    submittedAt: job.submittedAt,
    completedAt: undefinedIfNull(job.completedAt),
    gpuMsObserved: undefinedIfNull(job.gpuMsObserved),
    subtasks: job.subtasks.map((s) => Object.fromEntries(Object.entries(s).filter(([, v]) => v !== null))),
    specJson: JSON.stringify(job.spec ?? {}),
    schedulingJson: job.scheduling ? JSON.stringify(job.scheduling) : '',
    created,
  };
}

function leaseMessage(lease: LeaseRecord): Record<string, unknown> {
  return Object.fromEntries(Object.entries(lease).filter(([, v]) => v !== null));
}

export interface StartedGrpcServer {
  server: grpc.Server;
  port: number;
  close(): Promise<void>;
}

/**
 * Serves the intake and billing gRPC APIs with server reflection. Every call authenticates with
 * the API key in metadata (`authorization: Bearer …`, resolved like HTTP), validates with the
 * HTTP zod schemas, runs in a SERVER span continuing the caller's `traceparent`, and maps
 * errors to gRPC codes with the field in the `fastgpu-error-field` trailer.
 */
export async function startGrpcServer(runtime: Runtime, handlers: GrpcHandlers, port: number, host: string, authenticator: Authenticator): Promise<StartedGrpcServer> {
  const packageDefinition = loadFastGpuProtos();
  const loaded = grpc.loadPackageDefinition(packageDefinition) as unknown as {
    fastgpu: { intake: { v1: { IntakeService: grpc.ServiceClientConstructor } }; billing: { v1: { BillingService: grpc.ServiceClientConstructor } } };
  };
  const watchers = new Set<{ stop(): Promise<void> }>();

  /** The same authentication, revocation and rate limits as HTTP (one Authenticator per app). */
  function authenticate(metadata: grpc.Metadata, roles: Role[]): Promise<Principal> {
    const header = metadata.get('authorization')[0];
    return authenticator.authenticate(typeof header === 'string' ? header : undefined, roles, 'grpc');
  }

  const traceParent = (metadata: grpc.Metadata) => extractTraceContext({ get: (key) => (metadata.get(key)[0] as string | undefined)?.toString(), set: () => undefined });

  function unary<Req extends object>(name: string, roles: Role[], fn: (request: Req, principal: Principal) => Promise<unknown>): grpc.handleUnaryCall<Req, unknown> {
    return (call, callback) => {
      inSpan(`grpc.${name}`, async () => fn(call.request, await authenticate(call.metadata, roles)), { parent: traceParent(call.metadata), kind: SpanKind.SERVER, attributes: { 'rpc.system': 'grpc', 'rpc.method': name } }).then(
        (response) => callback(null, response),
        (error: unknown) => callback(toServiceError(error)),
      );
    };
  }

  function notServed(what: string): never {
    throw new GrpcError(grpc.status.UNIMPLEMENTED, `${what} is not served by this process`, 'unimplemented');
  }

  const jobs = () => handlers.jobs ?? notServed('the jobs API');
  const invoices = () => handlers.invoices ?? notServed('the invoices API');
  const leases = () => handlers.leases ?? notServed('the leases API');

  const intake: grpc.UntypedServiceImplementation = {
    SubmitJob: unary<Record<string, unknown>>('IntakeService.SubmitJob', ['tenant'], async (request, principal) => {
      const { idempotencyKey, ...body } = plain(request);
      const port = jobs();
      const { job, created } = await port.submit(principal, parseInput(port.submitSchema, body), idempotencyKey as string | undefined);
      return jobMessage(job, created);
    }),
    GetJob: unary<{ jobId?: string }>('IntakeService.GetJob', ['tenant', 'sre', 'finance'], async (request, principal) => jobMessage(await jobs().get(principal, required(request.jobId, 'jobId')))),
    CancelJob: unary<{ jobId?: string; reason?: string }>('IntakeService.CancelJob', ['tenant'], async (request, principal) => {
      const reason = request.reason ?? 'cancelled by tenant';
      if (reason.length > 500) throw new GrpcError(grpc.status.INVALID_ARGUMENT, 'reason: at most 500 characters', 'unprocessable', 'reason');
      return jobMessage(await jobs().cancel(principal, required(request.jobId, 'jobId'), reason));
    }),
    WatchJob: (call: grpc.ServerWritableStream<{ jobId?: string; fromSequence?: string }, unknown>) => {
      void inSpan(
        'grpc.IntakeService.WatchJob',
        async () => {
          const principal = await authenticate(call.metadata, ['tenant', 'sre', 'finance']);
          const jobId = required(call.request.jobId, 'jobId');
          await jobs().get(principal, jobId); // another tenant's job: NOT_FOUND, like HTTP
          // Bounded per tenant: each open watch holds a consumer on the bus until it ends.
          const release = authenticator.openStream(principal);
          try {
            const last = (await runtime.bus.jsm.streams.info(runtime.bus.topology.streams.events)).state.last_seq;
            // A uint64 arrives as its decimal string (longs: String): compared exactly, beyond 2^53 too.
            const requested = call.request.fromSequence === undefined ? undefined : BigInt(call.request.fromSequence);
            if (requested !== undefined && (requested < 1n || requested > BigInt(last + 1))) {
              throw new GrpcError(grpc.status.INVALID_ARGUMENT, `fromSequence: ${requested} is not in the log (1..${last + 1})`, 'unprocessable', 'fromSequence');
            }
            const from = requested !== undefined ? Number(requested) : ((await firstSequenceOfJob(runtime.bus, jobId)) ?? last + 1);
            const watcher = watchJob(runtime.bus, jobId, from, async ({ sequence, subject, event }) => {
              if (call.cancelled) return false;
              call.write({ sequence, type: event.type, subject, time: event.time, eventId: event.id, dataJson: JSON.stringify(event.data) });
              return event.type !== 'JobCompleted';
            });
            watchers.add(watcher);
            call.on('cancelled', () => {
              release();
              void watcher.stop();
            });
            await watcher.done;
            watchers.delete(watcher);
            call.end();
          } finally {
            release();
          }
        },
        { parent: traceParent(call.metadata), kind: SpanKind.SERVER, attributes: { 'rpc.system': 'grpc', 'rpc.method': 'IntakeService.WatchJob' } },
      ).catch((error: unknown) => call.emit('error', toServiceError(error)));
    },
    AllocateLease: unary<Record<string, unknown>>('IntakeService.AllocateLease', ['tenant'], async (request, principal) => {
      const port = leases();
      const { idempotencyKey, waitMs, ...body } = plain(request);
      const query = parseInput(port.querySchema, waitMs === undefined ? {} : { waitMs }, 'query') as { waitMs: number };
      return leaseMessage(await port.request(principal, parseInput(port.requestSchema, body), { idempotencyKey: idempotencyKey as string | undefined, waitMs: query.waitMs }));
    }),
    GetLease: unary<{ leaseId?: string }>('IntakeService.GetLease', ['tenant', 'sre', 'finance'], async (request, principal) => leaseMessage(await leases().get(principal, required(request.leaseId, 'leaseId')))),
    ReleaseLease: unary<{ leaseId?: string }>('IntakeService.ReleaseLease', ['tenant'], async (request, principal) => leaseMessage(await leases().release(principal, required(request.leaseId, 'leaseId')))),
  };

  const billing: grpc.UntypedServiceImplementation = {
    ListInvoices: unary<Record<string, unknown>>('BillingService.ListInvoices', ['tenant', 'finance'], async (request, principal) => {
      const port = invoices();
      return port.list(principal, parseInput(port.listSchema, plain(request), 'query'));
    }),
    ExportInvoice: unary<{ invoiceId?: string; format?: string }>('BillingService.ExportInvoice', ['tenant', 'finance'], async (request, principal) => {
      const invoiceId = required(request.invoiceId, 'invoiceId');
      const format = request.format ?? 'json';
      if (format !== 'json' && format !== 'csv' && format !== 'pdf') throw new GrpcError(grpc.status.INVALID_ARGUMENT, `format: must be json, csv or pdf, got "${format}"`, 'unprocessable', 'format');
      const exported = await invoices().export(principal, invoiceId, format);
      return { invoiceId, contentType: exported.contentType, content: Buffer.isBuffer(exported.content) ? exported.content : Buffer.from(exported.content) };
    }),
  };

  const server = new grpc.Server();
  server.addService(loaded.fastgpu.intake.v1.IntakeService.service, intake);
  server.addService(loaded.fastgpu.billing.v1.BillingService.service, billing);
  new ReflectionService(packageDefinition).addToServer(server);
  const boundPort = await new Promise<number>((resolve, reject) => server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))));
  return {
    server,
    port: boundPort,
    close: async () => {
      for (const watcher of watchers) await watcher.stop();
      // Open streams would hold a graceful shutdown forever: give them a moment, then force.
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, SHUTDOWN_GRACE_MS);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
    },
  };
}

