import { foldEvents, type Decider, type DomainError } from './decider';

/**
 * Given / when / then for a decider (after Emmett's DeciderSpecification), independent of the
 * test runner: a mismatch throws an Error whose message shows both sides.
 *
 *   spec(invoice).given([created, finalized]).when(pay).then([paid]);
 *   spec(invoice).given([created]).when(pay).thenThrows('illegal-state', 'invoice_not_finalized');
 */
export function spec<State, Command, Event, Fact = Event>(decider: Decider<State, Command, Event, Fact>) {
  return {
    /** What the log holds before the command (the events as evolve reads them). */
    given(facts: readonly Fact[]) {
      return {
        when(command: Command) {
          const run = () => decider.decide(command, foldEvents(decider, facts));
          return {
            then(expected: readonly Event[]): void {
              const actual = run();
              const [a, e] = [JSON.stringify(actual), JSON.stringify(expected)];
              if (a !== e) throw new Error(`decided events differ\n  expected: ${e}\n  actual:   ${a}`);
            },
            thenThrows(kind: DomainError['kind'], code?: string): void {
              let actual: unknown;
              try {
                actual = run();
              } catch (error) {
                const domain = error as DomainError;
                if (domain?.name !== 'DomainError' && domain?.name !== 'ConcurrencyError') throw new Error(`expected a DomainError (${kind}), got ${String(error)}`);
                if (domain.kind !== kind || (code !== undefined && domain.code !== code)) throw new Error(`expected ${kind}${code ? `/${code}` : ''}, got ${domain.kind}/${domain.code}: ${domain.message}`);
                return;
              }
              throw new Error(`expected ${kind}${code ? `/${code}` : ''}, but it decided ${JSON.stringify(actual)}`);
            },
          };
        },
      };
    },
  };
}
