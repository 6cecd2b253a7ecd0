import { type Socket, createConnection, createServer } from 'node:net';
import type { RateSample } from '../../src/components/sender/meter.js';

/** A loopback TCP proxy that notes when each byte bound for its target went through. */
export interface MeteringProxy {
  url: string;
  samples: RateSample[];
  close(): Promise<void>;
}

/** Starts the proxy in front of `target` (http://host:port); shared by the throttle test and the hierarchy bench. */
export async function meteringProxy(target: URL): Promise<MeteringProxy> {
  const samples: RateSample[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = createConnection({ host: target.hostname, port: Number(target.port) });
    sockets.add(client).add(upstream);
    client.on('data', (c: Buffer) => {
      samples.push({ at: performance.now(), bytes: c.length });
      upstream.write(c);
    });
    upstream.on('data', (c: Buffer) => client.write(c));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address();
  const port = typeof a === 'object' && a !== null ? a.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    samples,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
