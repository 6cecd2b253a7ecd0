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

/**
 * The agent's request pattern against a DP's batch route: each client asks
 * for its chunks `batch` at a time (`POST /dp/<dp>/chunks`), `inFlight`
 * requests at once, over kept-alive connections. Bodies are counted and
 * dropped, frame headers included.
 */
export async function downloadAllBatched(url: string, hashes: readonly string[], options: { clients: number; batch: number; inFlight: number }): Promise<{ bytes: number; seconds: number; requests: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: options.clients * options.inFlight + 10 });
  let bytes = 0;
  let requests = 0;
  const post = (list: readonly string[]): Promise<void> =>
    new Promise((resolve, reject) => {
      const body = JSON.stringify({ hashes: list });
      const req = request(url, { agent, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          reject(new Error(`${url}: HTTP ${res.statusCode}`));
          return;
        }
        res.on('data', (b: Buffer) => (bytes += b.length));
        res.on('end', () => resolve());
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
      requests += 1;
    });
  const start = performance.now();
  await Promise.all(
    Array.from({ length: options.clients }, async (_, c) => {
      const order = Array.from({ length: hashes.length }, (_, i) => hashes[(i + c * 7) % hashes.length] as string);
      let next = 0;
      await Promise.all(
        Array.from({ length: options.inFlight }, async () => {
          while (next < order.length) {
            const list = order.slice(next, next + options.batch);
            next += list.length;
            await post(list);
          }
        }),
      );
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  agent.destroy();
  return { bytes, seconds, requests };
}
