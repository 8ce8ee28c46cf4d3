/**
 * Proves the agent reads nvidia-smi's CSV strictly: real output (nounits, ", " separators, GPUs
 * in any order) becomes readings sorted by index; counters a GPU does not support ("[N/A]",
 * "[Not Supported]") become null rather than a made-up number; anything else it cannot read
 * (a wrong field count, a UUID that is not one, a non-number, a duplicate GPU) is an error, since
 * UUIDs go into CUDA_VISIBLE_DEVICES and counters decide drains. And that driver names map to
 * the scheduler's model names.
 */
import { describe, expect, it } from 'vitest';
import { gpuModelFromName, NVIDIA_SMI_ARGS, NvidiaSmiError, parseNvidiaSmiCsv } from './nvidia-smi';

const UUID_0 = 'GPU-5a8b0c1e-2f3d-4e5f-8a9b-0c1d2e3f4a5b';
const UUID_1 = 'GPU-1b2c3d4e-5f60-4718-a9b0-c1d2e3f4a5b6';

describe('parseNvidiaSmiCsv', () => {
  it('reads real output into readings sorted by index', () => {
    const output = [`1, ${UUID_1}, NVIDIA A100-SXM4-80GB, 81920, 97, 61234, 71, 3, 00000000:3B:00.0`, `0, ${UUID_0}, NVIDIA A100-SXM4-80GB, 81920, 0, 1, 33, 0, 0000:07:00.0`, ''].join('\n');
    expect(parseNvidiaSmiCsv(output)).toEqual([
      { index: 0, uuid: UUID_0, name: 'NVIDIA A100-SXM4-80GB', memoryTotalMib: 81920, utilizationPercent: 0, memoryUsedMib: 1, temperatureC: 33, eccUncorrectedVolatile: 0, pciBusId: '0000:07:00' },
      { index: 1, uuid: UUID_1, name: 'NVIDIA A100-SXM4-80GB', memoryTotalMib: 81920, utilizationPercent: 97, memoryUsedMib: 61234, temperatureC: 71, eccUncorrectedVolatile: 3, pciBusId: '0000:3b:00' },
    ]);
  });

  it('turns unsupported counters into null, never into a number', () => {
    const [gpu] = parseNvidiaSmiCsv(`0, ${UUID_0}, NVIDIA GeForce RTX 4090, 24564, [N/A], 300, [Not Supported], [N/A], [N/A]\r\n`);
    expect(gpu).toMatchObject({ utilizationPercent: null, memoryUsedMib: 300, temperatureC: null, eccUncorrectedVolatile: null, pciBusId: null });
  });

  it('refuses what it cannot read', () => {
    const bad = [
      `0, ${UUID_0}, NVIDIA A100, 81920, 0, 1, 33`,
      `0, not-a-uuid, NVIDIA A100, 81920, 0, 1, 33, 0, 0000:07:00.0`,
      `0, GPU-abc;rm -rf, NVIDIA A100, 81920, 0, 1, 33, 0, 0000:07:00.0`,
      `0, ${UUID_0}, NVIDIA A100, lots, 0, 1, 33, 0, 0000:07:00.0`,
      `0, ${UUID_0}, NVIDIA A100, [N/A], 0, 1, 33, 0, 0000:07:00.0`,
      `0, ${UUID_0}, NVIDIA A100, 81920, 0, 1, 33, 0, 3B:00`,
      `x, ${UUID_0}, NVIDIA A100, 81920, 0, 1, 33, 0, 0000:07:00.0`,
      `0, ${UUID_0}, , 81920, 0, 1, 33, 0, 0000:07:00.0`,
      `0, ${UUID_0}, NVIDIA A100, 81920, 0, 1, 33, 0, 0000:07:00.0\n0, ${UUID_1}, NVIDIA A100, 81920, 0, 1, 33, 0, 0000:07:00.0`,
      `0, ${UUID_0}, NVIDIA A100, 81920, 0, 1, 33, 0, 0000:07:00.0\n1, ${UUID_0}, NVIDIA A100, 81920, 0, 1, 33, 0, 0000:07:00.0`,
    ];
    for (const output of bad) expect(() => parseNvidiaSmiCsv(output), output).toThrow(NvidiaSmiError);
  });

  it('queries exactly the documented fields', () => {
    expect(NVIDIA_SMI_ARGS).toEqual(['--query-gpu=index,uuid,name,memory.total,utilization.gpu,memory.used,temperature.gpu,ecc.errors.uncorrected.volatile.total,pci.bus_id', '--format=csv,noheader,nounits']);
  });
});

describe('gpuModelFromName', () => {
  it('maps driver names to short model names', () => {
    expect(gpuModelFromName('NVIDIA A100-SXM4-80GB')).toBe('a100');
    expect(gpuModelFromName('NVIDIA H100 80GB HBM3')).toBe('h100');
    expect(gpuModelFromName('Tesla V100-SXM2-16GB')).toBe('v100');
    expect(gpuModelFromName('NVIDIA L40S')).toBe('l40s');
    expect(gpuModelFromName('NVIDIA GeForce RTX 4090')).toBe('rtx4090');
    expect(gpuModelFromName('NVIDIA RTX A6000')).toBe('rtxa6000');
  });
});
