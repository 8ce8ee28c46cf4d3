import { Heartbeat } from '@fastgpu/contracts';
import type { AgentContext } from '../agent-context';
import type { GpuSampler } from '../gpus/gpu-sampler';
import type { XidCounter } from '../gpus/xid-reader';

/**
 * The node's heartbeats (docs/node-protocol.md, "Heartbeats"): every heartbeat interval, a GPU
 * sample per registered GPU (utilisation, memory, temperature, ECC errors from the newest
 * nvidia-smi sample, XIDs from the kernel log) and the runs whose processes the agent holds.
 * nvidia-smi runs on the sampler's own timer (gpus/gpu-sampler.ts), never on this one: a hung
 * nvidia-smi leaves the GPU samples out once they are stale, and the heartbeats keep coming.
 */
export class Heartbeats {
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly context: AgentContext,
    private readonly sampler: GpuSampler,
    private readonly xids: XidCounter | undefined,
  ) {}

  start(): void {
    this.sampler.start();
    this.schedule(0);
  }

  stop(): void {
    this.sampler.stop();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.send()
        .catch((error: Error) => this.context.log('warn', `heartbeat: ${error.message}`))
        .finally(() => {
          if (!this.context.closed()) this.schedule(this.context.config.heartbeatIntervalMs);
        });
    }, delayMs);
  }

  /** One heartbeat with the newest GPU sample (GPUs it does not list, or all when it is stale, are left out) and the runs whose processes are held. */
  async send(): Promise<void> {
    const { config, host, book, bus } = this.context;
    const telemetry = this.sampler.current();
    const readings = telemetry.stale ? [] : telemetry.readings;
    await this.xids?.poll();
    const xids = this.xids?.available ? this.xids : undefined;
    const byUuid = new Map(readings.map((r) => [r.uuid, r]));
    const gpus: Heartbeat['gpus'] = [];
    host.gpus.forEach((gpu, index) => {
      const reading = byUuid.get(gpu.uuid);
      if (!reading) return;
      gpus.push({
        index,
        utilizationPercent: Math.min(100, Math.max(0, reading.utilizationPercent ?? 0)),
        memoryUsedMb: Math.min(host.gpuMemoryGb * 1024, Math.max(0, reading.memoryUsedMib ?? 0)),
        temperatureC: Math.min(150, Math.max(-20, reading.temperatureC ?? 0)),
        eccErrors: reading.eccUncorrectedVolatile ?? 0,
        // From the kernel log (NVRM: Xid), matched by PCI address; left out when the log cannot be read (docs/node-agent.md).
        ...(xids && reading.pciBusId !== null ? { xidErrors: xids.count(reading.pciBusId) } : {}),
      });
    });
    const running = book.heldRuns().map((run) => ({ subtaskId: run.command.subtaskId, attempt: run.command.attempt, leaseEpoch: run.command.leaseEpoch }));
    const beat: Heartbeat = { nodeId: config.nodeId, agentEpoch: book.state.agentEpoch, sentAt: new Date().toISOString(), gpus, running };
    await bus.js.publish(bus.topology.subjects.heartbeat(config.nodeId), JSON.stringify(Heartbeat.parse(beat)));
  }
}
