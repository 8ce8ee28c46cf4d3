import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { chown, lstat, mkdir, open, readFile, realpath, rm, type FileHandle } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import type { Workload } from '@fastgpu/contracts';

/**
 * The files of one run under the agent's work root:
 *
 *   <workRoot>/runs/<subtaskId>.<attempt>/       the agent's (0711: the run's user may only pass through)
 *     supervisor.json, status.json               written by the supervisor (the agent's user)
 *     stdout.log, stderr.log                     the program's output, shipped to the LOGS stream
 *     work/                                      the attempt's own directory (0700, owned by the run's user)
 *       <workingDirectory>/                      where the program runs
 *         <resultPath>                           its result
 *
 * Paths in a workload are relative and contained (node-protocol.ts checks them); the result is
 * read by the agent with its privileges, so it is opened only after its real path is found
 * inside the attempt's directory, without following a final symlink, and only if it is a
 * regular file within the size limit.
 */
export interface RunPaths {
  runDir: string;
  workDir: string;
  cwd: string;
  resultFile: string;
  stdoutFile: string;
  stderrFile: string;
  statusFile: string;
  supervisorFile: string;
}

export const RUNS_FOLDER = 'runs';
const READ_BYTES = 256 * 1024;

export function runPaths(workRoot: string, subtaskId: string, attempt: number, workload: Pick<Workload, 'workingDirectory' | 'resultPath'>): RunPaths {
  const runDir = join(resolve(workRoot), RUNS_FOLDER, `${subtaskId}.${attempt}`);
  const workDir = join(runDir, 'work');
  const cwd = workload.workingDirectory ? join(workDir, workload.workingDirectory) : workDir;
  return {
    runDir,
    workDir,
    cwd,
    resultFile: join(cwd, workload.resultPath),
    stdoutFile: join(runDir, 'stdout.log'),
    stderrFile: join(runDir, 'stderr.log'),
    statusFile: join(runDir, 'status.json'),
    supervisorFile: join(runDir, 'supervisor.json'),
  };
}

/** Creates a run's directories: the agent's run directory and the attempt's own, owned by the run's user when one is configured. */
export async function prepareRunDirectories(paths: RunPaths, owner: { uid?: number; gid?: number }): Promise<void> {
  await mkdir(paths.runDir, { recursive: true, mode: 0o711 });
  // Directories below work/ are created one by one so each gets the run's owner.
  const created = [paths.workDir];
  await mkdir(paths.workDir, { mode: 0o700, recursive: true });
  const below = (target: string): string[] => {
    const relative = target.slice(paths.workDir.length + 1);
    return relative === '' ? [] : relative.split(sep);
  };
  for (const target of [paths.cwd, resolve(paths.resultFile, '..')]) {
    let current = paths.workDir;
    for (const segment of below(target)) {
      current = join(current, segment);
      try {
        await mkdir(current, { mode: 0o700 });
        created.push(current);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
    }
  }
  if (owner.uid !== undefined || owner.gid !== undefined) {
    for (const directory of created) await chown(directory, owner.uid ?? -1, owner.gid ?? -1);
  }
}

export async function removeRunDirectory(runDir: string): Promise<void> {
  await rm(runDir, { recursive: true, force: true, maxRetries: 3 });
}

/** A secret's value, read on the host from `<secretsDir>/<tenantId>/<name>` (one trailing newline dropped). */
export async function readSecret(secretsDir: string | undefined, tenantId: string, name: string): Promise<string> {
  if (!secretsDir) throw new Error(`secret ${name}: this agent has no secrets directory (FASTGPU_AGENT_SECRETS_DIR)`);
  let value: string;
  try {
    value = await readFile(join(secretsDir, tenantId, name), 'utf8');
  } catch (error) {
    throw new Error(`secret ${name} of tenant ${tenantId}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`, { cause: error });
  }
  if (value.includes('\u0000')) throw new Error(`secret ${name} contains U+0000 and cannot be an environment variable`);
  return value.endsWith('\n') ? value.slice(0, -1) : value;
}

export type ResultFile =
  | { kind: 'absent' }
  | { kind: 'refused'; reason: string }
  | { kind: 'ready'; bytes: number; sha256: string; handle: FileHandle };

/**
 * Opens a run's result for reading, or says why not. The caller closes `handle`. The SHA-256 is
 * of exactly `bytes` bytes; the caller checks the stored object against both.
 */
export async function openResult(paths: RunPaths, resultPath: string, bytesMax: number): Promise<ResultFile> {
  let real: string;
  try {
    await lstat(paths.resultFile);
    real = await realpath(paths.resultFile);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { kind: 'absent' };
    return { kind: 'refused', reason: `${resultPath}: ${code ?? 'unreadable'}` };
  }
  const realWork = await realpath(paths.workDir);
  if (!real.startsWith(realWork + sep)) return { kind: 'refused', reason: `${resultPath} leads outside the attempt's directory` };
  let handle: FileHandle;
  try {
    // O_NOFOLLOW: a final symlink swapped in after realpath is refused; O_NONBLOCK: a FIFO does not hang the agent.
    handle = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    return { kind: 'refused', reason: `${resultPath}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}` };
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) {
      await handle.close();
      return { kind: 'refused', reason: `${resultPath} is not a regular file` };
    }
    if (stat.size > bytesMax) {
      await handle.close();
      return { kind: 'refused', reason: `${resultPath} has ${stat.size} bytes, over the limit of ${bytesMax}` };
    }
    const hash = createHash('sha256');
    const buffer = Buffer.alloc(READ_BYTES);
    let bytes = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, bytes);
      if (bytesRead === 0) break;
      bytes += bytesRead;
      if (bytes > bytesMax) {
        await handle.close();
        return { kind: 'refused', reason: `${resultPath} grew past the limit of ${bytesMax} bytes` };
      }
      hash.update(buffer.subarray(0, bytesRead));
    }
    return { kind: 'ready', bytes, sha256: hash.digest('hex'), handle };
  } catch (error) {
    await handle.close().catch(() => undefined);
    throw error;
  }
}
