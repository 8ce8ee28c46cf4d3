/**
 * One NATS credential per GPU node (issue 16): an nkey user whose permissions name only that
 * node's own subjects (docs/node-agent.md, "Credentials"; docs/cluster.md).
 *
 *   npm run node-credentials -- <nodeId> [--prefix fastgpu] [--out <dir>] [--add-to <authorization.conf>]
 *
 * writes the node's seed to `<dir>/<nodeId>.nk` (mode 0600, default the current folder; it never
 * leaves the node) and prints the `users` entry for the `authorization` block of every
 * nats-server; `--add-to deploy/nats/authorization.conf` also adds it to that file, above its
 * node-users marker (nats-server cannot `include` into a list, so the entries live in the file).
 * Rotation: generate again, add the new entry, install the new seed on the node, remove the old
 * entry, reload the servers (`nats-server --signal reload`).
 */
import { readFileSync, writeFileSync } from 'node:fs';
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

/**
 * The line of an authorization file (deploy/nats/authorization.conf) inside its `users` list
 * above which node entries are added, one per node, each opened by its `# node <id> ` comment.
 */
export const NODE_USERS_MARKER = '# node users end here';

/**
 * `config` (an authorization file's text) with `credential`'s users entry added above the
 * node-users marker. Refused without the marker, or when the node already has an entry there
 * (rotation adds the new one by hand next to the old, docs/operations.md).
 */
export function addNodeUser(config: string, credential: Pick<NodeCredential, 'nodeId' | 'userEntry'>): string {
  const lines = config.split('\n');
  const at = lines.findIndex((line) => line.trim() === NODE_USERS_MARKER);
  if (at < 0) throw new Error(`no "${NODE_USERS_MARKER}" line in the file: add it inside authorization { users = [ ... ] }`);
  if (lines.some((line) => line.trim().startsWith(`# node ${credential.nodeId} `))) throw new Error(`node ${credential.nodeId} already has an entry in the file`);
  const indent = /^\s*/.exec(lines[at]!)![0];
  const entry = credential.userEntry.split('\n').map((line) => `${indent}${line.replace(/^ {2}/, '')}`);
  return [...lines.slice(0, at), ...entry, ...lines.slice(at)].join('\n');
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
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { prefix: { type: 'string', default: process.env.FASTGPU_PREFIX ?? 'fastgpu' }, out: { type: 'string', default: '.' }, 'add-to': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help || positionals.length !== 1) {
    process.stderr.write('usage: npm run node-credentials -- <nodeId> [--prefix fastgpu] [--out <dir>] [--add-to <authorization.conf>]\n');
    process.exit(values.help ? 0 : 2);
  }
  const credential = generateNodeCredential(positionals[0]!, values.prefix);
  // The file is checked before the seed is written: a refused add leaves nothing behind.
  const added = values['add-to'] === undefined ? undefined : addNodeUser(readFileSync(values['add-to'], 'utf8'), credential);
  const seedFile = path.join(values.out, `${credential.nodeId}.nk`);
  writeFileSync(seedFile, `${credential.seed}\n`, { mode: 0o600, flag: 'wx' });
  process.stderr.write(`seed written to ${seedFile} (install it on node ${credential.nodeId} only); public key ${credential.publicKey}\n`);
  if (added !== undefined) {
    writeFileSync(values['add-to']!, added);
    process.stderr.write(`entry added to ${values['add-to']}; reload every nats-server that uses it (nats-server --signal reload)\n`);
  }
  process.stdout.write(`# ${added === undefined ? 'add to authorization { users: [ ... ] } of every nats-server' : 'added'}, then reload them\n${credential.userEntry}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: Error) => {
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  });
}
