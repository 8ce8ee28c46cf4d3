import { readdir, readFile } from 'node:fs/promises';

/**
 * Linux process facts the agent needs to find its runs again after a restart, read from /proc:
 * a pid alone is not an identity (pids are reused), a pid with its start time (in clock ticks
 * since boot) and the boot id is. Process groups are signalled as a whole (`kill(-pgid)`).
 */
const PROC = '/proc';

/** The kernel's boot id: a process recorded under another boot id is gone. */
export async function bootId(): Promise<string> {
  return (await readFile(`${PROC}/sys/kernel/random/boot_id`, 'utf8')).trim();
}

interface ProcStat {
  state: string;
  pgrp: number;
  startTicks: number;
}

/** Fields of /proc/<pid>/stat; the command name (field 2) may hold spaces and parentheses, so fields are read after its last ')'. */
async function procStat(pid: number): Promise<ProcStat | undefined> {
  let text: string;
  try {
    text = await readFile(`${PROC}/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // After the name: state (3), ppid (4), pgrp (5), … starttime (22): indices 0, 1, 2, … 19.
  const state = fields[0] ?? '';
  const pgrp = Number(fields[2]);
  const startTicks = Number(fields[19]);
  if (!Number.isInteger(pgrp) || !Number.isInteger(startTicks)) return undefined;
  return { state, pgrp, startTicks };
}

/** The start time of a live process, or undefined when there is no such (live) process. */
export async function processStartTicks(pid: number): Promise<number | undefined> {
  const stat = await procStat(pid);
  return stat && stat.state !== 'Z' && stat.state !== 'X' ? stat.startTicks : undefined;
}

/** Whether the process that had `pid` and started at `startTicks` still runs (not a zombie, not a reused pid). */
export async function processAlive(pid: number, startTicks: number): Promise<boolean> {
  return (await processStartTicks(pid)) === startTicks;
}

/** Live (non-zombie) members of a process group. `kill(-pgid, 0)` answers first, cheaply, for a group that is gone. */
export async function groupMembers(pgid: number): Promise<number[]> {
  try {
    process.kill(-pgid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return [];
  }
  const members: number[] = [];
  for (const entry of await readdir(PROC)) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await procStat(Number(entry));
    if (stat && stat.pgrp === pgid && stat.state !== 'Z' && stat.state !== 'X') members.push(Number(entry));
  }
  return members;
}

/** Sends `signal` to every process of the group; a group that is already gone is fine. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/**
 * The OOM kill counter of the memory cgroup the agent (and so its runs) lives in: cgroup v2
 * `memory.events` (`oom_kill N`) or v1 `memory.oom_control` (`oom_kill N`, Linux ≥ 4.13).
 * Undefined when neither can be read: the agent then cannot tell an OOM kill from another SIGKILL.
 */
export async function findOomCounterFile(): Promise<string | undefined> {
  let cgroups: string;
  try {
    cgroups = await readFile(`${PROC}/self/cgroup`, 'utf8');
  } catch {
    return undefined;
  }
  const candidates: string[] = [];
  for (const line of cgroups.split('\n')) {
    const [, controllers, path] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
    if (path === undefined) continue;
    if (controllers === '') candidates.push(`/sys/fs/cgroup${path}/memory.events`, '/sys/fs/cgroup/memory.events');
    if (controllers?.split(',').includes('memory')) candidates.push(`/sys/fs/cgroup/memory${path}/memory.oom_control`, '/sys/fs/cgroup/memory/memory.oom_control');
  }
  for (const candidate of candidates) if ((await readOomKills(candidate)) !== undefined) return candidate;
  return undefined;
}

export async function readOomKills(file: string): Promise<number | undefined> {
  try {
    const match = /^oom_kill (\d+)$/m.exec(await readFile(file, 'utf8'));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}
