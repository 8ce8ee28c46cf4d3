/**
 * Proves a run's stdout and stderr reach the LOGS stream on real NATS JetStream while it runs,
 * on `<prefix>.logs.<tenantId>.<jobId>.<subtaskIndex>.<attempt>`: whole lines, stdout and
 * stderr apart, each with its byte offset, every message within the stream's configured
 * max_msg_size (the agent configures the stream's limits: message size, age and bytes), a line
 * longer than a message cut into pieces, an `end` marker when the run is over, the attempt's
 * output cap ending in a `truncated` marker, and across an agent restart the output shipped
 * exactly once (the restarted agent resumes from what the stream holds).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { JsMsg } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LogHeader } from '@fastgpu/contracts';
import { StreamFollower } from '@fastgpu/messaging';
import { createTestEnvironment, eventually, type TestEnvironment } from '@fastgpu/testing';
import { agentConfig, EventTail, FakeHost, runCommand, send, startAgent, type RunningAgent } from './agent-harness';

const NODE = 'gpu-host-logs';
const MESSAGE_BYTES_MAX = 4096;
const ATTEMPT_BYTES_MAX = 64 * 1024;
let env: TestEnvironment;
let host: FakeHost;
let tail: EventTail;
let outbox: string;
let agent: RunningAgent;

beforeAll(async () => {
  env = await createTestEnvironment();
  host = await FakeHost.create();
  outbox = await host.directory('outbox');
  tail = new EventTail(env.bus);
  await tail.start();
  agent = await startAgent(env, agentConfig(env, host, { nodeId: NODE, logsMessageBytesMax: MESSAGE_BYTES_MAX, logsMaxAgeMs: 2 * 3600 * 1000, logsStreamBytesMax: 8 * 1024 * 1024, logAttemptBytesMax: ATTEMPT_BYTES_MAX }));
});

afterAll(async () => {
  await agent?.stop();
  await tail?.stop();
  await host?.cleanup();
  await env?.cleanup();
});

interface LogMessage {
  kind: string;
  offset: number;
  text: string;
  bytes: number;
}

/** Everything the stream holds for one attempt, in order, read as a reader of the logs would. */
async function readLogs(subject: string, until: (messages: LogMessage[]) => boolean): Promise<LogMessage[]> {
  const messages: LogMessage[] = [];
  const follower = new StreamFollower(env.bus, {
    stream: env.bus.topology.streams.logs,
    fromSequence: 1,
    filterSubject: subject,
    onBatch: async (batch: JsMsg[]) => {
      for (const m of batch) messages.push({ kind: m.headers!.get(LogHeader.kind), offset: Number(m.headers!.get(LogHeader.offset)), text: new TextDecoder().decode(m.data), bytes: m.data.length + (m.headers?.toString().length ?? 0) });
    },
  });
  await follower.start();
  try {
    await eventually(() => until(messages), { message: `the logs of ${subject} did not arrive: ${messages.map((m) => m.kind).join(',')}` });
  } finally {
    await follower.stop();
  }
  return [...messages];
}

const text = (messages: LogMessage[], kind: string) => messages.filter((m) => m.kind === kind).map((m) => m.text).join('');

describe('the LOGS stream', () => {
  it('has the limits the agent was configured with', async () => {
    const info = await env.bus.jsm.streams.info(env.bus.topology.streams.logs);
    expect(info.config).toMatchObject({ subjects: [`${env.config.subjectPrefix}.logs.>`], max_msg_size: MESSAGE_BYTES_MAX, max_age: 2 * 3600 * 1e9, max_bytes: 8 * 1024 * 1024 });
  });
});

describe('a run\'s output', () => {
  it('streams while the run runs, line by line, stdout and stderr apart, and ends with an end marker', async () => {
    const command = runCommand({
      subtaskId: 'st-logs',
      jobId: 'job-logs',
      workload: { subtaskIndex: 3, subtaskCount: 4, env: { OUTBOX: outbox } },
      script: `const fs = require('fs');
               for (let i = 0; i < 5; i++) console.log('early line ' + i);
               console.error('a warning');
               process.stdout.write('x'.repeat(10000) + '\\n');
               const timer = setInterval(() => { if (fs.existsSync(process.env.OUTBOX + '/release-logs')) { clearInterval(timer); console.log('late line'); fs.writeFileSync(process.env.FASTGPU_RESULT_PATH, 'ok'); } }, 50);`,
    });
    await send(env, NODE, command);
    const subject = env.bus.topology.subjects.logs('acme', 'job-logs', 3, 1);
    const whileRunning = await readLogs(subject, (messages) => text(messages, 'stdout').includes('x'.repeat(10000)) && text(messages, 'stderr') === 'a warning\n');
    expect(agent.agent.runningKeys).toContain('st-logs#1');
    expect(whileRunning.some((m) => m.kind === 'end')).toBe(false);

    await writeFile(join(outbox, 'release-logs'), '');
    await tail.waitFor('SubtaskCompleted', (e) => e.data.subtaskId === 'st-logs');
    const all = await readLogs(subject, (messages) => messages.some((m) => m.kind === 'end'));
    const expected = `${[0, 1, 2, 3, 4].map((i) => `early line ${i}\n`).join('')}${'x'.repeat(10000)}\nlate line\n`;
    expect(text(all, 'stdout')).toBe(expected);
    expect(text(all, 'stderr')).toBe('a warning\n');
    expect(all.at(-1)!.kind).toBe('end');
    // Offsets are byte positions within each stream, without gaps or overlaps.
    let next = 0;
    for (const m of all.filter((m) => m.kind === 'stdout')) {
      expect(m.offset).toBe(next);
      next += Buffer.byteLength(m.text);
    }
    // The long line was cut into pieces, every message within the stream's limit.
    expect(all.filter((m) => m.kind === 'stdout').length).toBeGreaterThan(3);
    for (const m of all) expect(m.bytes).toBeLessThanOrEqual(MESSAGE_BYTES_MAX);
  });

  it('stops at the attempt\'s output cap with a truncated marker', async () => {
    const command = runCommand({ subtaskId: 'st-chatty', jobId: 'job-chatty', script: "for (let i = 0; i < 4000; i++) console.log('chatty line ' + String(i).padStart(6, '0') + ' ' + 'y'.repeat(40)); require('fs').writeFileSync(process.env.FASTGPU_RESULT_PATH, 'ok')" });
    await send(env, NODE, command);
    await tail.waitFor('SubtaskCompleted', (e) => e.data.subtaskId === 'st-chatty');
    const all = await readLogs(env.bus.topology.subjects.logs('acme', 'job-chatty', 0, 1), (messages) => messages.some((m) => m.kind === 'end'));
    const shipped = text(all, 'stdout');
    expect(Buffer.byteLength(shipped)).toBeLessThanOrEqual(ATTEMPT_BYTES_MAX);
    expect(Buffer.byteLength(shipped)).toBeGreaterThan(ATTEMPT_BYTES_MAX - MESSAGE_BYTES_MAX);
    expect(shipped.startsWith('chatty line 000000')).toBe(true);
    expect(all.map((m) => m.kind).slice(-2)).toEqual(['truncated', 'end']);
  });

  it('is shipped exactly once across an agent restart', async () => {
    const command = runCommand({
      subtaskId: 'st-restart-logs',
      jobId: 'job-restart-logs',
      workload: { env: { OUTBOX: outbox } },
      script: `const fs = require('fs'); let i = 0;
               const timer = setInterval(() => {
                 console.log('tick ' + i++);
                 if (fs.existsSync(process.env.OUTBOX + '/release-restart-logs') && i > 30) { clearInterval(timer); fs.writeFileSync(process.env.FASTGPU_RESULT_PATH, String(i)); }
               }, 20);`,
    });
    await send(env, NODE, command);
    const subject = env.bus.topology.subjects.logs('acme', 'job-restart-logs', 0, 1);
    await tail.waitFor('SubtaskStarted', (e) => e.data.subtaskId === 'st-restart-logs');
    await eventually(async () => (await readFile(join(host.root, 'work', 'runs', 'st-restart-logs.1', 'stdout.log'), 'utf8')).includes('tick 5'));
    await agent.stop();
    await new Promise((r) => setTimeout(r, 300));
    agent = await startAgent(env, agentConfig(env, host, { nodeId: NODE, logsMessageBytesMax: MESSAGE_BYTES_MAX, logsMaxAgeMs: 2 * 3600 * 1000, logsStreamBytesMax: 8 * 1024 * 1024, logAttemptBytesMax: ATTEMPT_BYTES_MAX }));
    await writeFile(join(outbox, 'release-restart-logs'), '');
    const completed = await tail.waitFor('SubtaskCompleted', (e) => e.data.subtaskId === 'st-restart-logs');
    expect(completed.data.attempt).toBe(1);
    const all = await readLogs(subject, (messages) => messages.some((m) => m.kind === 'end'));
    expect(all.filter((m) => m.kind === 'end')).toHaveLength(1);
    const ticks = text(all, 'stdout').trimEnd().split('\n');
    expect(ticks.length).toBeGreaterThan(30);
    expect(ticks).toEqual(ticks.map((_, i) => `tick ${i}`));
  });
});
