import type { FastGpuConfig } from '@fastgpu/config';
import { isDatabaseUnavailable } from '@fastgpu/db';
import { isRetryablePublishError } from '@fastgpu/messaging';
import { JsonLogger } from '@fastgpu/observability';
import { startServices, type ServiceDefinition, type StartedApp } from './app';
import { createRuntime, type OwnedRuntime } from './runtime';

/** First and largest wait between two attempts to start a service (doubling in between). */
export const START_RETRY_DELAY_MS_MIN = 250;
export const START_RETRY_DELAY_MS_MAX = 5_000;

/** Causes followed at most this deep. */
const CAUSE_DEPTH_MAX = 4;

/**
 * Whether a service that failed to start may start if it tries again: NATS not answering yet (no
 * server, JetStream not enabled or not answering, a request timed out, no stream leader, a
 * connection between a disconnect and its reconnect) or the database unreachable. A wrong setting
 * or an error in the code fails the same way every time, and is not retried.
 */
export function isTransientStartError(error: unknown, depth = 0): boolean {
  if (typeof error !== 'object' || error === null || depth > CAUSE_DEPTH_MAX) return false;
  if (isRetryablePublishError(error) || isDatabaseUnavailable(error)) return true;
  const { name, cause } = error as { name?: unknown; cause?: unknown };
  // The client could not reach any server (refused, closed while connecting).
  if (name === 'ConnectionError' || name === 'ClosedConnectionError') return true;
  return cause !== undefined && cause !== error && isTransientStartError(cause, depth + 1);
}

export interface StartRetryOptions {
  /** Runtime options (runStandalone: several instances may run). */
  runtime?: Parameters<typeof createRuntime>[1];
  /** HTTP options of startServices (tests: port 0, no Nest logger). */
  http?: Parameters<typeof startServices>[2];
  logger?: JsonLogger;
  /** Called after each failed attempt that will be retried (tests count them). */
  onRetry?: (attempt: number, error: unknown, delayMs: number) => void;
}

/**
 * Runs `start` and runs it again, with backoff (doubling from 250 ms to 5 s), for as long as it
 * fails for a reason that goes away by itself (isTransientStartError): NATS or its JetStream not
 * answering yet, or not answering in time, at start (a cluster electing leaders, a server
 * restarting) is waited out instead of ending the process. `start` closes what a failed attempt
 * opened before it throws. Other errors are thrown. The one start rule of every process that
 * connects at start (services, the node simulator).
 */
export async function retryTransientStart<T>(start: () => Promise<T>, options: Pick<StartRetryOptions, 'onRetry'> & { logger: JsonLogger }): Promise<T> {
  for (let attempt = 1, delayMs = START_RETRY_DELAY_MS_MIN; ; attempt++, delayMs = Math.min(delayMs * 2, START_RETRY_DELAY_MS_MAX)) {
    try {
      return await start();
    } catch (error) {
      if (!isTransientStartError(error)) throw error;
      options.logger.warn('start failed; retrying', { attempt, retryInMs: delayMs, error });
      options.onRetry?.(attempt, error, delayMs);
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}

/**
 * Connects and starts one service (a service's main), or several in one app (`npm start`), with
 * retryTransientStart; a failed attempt closes its runtime and half-started app.
 */
export async function startWithRetry(services: ServiceDefinition | readonly ServiceDefinition[], config: FastGpuConfig, options: StartRetryOptions = {}): Promise<{ runtime: OwnedRuntime; started: StartedApp }> {
  const list: ServiceDefinition[] = 'module' in services ? [services] : [...services];
  return retryTransientStart(
    async () => {
      let runtime: OwnedRuntime | undefined;
      try {
        runtime = await createRuntime(config, options.runtime);
        const started = await startServices(runtime, list, options.http);
        return { runtime, started };
      } catch (error) {
        await runtime?.close().catch(() => undefined);
        throw error;
      }
    },
    { logger: options.logger ?? new JsonLogger(list.length === 1 ? list[0]!.name : 'fastgpu'), onRetry: options.onRetry },
  );
}

/**
 * Logs a promise rejection nothing handled (which would otherwise end the process) as an error
 * with the service's name and the error's name, message and stack, and keeps the process running:
 * what failed reports itself unready through its health check. Installed once per process.
 */
export function logUnhandledRejections(logger: JsonLogger): void {
  process.on('unhandledRejection', (reason) => {
    logger.error('unhandled promise rejection', { error: reason instanceof Error ? reason : { value: String(reason) } });
  });
}
