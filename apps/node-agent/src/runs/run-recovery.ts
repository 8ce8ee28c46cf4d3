import { readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { sleep, type AgentContext } from '../agent-context';
import { processAlive, processStartTicks, signalGroup } from './processes';
import { ADOPTED_POLL_MS, GROUP_KILL_WAIT_MS, type RunSupervisor } from './run-supervisor';
import { removeRunDirectory, RUNS_FOLDER } from './workspace';

/**
 * What a restarted agent does with what the previous one ran (docs/node-agent.md, "Restarts"):
 * adopts the runs whose supervisors are still alive (or kills them with
 * FASTGPU_AGENT_ON_RESTART=kill), reports the ones that ended meanwhile as they ended, and kills
 * orphans, processes of run directories its state file does not name.
 */
export class RunRecovery {
  constructor(
    private readonly context: AgentContext,
    private readonly supervisor: RunSupervisor,
  ) {}

  private get bus() {
    return this.context.bus;
  }

  private get config() {
    return this.context.config;
  }

  private get book() {
    return this.context.book;
  }

  private log(level: 'info' | 'warn' | 'error', message: string): void {
    this.context.log(level, message);
  }

  /** Finds what the previous agent ran; returns how many runs are still alive and kept. */
  async recoverRuns(sameBoot: boolean): Promise<number> {
    let adopted = 0;
    for (const record of this.book.state.runs) {
      const run = this.supervisor.newRun(record);
      if (record.phase === 'ended') {
        // A report owed from before the restart (same ids: a repeat is dropped by the bus).
        run.ending = run.shipper
          .resume(this.bus.jsm, this.bus.topology.streams.logs)
          .then(() => this.supervisor.deliverReport(run))
          .catch((error: Error) => this.log('error', `reporting ${record.key}: ${error.message}`));
        continue;
      }
      if (record.phase === 'starting') {
        // Spawned or not? The supervisor writes its pid first thing.
        const supervisor = await readFile(run.paths.supervisorFile, 'utf8').then((t) => JSON.parse(t) as { pid?: number }).catch(() => undefined);
        const ticks = sameBoot && supervisor?.pid ? await processStartTicks(supervisor.pid) : undefined;
        if (supervisor?.pid && ticks !== undefined) {
          record.pid = supervisor.pid;
          record.startTicks = ticks;
          record.startedAtMs = Date.now();
          record.startedAt = new Date(record.startedAtMs).toISOString();
          record.phase = 'running';
        } else {
          // Never started: forget it; its command was not acknowledged and comes again.
          this.book.runs.delete(record.key);
          await removeRunDirectory(run.paths.runDir);
          continue;
        }
      }
      record.sawRestart = true;
      try {
        await run.shipper.resume(this.bus.jsm, this.bus.topology.streams.logs);
      } catch (error) {
        this.log('warn', `cannot resume the logs of ${record.key}: ${(error as Error).message}`);
      }
      const alive = sameBoot && record.pid !== undefined && record.startTicks !== undefined && (await processAlive(record.pid, record.startTicks));
      if (!alive) {
        this.log('warn', `${record.key} is gone after the restart`);
        run.ending = this.supervisor.endRun(run).catch((error: Error) => this.log('error', `ending ${record.key}: ${error.message}`));
        continue;
      }
      if (this.config.onRestart === 'kill') {
        record.killedAtRestart = true;
        this.log('warn', `${record.key} is alive after the restart: killing it (FASTGPU_AGENT_ON_RESTART=kill)`);
        this.supervisor.killGroup(run);
      } else {
        adopted++;
        this.log('info', `${record.key} is alive after the restart: adopted (process group ${record.pid})`);
        if (record.stopRequestedAtMs !== undefined || record.timedOutAtMs !== undefined) this.supervisor.killGroup(run);
        else this.supervisor.armTimeout(run);
        run.shipper.start();
      }
      this.supervisor.pollAdopted(run);
    }
    await this.book.save();
    return adopted;
  }

  /** Waits (bounded) for the runs found dead or killed at restart to be reported. */
  async awaitRecoveredEndings(): Promise<void> {
    const deadline = Date.now() + this.config.stopGraceMs + GROUP_KILL_WAIT_MS + ADOPTED_POLL_MS * 5;
    while (Date.now() < deadline && [...this.book.runs.values()].some((run) => run.record.killedAtRestart && !run.ending)) await sleep(ADOPTED_POLL_MS);
    await Promise.all([...this.book.runs.values()].flatMap((run) => (run.ending ? [run.ending] : [])));
  }

  /** Run directories no state record names (a lost state file, a crash mid-write): their processes are killed, the directories removed. */
  async killOrphans(): Promise<void> {
    const known = new Set([...this.book.runs.values()].map((run) => run.paths.runDir));
    const runsRoot = join(resolve(this.config.workRoot), RUNS_FOLDER);
    for (const entry of await readdir(runsRoot)) {
      const runDir = join(runsRoot, entry);
      if (known.has(runDir)) continue;
      const supervisor = await readFile(join(runDir, 'supervisor.json'), 'utf8').then((t) => JSON.parse(t) as { pid?: number }).catch(() => undefined);
      if (supervisor?.pid && (await processStartTicks(supervisor.pid)) !== undefined) {
        const cmdline = await readFile(`/proc/${supervisor.pid}/cmdline`, 'utf8').catch(() => '');
        // Only a process that is this run's supervisor (a pid may have been reused).
        if (cmdline.includes(runDir)) {
          this.log('warn', `orphan run ${entry} (process group ${supervisor.pid}): killing it`);
          signalGroup(supervisor.pid, 'SIGTERM');
          await sleep(Math.min(this.config.stopGraceMs, 1000));
          signalGroup(supervisor.pid, 'SIGKILL');
        }
      }
      await removeRunDirectory(runDir);
    }
  }

}
