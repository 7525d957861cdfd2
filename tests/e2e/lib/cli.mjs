// Runs the `chorus` command (CHORUS_CLI, which ctest sets) for the e2e tests: `runChorus` waits
// for it to exit and returns { code, stdout, stderr }; `startChorus` leaves it running and
// collects its stdout lines (tail, logs -f, long benchmarks). Every process started is killed
// by `killChorusProcesses` (call it in `after`).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { WORKER } from './harness.mjs';

export const CLI = process.env.CHORUS_CLI || path.resolve(path.dirname(WORKER), '../cli/chorus');

const children = new Set();

export function killChorusProcesses() {
  for (const c of children) { try { c.kill('SIGKILL'); } catch {} }
}

export function runChorus(args, { input, timeoutMs = 60000, env = {} } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(CLI, args, { env: { ...process.env, ...env } });
    children.add(p);
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`chorus ${args.join(' ')} hung`));
    }, timeoutMs);
    p.once('exit', (code) => {
      clearTimeout(timer);
      children.delete(p);
      resolve({ code, stdout, stderr });
    });
    if (input !== undefined) p.stdin.end(input); else p.stdin.end();
  });
}

export function startChorus(args) {
  const p = spawn(CLI, args);
  children.add(p);
  const s = { proc: p, lines: [], stderr: '' };
  let partial = '';
  p.stdout.on('data', (d) => {
    const parts = (partial + d).split('\n');
    partial = parts.pop();
    s.lines.push(...parts);
  });
  p.stderr.on('data', (d) => { s.stderr += d; });
  s.exited = new Promise((resolve) => p.once('exit', (code, signal) => {
    children.delete(p);
    resolve({ code, signal });
  }));
  return s;
}
