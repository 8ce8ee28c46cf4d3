import { readFileSync } from 'node:fs';
import { createDatabase } from '@fastgpu/db';
import { connectBus } from '@fastgpu/messaging';
import { Rebuild } from '@fastgpu/replay';
import { usageReplayable } from '../apps/metering/src/usage/usage.replayable';

/**
 * The replay step of bench/metering.bench.ts in its own process, as `npm run replay -- usage`
 * runs: so its peak memory (VmHWM) is the replay's alone. Prints one JSON line.
 */
const [natsUrl, prefix, databaseUrl, targetText] = process.argv.slice(2) as [string, string, string, string];
const target = Number(targetText);
const MB = 1024 * 1024;
const peakRssMb = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) / 1024;
const bus = await connectBus({ natsUrl, subjectPrefix: prefix, name: 'bench-replay', ensureStreams: false });
const database = createDatabase({ databaseUrl, poolSize: 2 });
const rssAt: string[] = [];
let mark = 0.25;
const rebuild = new Rebuild(bus, database.db, usageReplayable, {
  progressIntervalMs: 200,
  onProgress: (p) => {
    while (mark <= 1 && p.sequence >= mark * target) {
      rssAt.push(`${Math.round(mark * 100)}%: ${Math.round(process.memoryUsage().rss / MB)} MB`);
      mark += 0.25;
    }
  },
});
await rebuild.prepare({ restart: true });
// The process before the first event: Node, tsx's transpiler, the libraries, the connections.
rssAt.push(`start: ${Math.round(process.memoryUsage().rss / MB)} MB`);
const started = performance.now();
const sequence = await rebuild.catchUp(target);
const seconds = (performance.now() - started) / 1000;
await bus.close();
await database.close();
console.log(JSON.stringify({ sequence, seconds, peakRssMb: Math.round(peakRssMb()), rssAt }));
