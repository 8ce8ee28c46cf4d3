/* eslint-disable @typescript-eslint/no-explicit-any -- a generic client knows message shapes only at run time, from reflection */
import { createRequire } from 'node:module';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/**
 * A generic gRPC client that knows nothing but the server's address, as a third-party integrator
 * would build one: it discovers the services by server reflection and builds its stubs from the
 * descriptors the server returns. 64-bit integers are read as decimal strings (`longs: String`),
 * the lossless choice in JavaScript.
 */
const require = createRequire(import.meta.url);
const reflectionProto = path.join(path.dirname(require.resolve('@grpc/reflection/package.json')), 'build/proto/grpc/reflection/v1/reflection.proto');

export type AnyClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

function reflectionCall(address: string, requests: object[]): Promise<Array<Record<string, any>>> {
  const def = protoLoader.loadSync(reflectionProto, { keepCase: false, longs: String, defaults: true, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def) as any;
  const client = new pkg.grpc.reflection.v1.ServerReflection(address, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => {
    const responses: Array<Record<string, any>> = [];
    const call = client.ServerReflectionInfo();
    call.on('data', (r: Record<string, any>) => {
      responses.push(r);
      if (responses.length === requests.length) call.end();
    });
    call.on('error', reject);
    call.on('end', () => {
      client.close();
      resolve(responses);
    });
    for (const r of requests) call.write(r);
  });
}

/** FileDescriptorSet = repeated FileDescriptorProto file = 1: each one length-delimited under tag 0x0a. */
function descriptorSet(files: Buffer[]): Buffer {
  const parts: Buffer[] = [];
  for (const file of files) {
    const len: number[] = [];
    let n = file.length;
    while (n > 0x7f) {
      len.push((n & 0x7f) | 0x80);
      n >>>= 7;
    }
    len.push(n);
    parts.push(Buffer.from([0x0a, ...len]), file);
  }
  return Buffer.concat(parts);
}

export interface ReflectedApi {
  services: string[];
  /** The package definition built from the server's descriptors (message types by full name). */
  definition: protoLoader.PackageDefinition;
  client(name: string): AnyClient;
}

export async function reflect(address: string): Promise<ReflectedApi> {
  const [list] = await reflectionCall(address, [{ listServices: '' }]);
  const services = (list!.listServicesResponse.service as Array<{ name: string }>).map((s) => s.name);
  const wanted = services.filter((s) => s.startsWith('fastgpu.'));
  const responses = await reflectionCall(address, wanted.map((symbol) => ({ fileContainingSymbol: symbol })));
  const files = new Map<string, Buffer>();
  for (const r of responses) for (const f of r.fileDescriptorResponse.fileDescriptorProto as Buffer[]) files.set(f.toString('base64'), f);
  const definition = protoLoader.loadFileDescriptorSetFromBuffer(descriptorSet([...files.values()]), { keepCase: false, longs: String, defaults: false, arrays: true, oneofs: true });
  const loaded = grpc.loadPackageDefinition(definition) as any;
  return {
    services,
    definition,
    client: (name) => {
      const Ctor = name.split('.').reduce((o, k) => o[k], loaded) as grpc.ServiceClientConstructor;
      return new Ctor(address, grpc.credentials.createInsecure()) as unknown as AnyClient;
    },
  };
}

export function meta(key?: string): grpc.Metadata {
  const m = new grpc.Metadata();
  if (key) m.set('authorization', `Bearer ${key}`);
  return m;
}

export function unary<T = Record<string, any>>(client: AnyClient, method: string, request: object, metadata: grpc.Metadata): Promise<T> {
  return new Promise((resolve, reject) => client[method]!(request, metadata, (error: grpc.ServiceError | null, response: T) => (error ? reject(error) : resolve(response))));
}

export async function rejection(promise: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await promise;
  } catch (error) {
    return error as grpc.ServiceError;
  }
  throw new Error('the call succeeded');
}
