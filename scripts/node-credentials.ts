/**
 * One NATS credential per GPU node (issue 16): an nkey user whose permissions name only that
 * node's own subjects (docs/node-agent.md, "Credentials"; docs/cluster.md).
 *
 *   npm run node-credentials -- <nodeId> [--prefix fastgpu] [--out <dir>]
 *
 * writes the node's seed to `<dir>/<nodeId>.nk` (mode 0600, default the current folder; it never
 * leaves the node) and prints the `users` entry to add to the `authorization` block of every
 * nats-server. Rotation: generate again, add the new entry, install the new seed on the node,
 * remove the old entry, reload the servers (`nats-server --signal reload`).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { createUser } from '@nats-io/nkeys';
import { topology } from '@fastgpu/contracts';

/** A node id as the agent takes it: letters, digits, `-`, `_` (one subject token). */
const NODE_ID = /^[A-Za-z0-9_-]{1,64}$/;

export interface NodePermissions {
  publish: string[];
  subscribe: string[];
}

/**
 * What a node's agent must be allowed, and nothing more: its reports and heartbeats on its own
 * subjects, its own durable command consumer, its logs and results, replies on _INBOX.
 * Logs and result objects are named by tenant and job, not node: a known gap (docs/node-agent.md).
 */
export function nodePermissions(prefix: string, nodeId: string): NodePermissions {
  if (!NODE_ID.test(nodeId)) throw new Error(`node id "${nodeId}": letters, digits, - and _ only (1-64)`);
  const topo = topology(prefix);
  const commands = topo.streams.commands;
  const durable = `node-${nodeId}`;
  const logs = topo.streams.logs;
  const results = topo.buckets.results;
  return {
    publish: [
      topo.subjects.agentNode(nodeId),
      topo.subjects.heartbeat(nodeId),
      '$JS.API.INFO',
      `$JS.API.CONSUMER.INFO.${commands}.${durable}`,
      `$JS.API.CONSUMER.CREATE.${commands}.${durable}`,
      `$JS.API.CONSUMER.CREATE.${commands}.${durable}.${topo.subjects.command(nodeId)}`,
      `$JS.API.CONSUMER.DURABLE.CREATE.${commands}.${durable}`,
      `$JS.API.CONSUMER.MSG.NEXT.${commands}.${durable}`,
      `$JS.ACK.${commands}.${durable}.>`,
      topo.subjects.logsAll,
      `$JS.API.STREAM.INFO.${logs}`,
      `$JS.API.STREAM.MSG.GET.${logs}`,
      `$O.${results}.C.>`,
      `$O.${results}.M.>`,
      `$JS.API.STREAM.INFO.OBJ_${results}`,
      `$JS.API.STREAM.MSG.GET.OBJ_${results}`,
      `$JS.API.DIRECT.GET.OBJ_${results}.>`,
      `$JS.API.STREAM.PURGE.OBJ_${results}`,
    ],
    subscribe: ['_INBOX.>'],
  };
}

/** The `users` entry of a nats-server `authorization` block for one node's public nkey. */
export function nodeUserEntry(publicKey: string, permissions: NodePermissions, comment?: string): string {
  const list = (subjects: string[]) => subjects.map((s) => `        ${JSON.stringify(s)}`).join(',\n');
  return [
    ...(comment ? [`  # ${comment}`] : []),
    '  {',
    `    nkey: ${JSON.stringify(publicKey)}`,
    '    permissions: {',
    `      publish: { allow: [\n${list(permissions.publish)}\n      ] }`,
    `      subscribe: { allow: [\n${list(permissions.subscribe)}\n      ] }`,
    '    }',
    '  }',
  ].join('\n');
}

export interface NodeCredential {
  nodeId: string;
  publicKey: string;
  /** The nkey seed (`SU…`): the node's secret. */
  seed: string;
  permissions: NodePermissions;
  /** The `users` entry for the servers' `authorization` block. */
  userEntry: string;
}

export function generateNodeCredential(nodeId: string, prefix = 'fastgpu'): NodeCredential {
  const permissions = nodePermissions(prefix, nodeId);
  const user = createUser();
  const publicKey = user.getPublicKey();
  const seed = new TextDecoder().decode(user.getSeed());
  return { nodeId, publicKey, seed, permissions, userEntry: nodeUserEntry(publicKey, permissions, `node ${nodeId} (prefix ${prefix})`) };
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { prefix: { type: 'string', default: process.env.FASTGPU_PREFIX ?? 'fastgpu' }, out: { type: 'string', default: '.' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help || positionals.length !== 1) {
    process.stderr.write('usage: npm run node-credentials -- <nodeId> [--prefix fastgpu] [--out <dir>]\n');
    process.exit(values.help ? 0 : 2);
  }
  const credential = generateNodeCredential(positionals[0]!, values.prefix);
  const seedFile = path.join(values.out, `${credential.nodeId}.nk`);
  writeFileSync(seedFile, `${credential.seed}\n`, { mode: 0o600, flag: 'wx' });
  process.stderr.write(`seed written to ${seedFile} (install it on node ${credential.nodeId} only); public key ${credential.publicKey}\n`);
  process.stdout.write(`# add to authorization { users: [ ... ] } of every nats-server, then reload them\n${credential.userEntry}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: Error) => {
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  });
}
