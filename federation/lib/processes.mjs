// Child processes of the end-to-end test: started with their output captured (stdout
// lines kept for matching, everything also written to a log file), awaited by a line or
// an HTTP probe with a timeout, and always stopped — SIGTERM, then SIGKILL — when the test
// ends, fails or is interrupted.

import { spawn } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { join } from 'node:path';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A started child process. */
export class Proc {
  constructor(name, child, logPath) {
    this.name = name;
    this.child = child;
    this.logPath = logPath;
    this.lines = [];
    this.waiters = [];
    this.exited = null;
    const log = createWriteStream(logPath);
    let pending = '';
    child.stdout.on('data', (data) => {
      log.write(data);
      pending += data.toString('utf8');
      const parts = pending.split('\n');
      pending = parts.pop();
      for (const line of parts) {
        this.lines.push(line);
        for (const w of [...this.waiters]) w.check(line);
      }
    });
    child.stderr.on('data', (data) => log.write(data));
    child.on('exit', (code, signal) => {
      this.exited = { code, signal };
      for (const w of [...this.waiters]) w.fail(new Error(`${name} exited (${signal ?? `code ${code}`}) ${this.tail()}`));
    });
  }

  /** The last lines of its log, for error messages. */
  tail(n = 25) {
    let text = '';
    try {
      text = readFileSync(this.logPath, 'utf8');
    } catch {
      // not written yet
    }
    const lines = text.trimEnd().split('\n').slice(-n);
    return `\n--- last lines of ${this.logPath}:\n${lines.join('\n')}\n---`;
  }

  /** Resolves with the match of the first stdout line matching `re`. */
  waitForLine(re, timeoutMs = 60_000) {
    const seen = this.lines.map((l) => l.match(re)).find(Boolean);
    if (seen) return Promise.resolve(seen);
    if (this.exited) return Promise.reject(new Error(`${this.name} has exited ${this.tail()}`));
    return new Promise((resolve, reject) => {
      const waiter = {
        check: (line) => {
          const m = line.match(re);
          if (m) done(() => resolve(m));
        },
        fail: (e) => done(() => reject(e)),
      };
      const timer = setTimeout(
        () => waiter.fail(new Error(`${this.name}: no output line matching ${re} within ${timeoutMs / 1000} s ${this.tail()}`)),
        timeoutMs,
      );
      const done = (f) => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== waiter);
        f();
      };
      this.waiters.push(waiter);
    });
  }
}

/**
 * Every process the test started; [`Processes.stopAll`] ends them (and, as a last resort,
 * every one still running is killed when this process exits).
 */
export class Processes {
  constructor(logDir) {
    this.logDir = logDir;
    this.procs = [];
    process.on('exit', () => this.killAllSync());
  }

  /**
   * Starts `command args` as `name` (its log: `<logDir>/<name>.log`) with exactly the
   * environment `env` (default: this process's).
   */
  start(name, command, args, { env = process.env, cwd } = {}) {
    const child = spawn(command, args, {
      cwd,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const proc = new Proc(name, child, join(this.logDir, `${name}.log`));
    this.procs.push(proc);
    return proc;
  }

  /** SIGTERM to every running process, SIGKILL to those still running after `graceMs`. */
  async stopAll(graceMs = 5_000) {
    const running = this.procs.filter((p) => !p.exited);
    for (const p of running) p.child.kill('SIGTERM');
    const deadline = Date.now() + graceMs;
    while (running.some((p) => !p.exited) && Date.now() < deadline) await sleep(50);
    for (const p of running.filter((p) => !p.exited)) p.child.kill('SIGKILL');
  }

  /** SIGKILL to every running process (on exit: nothing asynchronous runs then). */
  killAllSync() {
    for (const p of this.procs) {
      if (!p.exited) {
        try {
          p.child.kill('SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  }
}

/** Polls `url` until it answers 200, or fails after `timeoutMs` naming `what`. */
export async function waitForHttp(url, { timeoutMs = 60_000, what = url, proc } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (proc?.exited) throw new Error(`${what} exited before ${url} answered ${proc.tail()}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      if (res.status === 200) return;
      last = `HTTP ${res.status}`;
    } catch (e) {
      last = e.cause?.code ?? e.message;
    }
    await sleep(200);
  }
  throw new Error(`${what}: ${url} did not answer 200 within ${timeoutMs / 1000} s (last: ${last})${proc ? proc.tail() : ''}`);
}
