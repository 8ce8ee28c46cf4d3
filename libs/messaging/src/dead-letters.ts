import { headers as natsHeaders, type MsgHdrs } from '@nats-io/transport-node';
import type { JetStreamClient } from '@nats-io/jetstream';
import { Headers, type Topology } from '@fastgpu/contracts';

export interface DeadLetterInput {
  consumer: string;
  originalSubject: string;
  originalStream: string;
  originalSequence: number;
  deliveries: number;
  reason: string;
  headers?: MsgHdrs;
  data: Uint8Array;
  /** How many times this message has been dead-lettered before (grows on failed redrives). */
  previousCount?: number;
}

/**
 * Sends a message that cannot be handled to `<prefix>.dlq.<consumer>` with the reason, keeping
 * the original subject, headers, stream sequence, consumer and delivery count. The msg id is
 * derived from (stream, sequence, consumer, count) so a retry does not make a second copy.
 */
export async function sendToDeadLetters(js: JetStreamClient, topo: Topology, input: DeadLetterInput): Promise<number> {
  const h = natsHeaders();
  if (input.headers) {
    for (const key of input.headers.keys()) {
      if (key === Headers.messageId) continue;
      for (const value of input.headers.values(key)) h.append(key, value);
    }
  }
  const count = (input.previousCount ?? Number(input.headers?.get(Headers.deadLetterCount) || 0)) + 1;
  h.set(Headers.deadLetterReason, input.reason.slice(0, 1000).replace(/[\r\n]+/g, ' '));
  h.set(Headers.deadLetterSubject, input.originalSubject);
  h.set(Headers.deadLetterStream, input.originalStream);
  h.set(Headers.deadLetterSequence, String(input.originalSequence));
  h.set(Headers.deadLetterConsumer, input.consumer);
  h.set(Headers.deadLetterDeliveries, String(input.deliveries));
  h.set(Headers.deadLetterCount, String(count));
  const ack = await js.publish(topo.subjects.deadLetter(input.consumer), input.data, {
    headers: h,
    msgID: `dlq-${input.originalStream}-${input.originalSequence}-${input.consumer}-${count}`,
  });
  return ack.seq;
}
