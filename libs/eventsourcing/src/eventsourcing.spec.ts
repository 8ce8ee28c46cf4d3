/**
 * Proves the event-sourcing kernel: given/when/then over a pure decider (events decided, and
 * each refusal with its kind and code); and handleCommand on real NATS JetStream — it reads an
 * aggregate (one subject) back with its version, appends with the expected subject sequence,
 * decides again when another writer got there first (JetStream's error 10071, recognised by its
 * code, not its text), and gives up with a ConcurrencyError after the bounded retries.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DomainEvent } from '@fastgpu/contracts';
import { EventPublisher } from '@fastgpu/messaging';
import { createTestEnvironment, type TestEnvironment } from '@fastgpu/testing';
import { ConcurrencyError, DomainError, handleCommand, illegalState, isStreamVersionConflict, JetStreamEventStream, spec, StreamVersionMismatch, type Decider, type EventStream } from './index';

// A node's drain state, as a small decider over real catalogue events.
type DrainState = { drained: boolean; changes: number };
type DrainCommand = { kind: 'drain' | 'undrain'; nodeId: string; at: string; id: string; reason?: string };

function drainDecider(publisher: EventPublisher): Decider<DrainState, DrainCommand, DomainEvent> {
  const meta = (command: DrainCommand) => ({ id: command.id, time: command.at, tenantId: null, correlationId: command.id });
  return {
    initialState: () => ({ drained: false, changes: 0 }),
    decide: (command, state) => {
      if (command.kind === 'drain') {
        if (state.drained) throw illegalState('already_drained', `node ${command.nodeId} is drained already`, 'nodeId');
        return [publisher.build('NodeDrained', { nodeId: command.nodeId, reason: command.reason ?? 'maintenance', drainedAt: command.at, automatic: false }, meta(command))];
      }
      if (!state.drained) throw illegalState('not_drained', `node ${command.nodeId} is not drained`, 'nodeId');
      return [publisher.build('NodeUndrained', { nodeId: command.nodeId, undrainedAt: command.at }, meta(command))];
    },
    evolve: (state, event) => {
      switch (event.type) {
        case 'NodeDrained':
          return { drained: true, changes: state.changes + 1 };
        case 'NodeUndrained':
          return { drained: false, changes: state.changes + 1 };
        default:
          return state;
      }
    },
  };
}

let env: TestEnvironment;
let publisher: EventPublisher;
let store: JetStreamEventStream;
let decider: Decider<DrainState, DrainCommand, DomainEvent>;
const at = (minute: number) => new Date(Date.UTC(2026, 0, 1, 0, minute)).toISOString();
let counter = 0;
const command = (kind: DrainCommand['kind'], nodeId: string): DrainCommand => ({ kind, nodeId, at: at(counter), id: `0190d000-0000-7000-8000-${String(++counter).padStart(12, '0')}` });

beforeAll(async () => {
  env = await createTestEnvironment();
  publisher = new EventPublisher(env.bus.js, env.bus.topology, 'eventsourcing-spec');
  store = new JetStreamEventStream(env.bus, publisher);
  decider = drainDecider(publisher);
});
afterAll(async () => env?.cleanup());

describe('given / when / then', () => {
  it('checks the decided events and each refusal', () => {
    const pure = drainDecider(new EventPublisher(undefined as never, { ...env.bus.topology }, 'spec'));
    const drain = command('drain', 'n1');
    const drained = pure.decide(drain, pure.initialState());
    spec(pure).given([]).when(drain).then(drained);
    spec(pure).given(drained).when(command('drain', 'n1')).thenThrows('illegal-state', 'already_drained');
    spec(pure).given([]).when(command('undrain', 'n1')).thenThrows('illegal-state', 'not_drained');
    expect(() => spec(pure).given([]).when(drain).then([])).toThrow(/decided events differ/);
    expect(() => spec(pure).given([]).when(drain).thenThrows('illegal-state')).toThrow(/but it decided/);
    expect(() => spec(pure).given(drained).when(command('drain', 'n1')).thenThrows('not-found')).toThrow(/expected not-found, got illegal-state/);
  });
});

describe('handleCommand on JetStream', () => {
  it('reads an aggregate back with its version and appends with the expected subject sequence', async () => {
    const subject = env.bus.topology.subjects.reliabilityNode('n-read');
    expect(await store.read(subject)).toEqual({ events: [], version: 0 });
    const first = await handleCommand(store, decider, subject, command('drain', 'n-read'));
    expect(first.state).toEqual({ drained: true, changes: 1 });
    // Another aggregate in between: versions are stream sequences, the read stays on its subject.
    await handleCommand(store, decider, env.bus.topology.subjects.reliabilityNode('n-other'), command('drain', 'n-other'));
    const second = await handleCommand(store, decider, subject, command('undrain', 'n-read'));
    expect(second.version).toBeGreaterThan(first.version + 1);
    const read = await store.read(subject);
    expect(read.version).toBe(second.version);
    expect(read.events.map((e) => e.type)).toEqual(['NodeDrained', 'NodeUndrained']);
    await expect(handleCommand(store, decider, subject, command('undrain', 'n-read'))).rejects.toMatchObject({ name: 'DomainError', kind: 'illegal-state', code: 'not_drained' });
  });

  it('recognises a stale expectation by JetStream error code 10071', async () => {
    const subject = env.bus.topology.subjects.reliabilityNode('n-code');
    await handleCommand(store, decider, subject, command('drain', 'n-code'));
    const stale = decider.decide(command('undrain', 'n-code'), { drained: true, changes: 1 });
    const error = await publisher.publish(stale[0]!, { expectedLastSubjectSequence: 0 }).catch((e: unknown) => e);
    expect(isStreamVersionConflict(error)).toBe(true);
    await expect(store.append(subject, stale, 0)).rejects.toBeInstanceOf(StreamVersionMismatch);
    expect(isStreamVersionConflict(new Error('wrong last sequence: 3'))).toBe(false);
  });

  it('decides again when another writer got there first, and gives up after the bounded retries', async () => {
    const subject = env.bus.topology.subjects.reliabilityNode('n-race');
    // Another writer appends to the same aggregate right after each of our reads, as long as
    // `interfere` allows: our append then meets a newer version than the one we decided on.
    let interfere = 1;
    let recoveries = 0;
    const racing: EventStream<DomainEvent> = {
      read: async (s) => {
        const read = await store.read(s);
        if (interfere-- > 0) {
          const id = command('drain', 'n-race').id;
          await publisher.publish(publisher.build('NodeRecovered', { nodeId: 'n-race', agentEpoch: ++recoveries, recoveredAt: at(recoveries) }, { id, time: at(recoveries), tenantId: null, correlationId: id }));
        }
        return read;
      },
      append: (s, events, expected) => store.append(s, events, expected),
    };
    // One interference: the first append is refused, the second decision lands after the other writer's event.
    const landed = await handleCommand(racing, decider, subject, command('drain', 'n-race'));
    expect((await store.read(subject)).events.map((e) => e.type)).toEqual(['NodeRecovered', 'NodeDrained']);
    expect(landed.version).toBe((await store.read(subject)).version);
    // Interfering on every read: after 1 + retries attempts, a ConcurrencyError, and nothing of ours appended.
    interfere = 100;
    const error = await handleCommand(racing, decider, subject, command('undrain', 'n-race'), { retries: 2 }).catch((e: unknown) => e);
    expect((await store.read(subject)).events.filter((e) => e.type === 'NodeUndrained')).toEqual([]);
    expect(error).toBeInstanceOf(ConcurrencyError);
    expect(error).toBeInstanceOf(DomainError);
    expect((error as ConcurrencyError).kind).toBe('concurrency');
    expect((error as Error).message).toMatch(/3 time\(s\)/);
  });
});
