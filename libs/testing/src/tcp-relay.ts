import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP relay from a free loopback port to `target`, for tests that need a server (PostgreSQL)
 * out of reach for one process without stopping it for everyone: `cut()` drops every relayed
 * connection and refuses new ones, `open()` listens again on the same port.
 */
export class TcpRelay {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  /** The relay's port (0 until first opened, then kept). */
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {}

  /** A relay to the host and port of a `postgres://` or similar URL. */
  static to(url: string, defaultPort: number): TcpRelay {
    const parsed = new URL(url);
    return new TcpRelay({ host: parsed.hostname, port: Number(parsed.port || defaultPort) });
  }

  /** `url` with its host and port replaced by the relay's. */
  through(url: string): string {
    const parsed = new URL(url);
    parsed.host = `127.0.0.1:${this.port}`;
    return parsed.toString();
  }

  /** Takes a free port when first called (or `port` when set before), then listens on it. */
  async open(): Promise<void> {
    if (this.server) return;
    const server = createServer((client) => {
      const upstream = createConnection(this.target);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.once('close', () => this.sockets.delete(socket));
        socket.once('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
      client.once('close', () => upstream.destroy());
      upstream.once('close', () => client.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    if (typeof address === 'object' && address) this.port = address.port;
    this.server = server;
  }

  /** Drops every relayed connection and stops listening. */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  }
}
