/**
 * Read-your-writes for anything that folds the log: callers wait until a given stream sequence
 * has been applied (or a timeout passes); the folder calls `advance` after each batch.
 */
export class SequenceWaiters {
  private waiters: Array<{ sequence: number; resolve: () => void }> = [];

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
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(false);
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** Releases every waiter at or below `appliedSequence`. */
  advance(appliedSequence: number): void {
    if (!this.waiters.length) return;
    const ready = this.waiters.filter((w) => w.sequence <= appliedSequence);
    this.waiters = this.waiters.filter((w) => w.sequence > appliedSequence);
    for (const w of ready) w.resolve();
  }
}
