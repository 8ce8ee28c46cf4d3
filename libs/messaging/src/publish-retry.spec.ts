/**
 * Which publish failures are sent again with the same Nats-Msg-Id (issue 16: a leader change must
 * not lose an acknowledged write nor store it twice), and how NATS_URL gives servers and a user.
 * Pure: the cluster behaviour itself is proven in test/cluster/leader-kill.spec.ts.
 */
import { describe, expect, it } from 'vitest';
import { natsServers } from './bus';
import { EventLogUnavailableError, isEventLogUnavailable, isRetryablePublishError } from './publisher';

const named = (name: string, message: string, extra: Record<string, unknown> = {}) => Object.assign(new Error(message), { name }, extra);

describe('isRetryablePublishError', () => {
  it('retries what says nothing about the message: no answer, no responders, JetStream unavailable', () => {
    expect(isRetryablePublishError(named('TimeoutError', 'timeout'))).toBe(true);
    expect(isRetryablePublishError(named('JetStreamNotEnabled', 'jetstream is not enabled'))).toBe(true);
    expect(isRetryablePublishError(named('NoResponders', "no responders: 'x'"))).toBe(true);
    expect(isRetryablePublishError(named('JetStreamApiError', 'JetStream system temporarily unavailable', { status: 503 }))).toBe(true);
    expect(isRetryablePublishError(named('RequestError', 'request failed', { cause: named('TimeoutError', 'timeout') }))).toBe(true);
  });

  it('does not retry a refusal of the message itself', () => {
    expect(isRetryablePublishError(named('JetStreamApiError', 'wrong last sequence: 4', { status: 400 }))).toBe(false);
    expect(isRetryablePublishError(named('JetStreamApiError', 'message size exceeds maximum allowed', { status: 400 }))).toBe(false);
    expect(isRetryablePublishError(named('PermissionViolationError', 'Permissions Violation for Publish to "x"'))).toBe(false);
    expect(isRetryablePublishError(named('ClosedConnectionError', 'closed connection'))).toBe(false);
    expect(isRetryablePublishError(undefined)).toBe(false);
  });

  it('names the exhausted retry so that the API answers 503', () => {
    expect(isEventLogUnavailable(new EventLogUnavailableError('no leader'))).toBe(true);
    expect(isEventLogUnavailable(named('EventLogUnavailableError', 'from another copy of the module'))).toBe(true);
    expect(isEventLogUnavailable(new Error('other'))).toBe(false);
  });
});

describe('natsServers', () => {
  it('splits a cluster URL list and takes a user and password out of it', () => {
    expect(natsServers('nats://127.0.0.1:4222')).toEqual({ servers: ['nats://127.0.0.1:4222'] });
    expect(natsServers('nats://a:1, nats://b:2,nats://c:3')).toEqual({ servers: ['nats://a:1', 'nats://b:2', 'nats://c:3'] });
    expect(natsServers('nats://svc:p%40ss@a:1,nats://svc:p%40ss@b:2')).toEqual({ servers: ['nats://a:1', 'nats://b:2'], user: 'svc', pass: 'p@ss' });
  });
});
