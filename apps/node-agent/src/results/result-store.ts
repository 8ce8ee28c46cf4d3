import type { FileHandle } from 'node:fs/promises';
import type { NatsConnection } from '@nats-io/transport-node';
import { Objm, StorageType, type ObjectInfo, type ObjectStore } from '@nats-io/obj';
import { resultObjectName, ResultMetadata, type Topology } from '@fastgpu/contracts';

/**
 * Sub-task results in the JetStream Object Store: one bucket per prefix
 * (`topology.buckets.results`), one object per attempt (`resultObjectName`), stored in chunks
 * with the store's own SHA-256 digest, plus the agent's metadata (ResultMetadata: the hex
 * SHA-256 it computed while reading the file, the exit code, where it ran).
 */
export interface ResultBucketLimits {
  /** How long results are kept; 0 keeps them until deleted. */
  maxAgeMs: number;
  /** Bytes the bucket may hold (new results are refused when full); -1: no cap. */
  bucketBytesMax: number;
}
export const RESULT_BUCKET_LIMITS_DEFAULT: ResultBucketLimits = { maxAgeMs: 30 * 24 * 3600 * 1000, bucketBytesMax: -1 };

const CHUNK_BYTES = 128 * 1024;
const PUT_TIMEOUT_MS = 30_000;

/** Opens the results bucket, creating it with `limits` when `create` is set (an agent with stream rights; production: the operator). */
export async function openResultBucket(nc: NatsConnection, topology: Topology, options: { create: boolean; limits: ResultBucketLimits }): Promise<ObjectStore> {
  const objm = new Objm(nc);
  if (!options.create) return objm.open(topology.buckets.results);
  return objm.create(topology.buckets.results, {
    storage: StorageType.File,
    replicas: 1,
    ttl: options.limits.maxAgeMs * 1_000_000,
    max_bytes: options.limits.bucketBytesMax,
    description: 'FastGPU sub-task results (docs/node-agent.md)',
  });
}

/** "SHA-256=<base64url>" (the Object Store's digest) as lowercase hex. */
export function digestHex(digest: string): string | undefined {
  const match = /^SHA-256=(.+)$/i.exec(digest);
  if (!match) return undefined;
  return Buffer.from(match[1]!.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('hex');
}

/**
 * Stores `bytes` bytes of an open result file under its attempt's name. The same bytes already
 * stored (a retry after an agent restart) are not stored twice. The stored object is checked
 * against the size and SHA-256 the agent computed.
 */
export async function storeResult(store: ObjectStore, metadata: ResultMetadata, file: { handle: FileHandle; bytes: number; sha256: string }): Promise<ObjectInfo> {
  const parsed = ResultMetadata.parse(metadata);
  const name = resultObjectName(parsed.tenantId, parsed.jobId, Number(parsed.subtaskIndex), Number(parsed.attempt));
  const existing = await store.info(name);
  if (existing && !existing.deleted && existing.size === file.bytes && digestHex(existing.digest) === file.sha256) return existing;
  let position = 0;
  const data = new ReadableStream<Uint8Array>({
    pull: async (controller) => {
      const want = Math.min(CHUNK_BYTES, file.bytes - position);
      if (want <= 0) {
        controller.close();
        return;
      }
      const buffer = Buffer.alloc(want);
      const { bytesRead } = await file.handle.read(buffer, 0, want, position);
      if (bytesRead === 0) {
        controller.error(new Error(`result shrank to ${position} bytes while it was stored`));
        return;
      }
      position += bytesRead;
      controller.enqueue(new Uint8Array(buffer.buffer, buffer.byteOffset, bytesRead));
    },
  });
  const info = await store.put({ name, metadata: parsed, options: { max_chunk_size: CHUNK_BYTES } }, data, { timeout: PUT_TIMEOUT_MS });
  if (info.size !== file.bytes || digestHex(info.digest) !== file.sha256) {
    throw new Error(`stored result ${name} has ${info.size} bytes and digest ${info.digest}, expected ${file.bytes} bytes and SHA-256 ${file.sha256}`);
  }
  return info;
}
