import type { SchedulerState } from './scheduler.state';

/** Figures about the fleet as folded, for /v1/nodes and the capacity planner (and the benchmark). */

/** Free GPUs stranded on partly used nodes, as a fraction of all free GPUs (0 = perfectly packed). */
export function fragmentation(state: SchedulerState): { freeGpus: number; strandedGpus: number; ratio: number } {
  let free = 0;
  let stranded = 0;
  for (const node of state.nodeList) {
    if (node.status !== 'ready') continue;
    free += node.freeGpus;
    if (node.freeGpus > 0 && node.freeGpus < node.gpuCount) stranded += node.freeGpus;
  }
  return { freeGpus: free, strandedGpus: stranded, ratio: free === 0 ? 0 : stranded / free };
}

/** Free GPUs per model on ready nodes, right now. */
export function freeByModel(state: SchedulerState): Record<string, { freeGpus: number; totalGpus: number; nodes: number }> {
  const out: Record<string, { freeGpus: number; totalGpus: number; nodes: number }> = {};
  for (const node of [...state.nodeList].sort((a, b) => (a.gpuModel < b.gpuModel ? -1 : a.gpuModel > b.gpuModel ? 1 : 0))) {
    const entry = (out[node.gpuModel] ??= { freeGpus: 0, totalGpus: 0, nodes: 0 });
    if (node.status === 'lost') continue;
    entry.nodes++;
    entry.totalGpus += node.gpuCount;
    if (node.status === 'ready') entry.freeGpus += node.freeGpus;
  }
  return out;
}
