// Turns bench/peers.sh's JSON lines into one markdown table: per writer count, each system's
// median writes/s (p50 / p99 ms), the ratios Chorus ÷ NATS and Chorus ÷ etcd, and the median
// server CPU per acknowledged write of the three processes together, and the client's (the
// driver process's) CPU per write.
//   node table.mjs results.jsonl
import fs from 'node:fs';

const lines = fs.readFileSync(process.argv[2], 'utf8').split('\n').filter(Boolean)
  .map((l) => JSON.parse(l));
const median = (xs) => {
  const s = xs.filter((x) => x !== null && x !== undefined).sort((a, b) => a - b);
  if (!s.length) return null;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (x, digits = 0) => (x === null ? '–' : x.toLocaleString('en-US',
  { maximumFractionDigits: digits, minimumFractionDigits: digits }));
const systems = [...new Set(lines.map((l) => l.system))];
const writers = [...new Set(lines.map((l) => l.writers))].sort((a, b) => a - b);
const cell = (system, c) => {
  const rows = lines.filter((l) => l.system === system && l.writers === c);
  return { rate: median(rows.map((r) => r.rate)), p50: median(rows.map((r) => r.p50)),
    p99: median(rows.map((r) => r.p99)), cpu: median(rows.map((r) => r.cpuUsPerWrite)),
    clientCpu: median(rows.map((r) => r.clientCpuUsPerWrite)),
    errors: rows.reduce((n, r) => n + r.errors, 0), runs: rows.length };
};
const others = systems.filter((s) => s !== 'chorus');
const header = ['writers C', ...systems.map((s) => `${s} writes/s (p50 / p99 ms)`),
  ...(systems.includes('chorus') ? others.map((s) => `chorus ÷ ${s}`) : []),
  ...systems.map((s) => `${s} CPU µs/write (server / client)`)];
console.log(`| ${header.join(' | ')} |`);
console.log(`|${header.map(() => '---').join('|')}|`);
for (const c of writers) {
  const cells = Object.fromEntries(systems.map((s) => [s, cell(s, c)]));
  const row = [String(c),
    ...systems.map((s) => `${fmt(cells[s].rate)} (${fmt(cells[s].p50, 2)} / ${fmt(cells[s].p99, 2)})`),
    ...(systems.includes('chorus') ? others.map((s) => (cells.chorus.rate && cells[s].rate
      ? fmt(cells.chorus.rate / cells[s].rate, 2) : '–')) : []),
    ...systems.map((s) => `${fmt(cells[s].cpu)} / ${fmt(cells[s].clientCpu)}`)];
  console.log(`| ${row.join(' | ')} |`);
}
const errors = lines.reduce((n, l) => n + l.errors, 0);
console.log(`\nMedians of ${Math.max(...lines.map((l) => l.run))} runs per cell, interleaved; ` +
  `${errors} errors in all${errors ? ` (first: ${lines.find((l) => l.errors).firstError})` : ''}.`);
