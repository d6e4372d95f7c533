// The real `znovel serve` for the browser tests: its own data directory (SQLite) and free
// ports, the admin key it bootstraps, a GraphQL client for setting up and checking what
// the pages did, and a TCP proxy that can drop every connection (a network that fails).

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** The binary under test: $ZNOVEL_BIN, else the debug build in $CARGO_TARGET_DIR or target/. */
export function binaryPath() {
  if (process.env.ZNOVEL_BIN) return process.env.ZNOVEL_BIN;
  const target = process.env.CARGO_TARGET_DIR ?? join(repo, 'target');
  return join(target, 'debug', 'znovel');
}

/** The embedded model fetched by scripts/fetch-models.sh. */
export const LOCAL_MODEL = join(repo, 'data/models/SmolLM2-135M-Instruct.Q4_1.gguf');

/**
 * Starts `znovel serve` with `env` added (e.g. `LLM_BASE_URL`); resolves once it is ready
 * with `{ url, key, gql, stop, log }`.
 */
export async function startServer(env = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'znovel-web-'));
  const child = spawn(binaryPath(), ['serve'], {
    env: {
      ...process.env,
      ZNOVEL_DATA_DIR: dataDir,
      ZNOVEL_LISTEN: '127.0.0.1:0',
      ZNOVEL_METRICS_LISTEN: '127.0.0.1:0',
      ZNOVEL_LOG_FORMAT: 'json',
      RUST_LOG: 'warn',
      DATABASE_URL: '',
      REDIS_URL: '',
      // The fake provider streams prose to every request; the continuity reviewer (which
      // expects JSON) is exercised by the API tests and the federated e2e instead.
      VALIDATION_REVIEWER: 'off',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stderr.on('data', (d) => (log += d));
  const url = await new Promise((resolveUrl, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`znovel did not start within 60 s:\n${out}\n${log}`)), 60_000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/GraphQL at (http:\/\/[\d.:]+)\/graphql/);
      if (m) {
        clearTimeout(timer);
        resolveUrl(m[1]);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`znovel exited (${code}) before it was ready:\n${out}\n${log}`));
    });
  });
  const key = readFileSync(join(dataDir, 'admin.key'), 'utf8').trim();

  /** Runs a GraphQL operation as `as` (default: the admin); throws on any error. */
  async function gql(query, variables = {}, as = key) {
    const res = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${as}` },
      body: JSON.stringify({ query, variables }),
    });
    const body = await res.json();
    if (body.errors) throw new Error(`GraphQL error: ${JSON.stringify(body.errors)}`);
    return body.data;
  }

  return {
    url,
    key,
    gql,
    get log() {
      return log;
    },
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => {
          const t = setTimeout(() => {
            child.kill('SIGKILL');
            r();
          }, 10_000);
          child.on('exit', () => {
            clearTimeout(t);
            r();
          });
        });
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * A TCP proxy on 127.0.0.1 in front of `target` ("http://127.0.0.1:port"): `url` is its
 * address; `dropAll()` destroys every open connection at once, as a failing network would.
 */
export async function startProxy(target) {
  const { hostname, port } = new URL(target);
  const open = new Set();
  const server = createServer((client) => {
    const upstream = connect(Number(port), hostname);
    const pair = { client, upstream };
    open.add(pair);
    const close = () => {
      open.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    /** Destroys every connection; returns how many there were. */
    dropAll() {
      const n = open.size;
      for (const { client, upstream } of [...open]) {
        client.destroy();
        upstream.destroy();
      }
      open.clear();
      return n;
    },
    close: () =>
      new Promise((r) => {
        for (const { client, upstream } of open) {
          client.destroy();
          upstream.destroy();
        }
        server.close(() => r());
      }),
  };
}
