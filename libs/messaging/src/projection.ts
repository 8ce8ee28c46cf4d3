import type { Transaction } from 'kysely';
import type { EventType, StoredEvent } from '@fastgpu/contracts';
import type { Database } from '@fastgpu/db';

/**
 * What a projection is to the runners that drive it (the live ProjectionRunner, libs/replay's
 * rebuild): the Projection interface and its transaction and context, and how a runner reports a
 * stall (its kinds, its one-line description, the health it shows, where it logs).
 */
export type ProjectionTransaction = Transaction<Database>;

export interface ProjectionContext {
  /** False during a rebuild into fresh tables: side effects (publishing derived events) are off. */
  live: boolean;
  /**
   * Table name for a logical table in this projection's table set (rebuilds use suffixed copies
   * with the same columns, so the name is typed as the live table's: its columns in `Database`).
   */
  table<N extends string>(name: N): N;
  /**
   * True when this process created the tables empty and is their only writer (a rebuild from
   * sequence 1 in one run): a projection may then trust its memory of which rows it wrote, e.g.
   * to skip looking up keys it never wrote. Absent or false: it must read the tables.
   */
  ownsTables?: boolean;
  /**
   * True when the transaction can bulk-insert with COPY (libs/db `copyRows`; the `pg` driver):
   * a rebuild sets it. A projection writes the same rows either way.
   */
  bulkCopy?: boolean;
}

/**
 * A read model folded from the domain stream. `apply` gets consecutive valid events of the
 * types it declares, inside the transaction that also moves the checkpoint.
 */
export interface Projection {
  /** Checkpoint key; a rebuild runs under `<name>@<version>`. */
  name: string;
  /** Event types this projection reads; others only move the checkpoint. */
  types: ReadonlySet<EventType>;
  /**
   * Money: stop at a message of a type it reads that does not decode (it is dead-lettered too)
   * instead of going past it, and report unhealthy until an operator repairs it (design.md:
   * never skip money). Other projections dead-letter it and go on.
   */
  stopsOnUndecodable?: boolean;
  apply(trx: ProjectionTransaction, events: StoredEvent[], context: ProjectionContext): Promise<void>;
}

export type StallKind = 'undecodable' | 'unappliable' | 'transient';

/** Where and why a projection stopped: what an operator needs to find and repair the event. */
export interface ProjectionStall {
  /** The stream sequence it stopped at: every event before it is applied, none after. */
  sequence: number;
  eventId?: string;
  eventType?: string;
  reason: string;
  /**
   * `undecodable`: the message does not decode (dead-lettered too) and the projection stops on
   * those (money); `unappliable`: a valid event the projection's apply refuses, the same way on
   * every retry; `transient`: the database is unreachable or busy, or the event log would not
   * take a derived event, retried until it answers.
   */
  kind: StallKind;
  /** When this stall began (ISO-8601): retries of the same stall keep it. */
  since: string;
  attempts: number;
}

export interface ProjectionHealth {
  projection: string;
  status: 'starting' | 'running' | 'stalled' | 'stopped';
  lastSequence: number;
  stalledAtSequence?: number;
  /** One line: the sequence, event id and type, and the reason. */
  error?: string;
  stall?: ProjectionStall;
  /** Times its stream consumer was found stuck (its server gone) and opened again. */
  consumerReopens?: number;
  /** With several instances (leases on): whether this one applies or stands by, and who holds the lease. */
  role?: 'active' | 'standby';
  leaseHolder?: string;
}

/** Where a runner reports stalls: a JSON-lines logger (libs/observability's JsonLogger fits). */
export interface ProjectionLogger {
  error(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
}

/** The default logger: one JSON object per line on stderr. */
export const stderrProjectionLogger: ProjectionLogger = {
  error: (msg, fields) => writeLogLine('error', msg, fields),
  warn: (msg, fields) => writeLogLine('warn', msg, fields),
  info: (msg, fields) => writeLogLine('info', msg, fields),
};

function writeLogLine(level: string, msg: string, fields: Record<string, unknown> = {}): void {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, service: 'projection-runner', msg, ...fields })}\n`);
}

/** A message the projection stops at without applying it (an undecodable event it may read). */
export class UndecodableEventError extends Error {
  constructor(
    readonly sequence: number,
    readonly reason: string,
    readonly eventType: string | undefined,
    readonly eventId: string | undefined,
  ) {
    super(`sequence ${sequence} does not decode: ${reason}`);
    this.name = 'UndecodableEventError';
  }
}

/** One line naming a stall: sequence, event id and type, reason. */
export function describeStall(stall: Pick<ProjectionStall, 'sequence' | 'eventId' | 'eventType' | 'reason' | 'kind'>): string {
  const named = [stall.eventId && `event ${stall.eventId}`, stall.eventType].filter(Boolean).join(', ');
  return `stopped at sequence ${stall.sequence}${named ? ` (${named})` : ''}, ${stall.kind}: ${stall.reason}`;
}
