import { Catch, HttpException, Logger, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { throwError, type Observable } from 'rxjs';

/** Every HTTP error has one shape: `{ error: { code, message, field? } }`. */
export interface ErrorBody {
  error: { code: string; message: string; field?: string };
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
  body(): ErrorBody {
    return { error: { code: this.code, message: this.message, ...(this.field ? { field: this.field } : {}) } };
  }
}

export const notFound = (what: string) => new ApiError(404, 'not_found', `${what} not found`);
export const conflict = (message: string, field?: string) => new ApiError(409, 'conflict', message, field);
export const unprocessable = (message: string, field?: string) => new ApiError(422, 'unprocessable', message, field);

@Catch()
export class ApiErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger('http');
  catch(exception: unknown, host: ArgumentsHost): void | Observable<never> {
    // Event handlers (RPC context) get the original error back, so the transport can nak it
    // or dead-letter it with its real message.
    if (host.getType() !== 'http') return throwError(() => exception);
    const reply = host.switchToHttp().getResponse<{ status(code: number): { send(body: unknown): void } }>();
    if (exception instanceof ApiError) {
      reply.status(exception.status).send(exception.body());
      return;
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const code = status === 404 ? 'not_found' : status === 413 ? 'payload_too_large' : status === 415 ? 'unsupported_media_type' : status < 500 ? 'bad_request' : 'internal';
      reply.status(status).send({ error: { code, message: exception.message } } satisfies ErrorBody);
      return;
    }
    // Fastify body errors (bad JSON, size limit) carry a statusCode.
    const statusCode = (exception as { statusCode?: number }).statusCode;
    if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) {
      reply.status(statusCode).send({ error: { code: statusCode === 413 ? 'payload_too_large' : 'bad_request', message: (exception as Error).message } } satisfies ErrorBody);
      return;
    }
    this.logger.error((exception as Error)?.stack ?? String(exception));
    reply.status(500).send({ error: { code: 'internal', message: 'internal error' } } satisfies ErrorBody);
  }
}
