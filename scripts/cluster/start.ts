/**
 * Starts a 3-server JetStream cluster on loopback and keeps it running until Ctrl-C:
 *
 *   npx tsx scripts/cluster/start.ts [--size 3] [--dir <folder>]
 *
 * prints the NATS_URL to give every service (with FASTGPU_STREAM_REPLICAS=3). With --dir the
 * stores survive a restart of this script; without it they go with it (docs/cluster.md).
 */
import { parseArgs } from 'node:util';
import { startCluster, supportsSyncAlways } from './cluster';

const { values } = parseArgs({ options: { size: { type: 'string', default: '3' }, dir: { type: 'string' } } });
const cluster = await startCluster({ size: Number(values.size), ...(values.dir ? { dir: values.dir } : {}), stdio: 'ignore' });
process.stdout.write(
  `JetStream cluster of ${cluster.servers.length} (${cluster.servers.map((s) => `${s.name} :${s.clientPort}`).join(', ')}), stores in ${cluster.dir}\n` +
    `${supportsSyncAlways() ? 'sync_interval: always' : 'this nats-server has no sync_interval setting (2.10+): writes are synced on its own timer'}\n` +
    `NATS_URL=${cluster.natsUrl} FASTGPU_STREAM_REPLICAS=3\n`,
);
const stop = async () => {
  await cluster.stop({ keep: values.dir !== undefined });
  process.exit(0);
};
process.once('SIGINT', () => void stop());
process.once('SIGTERM', () => void stop());
