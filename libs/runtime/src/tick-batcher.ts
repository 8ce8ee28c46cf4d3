/**
 * Groups the calls made during one event-loop turn into one batch. A service answering many
 * concurrent requests pays per round trip and per socket write, not per row: the requests that
 * arrive together (all parsed in the same I/O phase) share one multi-row INSERT or one flushed
 * write of publishes. The batch runs in `setImmediate`, right after that I/O phase, so a lone
 * request waits for nothing; a batch never grows past `maxBatch`.
 *
 * `run` gets the items in arrival order and returns one promise per item, so one item's failure
 * (a conflict, a rejected publish) fails that caller only.
 */
export class TickBatcher<I, O> {
  private pending: Array<{ item: I; resolve: (value: O) => void; reject: (error: unknown) => void }> = [];
  private scheduled = false;

  constructor(
    private readonly run: (items: readonly I[]) => ReadonlyArray<Promise<O>>,
    private readonly maxBatch = 500,
  ) {}

  add(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (this.pending.length >= this.maxBatch) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          this.flush();
        });
      }
    });
  }

  private flush(): void {
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    let results: ReadonlyArray<Promise<O>>;
    try {
      results = this.run(batch.map((entry) => entry.item));
    } catch (error) {
      for (const entry of batch) entry.reject(error);
      return;
    }
    batch.forEach((entry, i) => {
      const result = results[i];
      if (result) result.then(entry.resolve, entry.reject);
      else entry.reject(new Error(`TickBatcher: no result for item ${i} of ${batch.length}`));
    });
  }
}
