/**
 * Proves the node protocol's workload (libs/contracts node-protocol.ts) is strict: a RunSubtask
 * without a workload is still valid (the simulator's placements), a full workload parses, and
 * each way a workload could hurt the host or the log is refused with the field: a shell-free
 * argv with an empty or multi-line program, control characters in text, escaping paths ("..",
 * absolute, empty segments), variables the agent owns (FASTGPU_*, CUDA_VISIBLE_DEVICES, …), a
 * secret named twice or given a value, an index outside the count, and sizes past every bound.
 */
import { describe, expect, it } from 'vitest';
import {
  isContainedRelativePath,
  NodeCommand,
  Workload,
  WORKLOAD_ARGUMENTS_MAX,
  WORKLOAD_ENV_ENTRIES_MAX,
  WORKLOAD_RESULT_BYTES_MAX,
  WORKLOAD_TEXT_BYTES_MAX,
  WORKLOAD_TIMEOUT_MS_MAX,
} from '@fastgpu/contracts';

const valid: Workload = {
  command: ['python3', '-c', 'import os\nprint(os.environ["FASTGPU_SUBTASK_INDEX"])'],
  env: { MODEL: 'llama', EMPTY: '' },
  secrets: [{ env: 'HF_TOKEN', secret: 'hugging-face' }],
  workingDirectory: 'work/run',
  timeoutMs: 60_000,
  subtaskIndex: 2,
  subtaskCount: 4,
  input: '{"shard": 2}',
  resultPath: 'out/result.json',
  resultBytesMax: 1_000_000,
};

const run = {
  kind: 'RunSubtask',
  commandId: 'c-1',
  jobId: 'job-1',
  tenantId: 'acme',
  subtaskId: 'st-1',
  attempt: 1,
  leaseEpoch: 1,
  gpuIndices: [0, 1],
  runtimeMs: 60_000,
  issuedAt: '2026-01-01T00:00:00.000Z',
};

/** The path of the first issue a workload with `patch` gets, or undefined when it parses. */
function refusal(patch: Record<string, unknown>): string | undefined {
  const result = Workload.safeParse({ ...valid, ...patch });
  return result.success ? undefined : result.error.issues[0]!.path.map(String).join('.');
}

describe('RunSubtask with and without a workload', () => {
  it('accepts a command without a workload, and one with a full workload unchanged', () => {
    expect(NodeCommand.parse(run)).toEqual(run);
    expect(NodeCommand.parse({ ...run, workload: valid })).toEqual({ ...run, workload: valid });
  });

  it('refuses a command whose workload is malformed, naming the field under workload', () => {
    const result = NodeCommand.safeParse({ ...run, workload: { ...valid, timeoutMs: 0 } });
    expect(result.success).toBe(false);
    expect(result.error!.issues[0]!.path).toEqual(['workload', 'timeoutMs']);
  });
});

describe('the command', () => {
  it('is an argv array with a non-empty single-line program; arguments may span lines', () => {
    expect(refusal({ command: [] })).toBe('command');
    expect(refusal({ command: [''] })).toBe('command.0');
    expect(refusal({ command: ['node\n-e'] })).toBe('command.0');
    expect(refusal({ command: 'node -e 1' })).toBe('command');
    expect(refusal({ command: ['node', '-e', 'a\n\tb'] })).toBeUndefined();
  });

  it('refuses control characters and lone surrogates in any argument', () => {
    expect(refusal({ command: ['node', 'a\u0000b'] })).toBe('command.1');
    expect(refusal({ command: ['node', 'a\u001bb'] })).toBe('command.1');
    expect(refusal({ command: ['node', '\ud800'] })).toBe('command.1');
  });

  it('is bounded in count and, with environment and input, in bytes', () => {
    expect(refusal({ command: Array.from({ length: WORKLOAD_ARGUMENTS_MAX }, () => 'x') })).toBeUndefined();
    expect(refusal({ command: Array.from({ length: WORKLOAD_ARGUMENTS_MAX + 1 }, () => 'x') })).toBe('command');
    // Each part within its own bound, the sum over the total: refused as a whole.
    const big = 'é'.repeat(16_000);
    const env = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`V${i}`, big]));
    expect(Buffer.byteLength(Object.values(env).join(''))).toBeGreaterThan(WORKLOAD_TEXT_BYTES_MAX);
    expect(refusal({ env })).toBe('');
  });
});

describe('the environment and secrets', () => {
  it('takes plain variables with storable values, bounded in number', () => {
    expect(refusal({ env: { A: 'line\nnext' } })).toBeUndefined();
    expect(refusal({ env: { A: 'nul\u0000' } })).toBe('env.A');
    expect(refusal({ env: { '1A': 'x' } })).toBe('env.1A');
    expect(refusal({ env: { 'A-B': 'x' } })).toBe('env.A-B');
    expect(refusal({ env: Object.fromEntries(Array.from({ length: WORKLOAD_ENV_ENTRIES_MAX + 1 }, (_, i) => [`V${i}`, 'x'])) })).toBe('env');
  });

  it('refuses the variables the agent sets itself', () => {
    for (const name of ['CUDA_VISIBLE_DEVICES', 'NVIDIA_VISIBLE_DEVICES', 'JOB_COMPLETION_INDEX', 'FASTGPU_INPUT', 'FASTGPU_ANYTHING']) {
      expect(refusal({ env: { [name]: 'x' } })).toBe(`env.${name}`);
      expect(refusal({ secrets: [{ env: name, secret: 's' }] })).toBe('secrets.0.env');
    }
  });

  it('takes secrets by name only: a value, a path or a name set twice is refused', () => {
    expect(refusal({ secrets: [{ env: 'TOKEN', secret: '../etc/passwd' }] })).toBe('secrets.0.secret');
    expect(refusal({ secrets: [{ env: 'TOKEN', secret: 'a.b' }] })).toBe('secrets.0.secret');
    const strict = Workload.safeParse({ ...valid, secrets: [{ env: 'TOKEN', secret: 's', value: 'hunter2' }] });
    // zod strips unknown keys; the parsed workload never carries a value.
    expect(strict.success && JSON.stringify(strict.data)).not.toContain('hunter2');
    expect(refusal({ env: { TOKEN: 'x' }, secrets: [{ env: 'TOKEN', secret: 's' }] })).toBe('secrets.0.env');
  });
});

describe('paths', () => {
  it('are relative and stay below their directory', () => {
    for (const path of ['out/result.json', 'a', 'a/b/c', '.hidden', 'a..b']) expect(isContainedRelativePath(path), path).toBe(true);
    for (const path of ['/etc/passwd', '../x', 'a/../../x', 'a/./b', 'a//b', 'a/', '.', '..']) {
      expect(isContainedRelativePath(path), path).toBe(false);
      expect(refusal({ resultPath: path }), path).toBe('resultPath');
      expect(refusal({ workingDirectory: path }), path).toBe('workingDirectory');
    }
    expect(refusal({ resultPath: '' })).toBe('resultPath');
    expect(refusal({ resultPath: 'a\nb' })).toBe('resultPath');
    expect(refusal({ resultPath: Array.from({ length: 33 }, () => 'a').join('/') })).toBe('resultPath');
  });
});

describe('numbers', () => {
  it('bounds the timeout, the result size and the index within the count', () => {
    expect(refusal({ timeoutMs: WORKLOAD_TIMEOUT_MS_MAX })).toBeUndefined();
    expect(refusal({ timeoutMs: WORKLOAD_TIMEOUT_MS_MAX + 1 })).toBe('timeoutMs');
    expect(refusal({ timeoutMs: 1.5 })).toBe('timeoutMs');
    expect(refusal({ resultBytesMax: WORKLOAD_RESULT_BYTES_MAX + 1 })).toBe('resultBytesMax');
    expect(refusal({ resultBytesMax: 0 })).toBe('resultBytesMax');
    expect(refusal({ subtaskIndex: 3, subtaskCount: 4 })).toBeUndefined();
    expect(refusal({ subtaskIndex: 4, subtaskCount: 4 })).toBe('subtaskIndex');
    expect(refusal({ subtaskIndex: -1 })).toBe('subtaskIndex');
    expect(refusal({ subtaskCount: 10_001 })).toBe('subtaskCount');
  });

  it('bounds the input item and keeps it storable', () => {
    expect(refusal({ input: 'x'.repeat(65_536) })).toBeUndefined();
    expect(refusal({ input: 'x'.repeat(65_537) })).toBe('input');
    expect(refusal({ input: '\u0007' })).toBe('input');
  });
});
