import { execFile } from 'node:child_process';
import { isSingleLineText } from '@fastgpu/contracts';
import { pciKey } from './xid';

/**
 * GPU discovery and health samples from `nvidia-smi`, the one tool every NVIDIA driver ships.
 * The query is fixed (the agent's whole contract with the driver); the parser is pure and strict:
 * a line it cannot read is an error, never a guess, because the UUIDs it yields end up in
 * `CUDA_VISIBLE_DEVICES` and the counters decide whether reliability drains the node.
 */
export const NVIDIA_SMI_QUERY_FIELDS = ['index', 'uuid', 'name', 'memory.total', 'utilization.gpu', 'memory.used', 'temperature.gpu', 'ecc.errors.uncorrected.volatile.total', 'pci.bus_id'] as const;
export const NVIDIA_SMI_ARGS = [`--query-gpu=${NVIDIA_SMI_QUERY_FIELDS.join(',')}`, '--format=csv,noheader,nounits'] as const;

/** A node registers at most this many GPUs (the heartbeat's bound). */
export const GPUS_PER_NODE_MAX = 64;
const OUTPUT_BYTES_MAX = 256 * 1024;
const NAME_LENGTH_MAX = 128;
/** GPU and MIG UUIDs as nvidia-smi prints them; they are written into environment variables. */
const UUID_PATTERN = /^(GPU|MIG)-[0-9A-Za-z-]{1,120}$/;

export interface GpuReading {
  /** The driver's index (nvidia-smi `index`). */
  index: number;
  uuid: string;
  name: string;
  memoryTotalMib: number;
  /** Counters the driver may not support on this GPU are null ("[N/A]", "[Not Supported]"). */
  utilizationPercent: number | null;
  memoryUsedMib: number | null;
  temperatureC: number | null;
  eccUncorrectedVolatile: number | null;
  /** The GPU's PCI address as the kernel log names it (xid.ts pciKey: `0000:3b:00`), to match XIDs to it. */
  pciBusId: string | null;
}

export class NvidiaSmiError extends Error {}

function unsupported(value: string): boolean {
  return /^\[?(N\/A|Not Supported|Unknown Error|Insufficient Permissions|GPU is lost)\]?$/i.test(value);
}

function numberField(line: number, field: string, value: string, options: { integer: boolean; optional: boolean }): number | null {
  if (unsupported(value)) {
    if (options.optional) return null;
    throw new NvidiaSmiError(`line ${line}: ${field} is "${value}"`);
  }
  const pattern = options.integer ? /^-?\d{1,12}$/ : /^-?\d{1,12}(\.\d{1,6})?$/;
  if (!pattern.test(value)) throw new NvidiaSmiError(`line ${line}: ${field} "${value}" is not a number`);
  return Number(value);
}

/** Parses `nvidia-smi --query-gpu=<NVIDIA_SMI_QUERY_FIELDS> --format=csv,noheader,nounits` output. */
export function parseNvidiaSmiCsv(output: string): GpuReading[] {
  const readings: GpuReading[] = [];
  const lines = output.split(/\r?\n/).filter((line) => line.trim() !== '');
  if (lines.length > GPUS_PER_NODE_MAX) throw new NvidiaSmiError(`${lines.length} GPUs: at most ${GPUS_PER_NODE_MAX} per node`);
  lines.forEach((text, at) => {
    const line = at + 1;
    // nvidia-smi separates with ", " and never quotes; a GPU name contains no comma.
    const fields = text.split(',').map((field) => field.trim());
    if (fields.length !== NVIDIA_SMI_QUERY_FIELDS.length) throw new NvidiaSmiError(`line ${line}: ${fields.length} fields, expected ${NVIDIA_SMI_QUERY_FIELDS.length}`);
    const [index, uuid, name, memoryTotal, utilization, memoryUsed, temperature, ecc, pciBusId] = fields as [string, string, string, string, string, string, string, string, string];
    if (!UUID_PATTERN.test(uuid)) throw new NvidiaSmiError(`line ${line}: uuid "${uuid}" is not a GPU or MIG UUID`);
    const pci = unsupported(pciBusId) ? null : pciKey(pciBusId);
    if (pci === undefined) throw new NvidiaSmiError(`line ${line}: pci.bus_id "${pciBusId}" is not a PCI address`);
    if (name === '' || name.length > NAME_LENGTH_MAX || !isSingleLineText(name)) throw new NvidiaSmiError(`line ${line}: name is empty, too long or not text`);
    const reading: GpuReading = {
      index: numberField(line, 'index', index, { integer: true, optional: false })!,
      uuid,
      name,
      memoryTotalMib: numberField(line, 'memory.total', memoryTotal, { integer: true, optional: false })!,
      utilizationPercent: numberField(line, 'utilization.gpu', utilization, { integer: false, optional: true }),
      memoryUsedMib: numberField(line, 'memory.used', memoryUsed, { integer: true, optional: true }),
      temperatureC: numberField(line, 'temperature.gpu', temperature, { integer: false, optional: true }),
      eccUncorrectedVolatile: numberField(line, 'ecc.errors.uncorrected.volatile.total', ecc, { integer: true, optional: true }),
      pciBusId: pci,
    };
    if (reading.index < 0 || reading.memoryTotalMib <= 0) throw new NvidiaSmiError(`line ${line}: index or memory.total out of range`);
    readings.push(reading);
  });
  const uuids = new Set(readings.map((r) => r.uuid));
  const indices = new Set(readings.map((r) => r.index));
  if (uuids.size !== readings.length || indices.size !== readings.length) throw new NvidiaSmiError('duplicate GPU index or UUID');
  return readings.sort((a, b) => a.index - b.index);
}

/**
 * The scheduler's GPU model name for a driver name: "NVIDIA A100-SXM4-80GB" → "a100",
 * "NVIDIA H100 80GB HBM3" → "h100", "NVIDIA GeForce RTX 4090" → "rtx4090". Operators override it
 * (FASTGPU_AGENT_GPU_MODEL) where their fleet names models otherwise.
 */
export function gpuModelFromName(name: string): string {
  const brand = new Set(['nvidia', 'tesla', 'geforce', 'quadro']);
  const tokens = name.toLowerCase().split(/[^a-z0-9]+/).filter((token) => token !== '' && !brand.has(token));
  const [first, second] = tokens;
  if (first === 'rtx' && second) return `rtx${second}`;
  const model = tokens.find((token) => /\d/.test(token) && /[a-z]/.test(token)) ?? tokens.join('-');
  return model.slice(0, 64) || 'gpu';
}

/** One nvidia-smi query in flight: its readings, and when its process has exited. */
export interface GpuQuery {
  /** Settles by `timeoutMs` at the latest, whether or not the process has exited. */
  readings: Promise<GpuReading[]>;
  /** Resolves once the process is gone (a process stuck in the driver may outlive its SIGKILL). */
  exited: Promise<void>;
}

/**
 * Runs nvidia-smi with the fixed query (no shell), bounded in output and in time: at `timeoutMs`
 * the process gets SIGKILL and `readings` rejects at once, without waiting for the process to
 * exit or its output to close (a GPU that fell off the bus can leave nvidia-smi hung in the driver).
 */
export function startGpuQuery(nvidiaSmi: string, timeoutMs: number): GpuQuery {
  let settle!: { resolve(readings: GpuReading[]): void; reject(error: Error): void };
  const readings = new Promise<GpuReading[]>((resolve, reject) => (settle = { resolve, reject }));
  let markExited!: () => void;
  const exited = new Promise<void>((resolve) => (markExited = resolve));
  const child = execFile(nvidiaSmi, [...NVIDIA_SMI_ARGS], { maxBuffer: OUTPUT_BYTES_MAX, encoding: 'utf8', killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
    clearTimeout(deadline);
    if (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        settle.reject(new NvidiaSmiError(`${nvidiaSmi} not found: this host has no NVIDIA driver (the agent runs only on a GPU host), or set FASTGPU_AGENT_NVIDIA_SMI to its path`));
        return;
      }
      settle.reject(new NvidiaSmiError(`${nvidiaSmi} failed: ${error.message}${stderr ? `: ${stderr.trim().slice(0, 300)}` : ''}`));
      return;
    }
    try {
      settle.resolve(parseNvidiaSmiCsv(stdout));
    } catch (parseError) {
      settle.reject(parseError instanceof Error ? parseError : new NvidiaSmiError(String(parseError)));
    }
  });
  const deadline = setTimeout(() => {
    child.kill('SIGKILL');
    settle.reject(new NvidiaSmiError(`${nvidiaSmi} did not answer within ${timeoutMs} ms (killed)`));
  }, timeoutMs);
  // 'exit' (not 'close'): a grandchild holding the output pipe open does not keep the query alive.
  if (child.exitCode !== null || child.signalCode !== null) markExited();
  child.once('exit', () => markExited());
  child.once('error', () => markExited());
  return { readings, exited };
}

/** Runs nvidia-smi once (startGpuQuery) and returns its readings. */
export function queryGpus(nvidiaSmi: string, timeoutMs: number): Promise<GpuReading[]> {
  return startGpuQuery(nvidiaSmi, timeoutMs).readings;
}
