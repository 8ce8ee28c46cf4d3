import { randomBytes } from 'node:crypto';
import type { Bus } from '@fastgpu/messaging';

/**
 * "Now" as the log sees it: the time JetStream stamps on a message it stores.
 *
 * A test whose assertions compare producer times with stream receipt times (the lateness
 * horizon, accrual, liveness) takes its instants from here, and pins the service clock to the
 * same value, so every clock the assertion depends on is the same one, on any date (and under
 * scripts/test-at-offset.sh, which moves the test's, PostgreSQL's and nats-server's clocks).
 *
 * It writes one message to a throwaway stream of the bus's prefix, reads its stored time, and
 * deletes the stream: the domain streams never see it.
 */
export async function logNow(bus: Bus): Promise<number> {
  const name = `${bus.topology.prefix}_CLOCK_${randomBytes(3).toString('hex')}`.toUpperCase().replace(/[^A-Z0-9_-]/g, '_');
  const subject = `${bus.topology.prefix}.clock-probe.${randomBytes(3).toString('hex')}`;
  await bus.jsm.streams.add({ name, subjects: [subject] });
  try {
    const ack = await bus.js.publish(subject, new Uint8Array(0));
    const stored = await bus.jsm.streams.getMessage(name, { seq: ack.seq });
    if (!stored) throw new Error(`the clock probe at sequence ${ack.seq} of ${name} was not stored`);
    return stored.time.getTime();
  } finally {
    await bus.jsm.streams.delete(name).catch(() => false);
  }
}
