import { Agent, request } from 'node:http';

/**
 * `clients` simulated clients fetch every chunk URL once, at the same time,
 * one request in flight each (a client fetches its chunks one after another
 * over one kept-alive connection). Bodies are counted and dropped: this
 * measures the server, not the clients' hashing. Returns bytes per second.
 */
export async function downloadAll(urlOf: (hash: string) => string, hashes: readonly string[], clients: number): Promise<{ bytes: number; seconds: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: clients + 10 });
  let bytes = 0;
  const get = (hash: string): Promise<void> =>
    new Promise((resolve, reject) => {
      const req = request(urlOf(hash), { agent }, (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          reject(new Error(`${urlOf(hash)}: HTTP ${res.statusCode}`));
          return;
        }
        res.on('data', (b: Buffer) => (bytes += b.length));
        res.on('end', () => resolve());
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
  const start = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      // Each client starts at another chunk, as real clients' orders would differ.
      for (let i = 0; i < hashes.length; i++) await get(hashes[(i + c * 7) % hashes.length] as string);
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  agent.destroy();
  return { bytes, seconds };
}
