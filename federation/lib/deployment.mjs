// The deployments the end-to-end test and the benchmark run on this machine: the
// federated one — one `znovel serve --role <subgraph>` process per subgraph the binary
// knows, and a job-worker, sharing a fresh PostgreSQL database and Redis under a key
// prefix of their own — and an all-in-one `znovel serve` (SQLite, in-process queue) next
// to it. Both get the same LLM provider and JWT secret. `cleanup` stops every process and
// removes the database and the Redis keys, pass or fail.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { listSubgraphs } from './compose.mjs';
import { waitForHttp } from './processes.mjs';

/** Roles that serve no GraphQL API yet, candidates for the probe-only check. */
const NON_GRAPHQL_ROLES = [];

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** `url` with its database replaced by `db`. */
function withDatabase(url, db) {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

/**
 * This process's environment without any variable the binary reads (a developer's
 * DATABASE_URL or ZNOVEL_* settings must not leak into the deployment under test).
 */
export const cleanEnv = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !/^(ZNOVEL_|DATABASE_URL|REDIS_URL|QDRANT_URL|LLM_|JWT_)/.test(k)),
);

/** Settings every znovel process gets (on top of [`cleanEnv`]). */
const baseEnv = { RUST_LOG: 'info', ZNOVEL_LOG_FORMAT: 'json' };

export class Deployment {
  /**
   * `bin`: the znovel binary; `work`: a scratch directory (logs, SQLite); `procs`: the
   * [`Processes`] that own the children; `pgAdmin`/`redisUrl`: the shared services.
   */
  constructor({ bin, work, procs, pgAdmin, redisUrl }) {
    Object.assign(this, { bin, work, procs, pgAdmin, redisUrl });
    const runId = randomBytes(4).toString('hex');
    this.runId = runId;
    this.dbName = `znovel_e2e_${runId}`;
    this.redisPrefix = `znovel-e2e-${runId}`;
    this.jwtSecret = randomBytes(24).toString('hex');
    this.subgraphs = listSubgraphs(bin);
    this.shared = { DATABASE_URL: withDatabase(pgAdmin, this.dbName), REDIS_URL: redisUrl, ZNOVEL_REDIS_PREFIX: this.redisPrefix };
    this.allInOneDir = join(work, 'all-in-one');
    this.databaseCreated = false;
  }

  psql(sql) {
    execFileSync('psql', [this.pgAdmin, '-v', 'ON_ERROR_STOP=1', '-q', '-c', sql], { stdio: ['ignore', 'ignore', 'pipe'] });
  }

  /** Runs a `znovel` subcommand to completion; returns its stdout. */
  znovel(args, env) {
    try {
      return execFileSync(this.bin, args, { encoding: 'utf8', env: { ...cleanEnv, ...baseEnv, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      throw new Error(`znovel ${args.join(' ')} failed: ${e.stderr || e.message}`);
    }
  }

  /** Creates a tenant (slug `slug`) in the federated deployment, or in the all-in-one server's; returns its admin key. */
  createTenant(slug, { federated }) {
    const env = federated ? this.shared : { ZNOVEL_DATA_DIR: this.allInOneDir };
    const out = this.znovel(['tenant', 'create', '--name', 'E2E Books', '--slug', slug, '--admin-email', 'admin@e2e.example'], env);
    const key = out.split('\n').find((l) => l.startsWith('znk_'));
    assert.ok(key, `tenant create printed no key:\n${out}`);
    return key.trim();
  }

  /** Starts `znovel serve` with `args`; resolves with its URLs once it says it is ready. */
  async serve(name, args, env) {
    const proc = this.procs.start(name, this.bin, ['serve', ...args, '--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0'], {
      env: { ...cleanEnv, ...baseEnv, ZNOVEL_DATA_DIR: join(this.work, name), JWT_SECRET: this.jwtSecret, ...env },
    });
    const m = await proc.waitForLine(/ready: .*?http:\/\/([\d.:]+)\/\S+ .*?metrics at (http:\/\/[\d.:]+\/metrics)/);
    const base = `http://${m[1]}`;
    await waitForHttp(`${base}/health`, { what: name, proc });
    return { name, proc, base, graphql: `${base}/graphql`, metrics: m[2] };
  }

  /**
   * Creates and migrates the database, then starts every subgraph, the job-worker and the
   * all-in-one server, all using the provider at `llmEnv` where they run jobs. Sets
   * `this.roles` (subgraph name → process), `this.worker`, `this.allInOne`.
   */
  async start(llmEnv) {
    this.psql(`CREATE DATABASE "${this.dbName}"`);
    this.databaseCreated = true;
    this.znovel(['migrate'], this.shared);
    const [worker, allInOne, ...roles] = await Promise.all([
      this.serve('job-worker', ['--role', 'job-worker'], { ...this.shared, ...llmEnv }),
      this.serve('all-in-one', [], { ...llmEnv, ZNOVEL_DATA_DIR: this.allInOneDir }),
      ...this.subgraphs.map((name) => this.serve(name, ['--role', name], this.shared)),
    ]);
    this.worker = worker;
    this.allInOne = allInOne;
    this.roles = Object.fromEntries(roles.map((r) => [r.name, r]));
  }

  /** Every role process answers /ready and /metrics; a role without GraphQL serves no /graphql. */
  async checkProbes() {
    for (const p of [...Object.values(this.roles), this.worker]) {
      await waitForHttp(`${p.base}/ready`, { what: `${p.name} /ready`, proc: p.proc });
      await waitForHttp(p.metrics, { what: `${p.name} /metrics`, proc: p.proc });
    }
    const probeOnlyRole = NON_GRAPHQL_ROLES.find((r) => !this.subgraphs.includes(r));
    if (probeOnlyRole) {
      const probeOnly = await this.serve(probeOnlyRole, ['--role', probeOnlyRole], this.shared);
      const res = await fetch(probeOnly.graphql, { method: 'POST' });
      assert.equal(res.status, 404, `a role without a GraphQL API (${probeOnlyRole}) serves no /graphql`);
    }
  }

  /** Drops the database and deletes this run's Redis keys (and only those). */
  cleanup() {
    if (this.databaseCreated) {
      try {
        this.psql(`DROP DATABASE IF EXISTS "${this.dbName}" WITH (FORCE)`);
      } catch (e) {
        console.error(`cannot drop the database ${this.dbName}: ${e.stderr || e.message}`);
      }
    }
    try {
      const keys = execFileSync('redis-cli', ['-u', this.redisUrl, '--scan', '--pattern', `${this.redisPrefix}:*`], { encoding: 'utf8' })
        .split('\n')
        .filter(Boolean);
      for (let i = 0; i < keys.length; i += 100) {
        execFileSync('redis-cli', ['-u', this.redisUrl, 'DEL', ...keys.slice(i, i + 100)], { stdio: 'ignore' });
      }
    } catch (e) {
      console.error(`cannot remove the Redis keys ${this.redisPrefix}:*: ${e.message}`);
    }
  }
}
