import { type ChildProcess, spawn } from 'node:child_process';
import { access, mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';

const CANDIDATES = ['/usr/sbin/nginx', '/usr/bin/nginx', '/usr/local/sbin/nginx'];

export async function findNginx(): Promise<string | undefined> {
  for (const path of CANDIDATES) {
    try {
      await access(path);
      return path;
    } catch {
      continue;
    }
  }
  return undefined;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

/**
 * Debian's nginx on loopback with a temporary configuration serving
 * `chunksDir` at `/chunks/<xx>/<sha256>` (the same files the DP serves),
 * two workers like our two cores; stopped with SIGQUIT.
 */
export async function startNginx(binary: string, dir: string, chunksDir: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const port = await freePort();
  await mkdir(join(dir, 'logs'), { recursive: true });
  const conf = join(dir, 'nginx.conf');
  await writeFile(
    conf,
    `worker_processes 2;
daemon off;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'logs', 'error.log')};
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  client_body_temp_path ${join(dir, 'body')};
  proxy_temp_path ${join(dir, 'proxy')};
  fastcgi_temp_path ${join(dir, 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'uwsgi')};
  scgi_temp_path ${join(dir, 'scgi')};
  server {
    listen 127.0.0.1:${port};
    location /chunks/ { alias ${chunksDir}/; default_type application/zstd; }
  }
}
`,
  );
  const child: ChildProcess = spawn(binary, ['-c', conf, '-p', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  const gone = new Promise<void>((r) => child.once('exit', () => r()));
  let err = '';
  child.stderr?.on('data', (b: Buffer) => (err += b.toString()));
  const url = `http://127.0.0.1:${port}`;
  const until = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited ${child.exitCode}: ${err.trim().slice(-300)}`);
    try {
      await fetch(`${url}/`);
      break;
    } catch {
      if (Date.now() > until) throw new Error('nginx did not listen within 10 s');
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    url,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGQUIT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(timer);
    },
  };
}
