/**
 * Read-your-writes for anything that folds the log: callers wait until a given stream sequence
 * has been applied (or a timeout passes); the folder calls `advance` after each batch.
 */
export class SequenceWaiters {
  private waiters: Array<{ sequence: number; resolve: () => void; fail: () => void }> = [];

  /** Resolves true once `advance` reached `sequence`, false after `timeoutMs`. */
  waitFor(sequence: number, appliedSequence: number, timeoutMs: number): Promise<boolean> {
    if (appliedSequence >= sequence) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter = {
        sequence,
        resolve: () => {
          clearTimeout(timer);
          resolve(true);
        },
        fail: () => {
          clearTimeout(timer);
          resolve(false);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(false);
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /**
   * Answers false now to every waiter at or past `sequence` (the folder stopped before it and
   * will not get there by itself), instead of letting them wait out their timeouts.
   */
  giveUp(sequence: number): void {
    if (!this.waiters.length) return;
    const hopeless = this.waiters.filter((w) => w.sequence >= sequence);
    this.waiters = this.waiters.filter((w) => w.sequence < sequence);
    for (const w of hopeless) w.fail();
  }

  /** Releases every waiter at or below `appliedSequence`. */
  advance(appliedSequence: number): void {
    if (!this.waiters.length) return;
    const ready = this.waiters.filter((w) => w.sequence <= appliedSequence);
    this.waiters = this.waiters.filter((w) => w.sequence > appliedSequence);
    for (const w of ready) w.resolve();
  }
}
