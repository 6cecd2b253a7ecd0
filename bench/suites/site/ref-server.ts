import Fastify from 'fastify';

/**
 * The reference for the admin API read figure: bare Fastify on loopback
 * answering the same route with the same JSON, with no token check, no
 * database and no schema. Run as its own process: `node ref-server.js <json>`;
 * prints its URL, stops on SIGTERM.
 */
const body = process.argv[2] ?? '{}';
const app = Fastify({ logger: false });
app.get('/api/v1/packages/:id/status', async (_request, reply) => reply.type('application/json').send(body));
await app.listen({ host: '127.0.0.1', port: 0 });
const address = app.server.address();
const port = typeof address === 'object' && address !== null ? address.port : 0;
process.stdout.write(`listening at http://127.0.0.1:${port}\n`);
process.once('SIGTERM', () => {
  void app.close().then(() => process.exit(0));
});
