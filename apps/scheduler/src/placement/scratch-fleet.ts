import type { Allocation, ClassRank, NodeState, SchedulerState } from './scheduler.state';

/**
 * The cycle's scratch copy of the fleet: free GPUs per node (in buckets by free count per GPU
 * model, for best fit without a scan), the GPU indices taken or freed in this cycle, usage per
 * tenant and model as the cycle changes it, the victims chosen so far, and indexes built on
 * demand (preemptible GPUs per node, topology domains). The folded state is never written: a
 * dry-run and an explanation are the same cycle, thrown away.
 */
export interface ModelPool {
  model: string;
  nodes: NodeState[];
  maxGpuCount: number;
  /** buckets[f] = ordinals of ready nodes with exactly f free GPUs (scratch). */
  buckets: number[][];
  /** GPUs of nodes that are not lost (fair-share denominator). */
  capacity: number;
  /** Smallest size that found no free node this cycle; and the same for units ending after the reservation starts. */
  minFailedGpus: number;
  minFailedLongGpus: number;
  /** Smallest size, per preemptor class, for which preemption found no node. */
  preemptFailedGpus: [number, number, number];
}

interface CycleAllocation {
  gpus: number;
  endMs: number;
}

export class Scratch {
  readonly free: Int32Array;
  readonly position: Int32Array;
  readonly pools = new Map<string, ModelPool>();
  private readonly taken = new Map<number, Uint8Array>();
  private readonly usage = new Map<string, Map<string, number>>();
  readonly victims = new Set<Allocation>();
  readonly placedInCycle = new Map<number, CycleAllocation[]>();
  /** Smallest gang size (per topology key, models, GPUs) that found no domain. */
  readonly domainFailed = new Map<string, number>();
  /**
   * Preemptible GPUs per node: [0] held by preemptible standard-class work (victims of high),
   * [1] held by the preemptible class (victims of high and standard); nodes with any, per model.
   * Built on the first preemption attempt of a cycle.
   */
  private preemptibleIndex?: { byRank: [Int32Array, Int32Array]; nodesByModel: Map<string, NodeState[]> };

  constructor(private readonly state: SchedulerState) {
    const nodes = state.nodeList;
    this.free = new Int32Array(nodes.length);
    this.position = new Int32Array(nodes.length).fill(-1);
    for (const node of nodes) {
      this.free[node.ordinal] = node.freeGpus;
      let pool = this.pools.get(node.gpuModel);
      if (!pool) {
        pool = { model: node.gpuModel, nodes: [], maxGpuCount: 0, buckets: [], capacity: 0, minFailedGpus: Infinity, minFailedLongGpus: Infinity, preemptFailedGpus: [Infinity, Infinity, Infinity] };
        this.pools.set(node.gpuModel, pool);
      }
      if (node.status === 'lost') continue;
      pool.capacity += node.gpuCount;
      if (node.status !== 'ready') continue;
      pool.nodes.push(node);
      if (node.gpuCount > pool.maxGpuCount) {
        for (let f = pool.buckets.length; f <= node.gpuCount; f++) pool.buckets.push([]);
        pool.maxGpuCount = node.gpuCount;
      }
      const bucket = pool.buckets[node.freeGpus]!;
      this.position[node.ordinal] = bucket.length;
      bucket.push(node.ordinal);
    }
  }

  node(ordinal: number): NodeState {
    return this.state.nodeList[ordinal]!;
  }

  private setFree(node: NodeState, next: number): void {
    const ordinal = node.ordinal;
    const previous = this.free[ordinal]!;
    this.free[ordinal] = next;
    const pool = this.pools.get(node.gpuModel)!;
    if (this.position[ordinal]! < 0) return;
    const from = pool.buckets[previous]!;
    const at = this.position[ordinal]!;
    const last = from.pop()!;
    if (last !== ordinal) {
      from[at] = last;
      this.position[last] = at;
    }
    const to = pool.buckets[next]!;
    this.position[ordinal] = to.length;
    to.push(ordinal);
  }

  private takenOf(node: NodeState): Uint8Array {
    let flags = this.taken.get(node.ordinal);
    if (!flags) {
      flags = new Uint8Array(node.gpuCount);
      for (let i = 0; i < node.gpuCount; i++) flags[i] = node.gpuOwner[i] === undefined ? 0 : 1;
      this.taken.set(node.ordinal, flags);
    }
    return flags;
  }

  /** Takes `gpus` free GPU indices on the node (lowest first). */
  take(node: NodeState, gpus: number, endMs: number): number[] {
    const flags = this.takenOf(node);
    const indices: number[] = [];
    for (let i = 0; i < flags.length && indices.length < gpus; i++) {
      if (flags[i] === 0) {
        flags[i] = 1;
        indices.push(i);
      }
    }
    if (indices.length !== gpus) throw new Error(`node ${node.nodeId} has ${indices.length} free GPUs, not ${gpus}`);
    this.setFree(node, this.free[node.ordinal]! - gpus);
    const list = this.placedInCycle.get(node.ordinal) ?? [];
    list.push({ gpus, endMs });
    this.placedInCycle.set(node.ordinal, list);
    return indices;
  }

  untake(node: NodeState, indices: number[]): void {
    const flags = this.takenOf(node);
    for (const i of indices) flags[i] = 0;
    this.setFree(node, this.free[node.ordinal]! + indices.length);
    this.placedInCycle.get(node.ordinal)?.pop();
  }

  /** Frees a running allocation's GPUs in the scratch (preemption). */
  evict(allocation: Allocation): void {
    const flags = this.takenOf(allocation.node);
    for (const i of allocation.gpuIndices) flags[i] = 0;
    this.setFree(allocation.node, this.free[allocation.node.ordinal]! + allocation.gpus);
    this.victims.add(allocation);
    this.addUsage(allocation.tenantId, allocation.gpuModel, -allocation.gpus);
    for (const pool of this.pools.values()) {
      pool.minFailedGpus = Infinity;
      pool.minFailedLongGpus = Infinity;
    }
    this.domainFailed.clear();
    this.countPreemptible(allocation, -1);
  }

  unevict(allocation: Allocation): void {
    const flags = this.takenOf(allocation.node);
    for (const i of allocation.gpuIndices) flags[i] = 1;
    this.setFree(allocation.node, this.free[allocation.node.ordinal]! - allocation.gpus);
    this.victims.delete(allocation);
    this.addUsage(allocation.tenantId, allocation.gpuModel, allocation.gpus);
    this.countPreemptible(allocation, 1);
  }

  private countPreemptible(allocation: Allocation, sign: 1 | -1): void {
    if (!this.preemptibleIndex || !allocation.preemptible || allocation.classRank === 0) return;
    this.preemptibleIndex.byRank[allocation.classRank - 1]![allocation.node.ordinal]! += sign * allocation.gpus;
  }

  /** Nodes of a model holding preemptible work, and how many GPUs a preemptor of `classRank` could free on a node. */
  preemptible(model: string): NodeState[] {
    if (!this.preemptibleIndex) {
      const n = this.state.nodeList.length;
      const index = { byRank: [new Int32Array(n), new Int32Array(n)] as [Int32Array, Int32Array], nodesByModel: new Map<string, NodeState[]>() };
      for (const pool of this.pools.values()) {
        const nodes: NodeState[] = [];
        for (const node of pool.nodes) {
          let any = false;
          for (const a of node.allocations) {
            if (!a.preemptible || a.classRank === 0 || this.victims.has(a)) continue;
            index.byRank[a.classRank - 1]![node.ordinal]! += a.gpus;
            any = true;
          }
          if (any) nodes.push(node);
        }
        index.nodesByModel.set(pool.model, nodes);
      }
      this.preemptibleIndex = index;
    }
    return this.preemptibleIndex.nodesByModel.get(model) ?? [];
  }

  private readonly domainIndex = new Map<string, Array<[string, NodeState[]]>>();

  /** Ready nodes of a model grouped by a topology label (e.g. NVLink domain), by label value, ordinals ascending. */
  domains(model: string, key: string): Array<[string, NodeState[]]> {
    const cacheKey = `${model}\u0000${key}`;
    let domains = this.domainIndex.get(cacheKey);
    if (!domains) {
      const byValue = new Map<string, NodeState[]>();
      for (const node of this.pools.get(model)?.nodes ?? []) {
        const value = node.labels[key];
        if (value === undefined) continue;
        const list = byValue.get(value) ?? [];
        list.push(node);
        byValue.set(value, list);
      }
      domains = [...byValue.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
      this.domainIndex.set(cacheKey, domains);
    }
    return domains;
  }

  preemptibleGpus(ordinal: number, classRank: ClassRank): number {
    const byRank = this.preemptibleIndex!.byRank;
    // High preempts preemptible standard work and the preemptible class; standard only the latter.
    return classRank === 0 ? byRank[0][ordinal]! + byRank[1][ordinal]! : classRank === 1 ? byRank[1][ordinal]! : 0;
  }

  usageOf(tenantId: string, model: string): number {
    const own = this.usage.get(tenantId);
    if (own) return own.get(model) ?? 0;
    return this.state.usage.get(tenantId)?.get(model) ?? 0;
  }

  addUsage(tenantId: string, model: string, gpus: number): void {
    let own = this.usage.get(tenantId);
    if (!own) {
      own = new Map(this.state.usage.get(tenantId) ?? []);
      this.usage.set(tenantId, own);
    }
    own.set(model, (own.get(model) ?? 0) + gpus);
  }

  usageModels(tenantId: string): Map<string, number> | undefined {
    return this.usage.get(tenantId) ?? this.state.usage.get(tenantId);
  }
}
