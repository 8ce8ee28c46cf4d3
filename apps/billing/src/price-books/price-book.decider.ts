import { nameId, type DomainEvent, type EventData } from '@fastgpu/contracts';
import { conflictError, validationError, type BuildEvent, type Decider } from '@fastgpu/eventsourcing';

/**
 * A price book as one aggregate (the subject `…billing.price-book.<id>`): immutable, effective-dated
 * versions, each a `PriceBookPublished` taking the book's next version number, all in the book's
 * currency. Pure: the version's prices arrive checked (price-books.service.ts `eventPrice`), its
 * time and actor in the command; the event id is named after the book and version, so publishing
 * the same version twice is one event.
 */
export interface PriceBookState {
  /** The last version published (0 before the first). */
  lastVersion: number;
  /** The book's currency, fixed by its first version. */
  currency: string | null;
}

export interface PublishPriceBookCommand {
  priceBookId: string;
  /** The version the publisher means to create; omitted: the next one. */
  version?: number;
  currency: string;
  effectiveFrom: string;
  prices: EventData<'PriceBookPublished'>['prices'];
  actor: string;
  publishedAt: string;
}

export function priceBookDecider(build: BuildEvent): Decider<PriceBookState, PublishPriceBookCommand, DomainEvent> {
  return {
    initialState: () => ({ lastVersion: 0, currency: null }),
    decide(command, state) {
      const version = state.lastVersion + 1;
      if (command.version !== undefined && command.version !== version) {
        throw conflictError('version_taken', `price book ${command.priceBookId} is at version ${state.lastVersion}; the next version is ${version} (versions are immutable)`, 'version');
      }
      if (state.currency !== null && state.currency !== command.currency) throw validationError('currency_mismatch', `price book ${command.priceBookId} is in ${state.currency}`, 'currency');
      const data: EventData<'PriceBookPublished'> = {
        priceBookId: command.priceBookId,
        version,
        currency: command.currency,
        effectiveFrom: command.effectiveFrom,
        prices: command.prices,
        publishedBy: command.actor,
        publishedAt: command.publishedAt,
      };
      const eventId = nameId('PriceBookPublished', command.priceBookId, String(version));
      return [build('PriceBookPublished', data, { id: eventId, time: command.publishedAt, tenantId: null, correlationId: eventId })];
    },
    evolve(state, event) {
      if (event.type !== 'PriceBookPublished') return state;
      const d = event.data;
      return { lastVersion: Math.max(state.lastVersion, d.version), currency: state.currency ?? d.currency };
    },
  };
}
