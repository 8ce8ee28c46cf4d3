import { DomainError, foldEvents, type Decider } from '@fastgpu/eventsourcing';
import { BillingRejection } from './invoice.decider';

/**
 * For billing's decider specs: the refusal a decider gives `command` on the state after `given`,
 * as the HTTP status and code of its BillingRejection, or the kind and code of its DomainError;
 * an Error when it decides instead of refusing. Only specs import it.
 */
export function refusalOf<State, Command, Event>(decider: Decider<State, Command, Event>, given: readonly Event[], command: Command): [number | string, string] {
  try {
    decider.decide(command, foldEvents(decider, given));
  } catch (error) {
    if (error instanceof BillingRejection) return [error.status, error.code];
    if (error instanceof DomainError) return [error.kind, error.code];
    throw error;
  }
  throw new Error('expected a refusal, but the decider decided');
}
