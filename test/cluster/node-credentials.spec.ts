/**
 * Proves per-node NATS credentials (issue 16; scripts/node-credentials.ts) on a real nats-server
 * with JetStream whose `authorization` block is the shipped deploy/nats/authorization.conf (the
 * services' user, no shared node user) with two nodes' nkey users added as `npm run
 * node-credentials -- <id> --add-to` adds them (a second add for the same node is refused): a node, signed in with its own seed, publishes its
 * reports and heartbeats and reads its own command consumer; it is refused another node's report
 * and heartbeat subjects, another node's command consumer, and the platform's subjects; a seed
 * that is not in the block is refused at connect.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, nkeyAuthenticator, type NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { createUser } from '@nats-io/nkeys';
import { connectBus, type Bus } from '@fastgpu/messaging';
import { eventually } from '@fastgpu/testing';
import { freePort } from '../../scripts/cluster/cluster';
import { addNodeUser, generateNodeCredential, type NodeCredential } from '../../scripts/node-credentials';

const PREFIX = 'creds';
const root = path.resolve(import.meta.dirname, '../..');
const PLATFORM_PASSWORD = 'platform-secret-for-this-test-only';
let dir: string;
let port: number;
let server: ChildProcess;
let platform: Bus;
let nodeA: NodeCredential;
let nodeB: NodeCredential;
const connections: NatsConnection[] = [];

async function asNode(credential: { seed: string }): Promise<NatsConnection> {
  const nc = await connect({ servers: `nats://127.0.0.1:${port}`, authenticator: nkeyAuthenticator(new TextEncoder().encode(credential.seed)), reconnect: false, timeout: 3000 });
  connections.push(nc);
  return nc;
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'fastgpu-creds-'));
  port = await freePort();
  nodeA = generateNodeCredential('gpu-a', PREFIX);
  nodeB = generateNodeCredential('gpu-b', PREFIX);
  let authorization = readFileSync(path.join(root, 'deploy/nats/authorization.conf'), 'utf8');
  expect(authorization).not.toMatch(/user: node-agent|NODE_AGENT_NATS_PASSWORD/);
  for (const node of [nodeA, nodeB]) authorization = addNodeUser(authorization, node);
  expect(() => addNodeUser(authorization, generateNodeCredential('gpu-a', PREFIX))).toThrow(/already has an entry/);
  writeFileSync(path.join(dir, 'authorization.conf'), authorization);
  writeFileSync(path.join(dir, 'server.conf'), [`listen: 127.0.0.1:${port}`, `jetstream { store_dir: ${JSON.stringify(path.join(dir, 'store'))} }`, 'include ./authorization.conf', ''].join('\n'));
  server = spawn('nats-server', ['-c', path.join(dir, 'server.conf')], { stdio: 'ignore', env: { ...process.env, FASTGPU_NATS_PASSWORD: PLATFORM_PASSWORD } });
  platform = await eventually(() => connectBus({ natsUrl: `nats://fastgpu:${PLATFORM_PASSWORD}@127.0.0.1:${port}`, subjectPrefix: PREFIX, name: 'platform' }), { timeoutMs: 15_000 });
});

afterAll(async () => {
  for (const nc of connections) await nc.close().catch(() => undefined);
  await platform?.close();
  server?.kill('SIGTERM');
  await new Promise((resolve) => (server && server.exitCode === null ? server.once('exit', resolve) : resolve(undefined)));
  rmSync(dir, { recursive: true, force: true });
});

describe('a node signed in with its own nkey', () => {
  it('publishes its own reports and heartbeats', async () => {
    const js = jetstream(await asNode(nodeA), { timeout: 3000 });
    const report = await js.publish(platform.topology.subjects.agentNode('gpu-a'), new TextEncoder().encode('{}'));
    expect(report.stream).toBe(platform.topology.streams.events);
    const beat = await js.publish(platform.topology.subjects.heartbeat('gpu-a'), new TextEncoder().encode('{}'));
    expect(beat.stream).toBe(platform.topology.streams.heartbeats);
  });

  it('is refused another node\'s reports and heartbeats, and the platform\'s subjects; nothing is stored', async () => {
    const before = (await platform.jsm.streams.info(platform.topology.streams.events)).state.messages;
    const beatsBefore = (await platform.jsm.streams.info(platform.topology.streams.heartbeats)).state.messages;
    const js = jetstream(await asNode(nodeA), { timeout: 2000 });
    for (const subject of [platform.topology.subjects.agentNode('gpu-b'), platform.topology.subjects.heartbeat('gpu-b'), platform.topology.subjects.schedulerNode('gpu-a'), platform.topology.subjects.job('j-1')]) {
      const refused = await js.publish(subject, new TextEncoder().encode('{}')).then(
        () => 'stored',
        (error: Error) => error.message,
      );
      expect({ subject, refused }).toEqual({ subject, refused: expect.stringMatching(/permission/i) });
    }
    expect((await platform.jsm.streams.info(platform.topology.streams.events)).state.messages).toBe(before);
    expect((await platform.jsm.streams.info(platform.topology.streams.heartbeats)).state.messages).toBe(beatsBefore);
  });

  it('reads and acknowledges its own commands, and cannot open another node\'s consumer', async () => {
    const streamName = platform.topology.streams.commands;
    const nc = await asNode(nodeA);
    const jsm = await jetstreamManager(nc, { timeout: 3000 });
    await jsm.consumers.add(streamName, { durable_name: 'node-gpu-a', filter_subject: platform.topology.subjects.command('gpu-a'), ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All });
    await platform.js.publish(platform.topology.subjects.command('gpu-a'), new TextEncoder().encode('run'));
    const consumer = await jetstream(nc, { timeout: 3000 }).consumers.get(streamName, 'node-gpu-a');
    const m = await consumer.next({ expires: 3000 });
    expect(new TextDecoder().decode(m?.data)).toBe('run');
    expect(await m!.ackAck()).toBe(true);
    const other = await jsm.consumers
      .add(streamName, { durable_name: 'node-gpu-b', filter_subject: platform.topology.subjects.command('gpu-b'), ack_policy: AckPolicy.Explicit })
      .then(
        () => 'created',
        (error: Error) => error.message,
      );
    expect(other).toMatch(/permission/i);
  });

  it('a seed not in the authorization block is refused at connect', async () => {
    const stranger = createUser();
    const refused = await asNode({ seed: new TextDecoder().decode(stranger.getSeed()) }).then(
      () => 'connected',
      (error: Error) => error.message,
    );
    expect(refused).toMatch(/authorization|auth/i);
  });
});
