// The fault harness's network: one bridge in the host namespace and one network namespace per
// node, joined by a veth pair, on a private /24 of 10.77.0.0/16 (clients stay in the host
// namespace and reach nodes over the bridge). Partitions are links set down or blackhole routes
// (no netem, no iptables here). Every name carries this process's id and a per-run counter, so
// runs in one process or in two never collide, and teardown() removes everything it made: the
// host ends of the veth pairs explicitly, because a deleted namespace is destroyed by the kernel
// asynchronously (and not at all while anything still holds it), and its veth pairs with it.
// Needs root (ip netns).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

function ip(...args) {
  return execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}

// A process that exited but was not reaped yet (a zombie) counts as gone.
export function pidAlive(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

let runs = 0;

export class Net {
  constructor(size) {
    this.size = size;
    const run = runs++;
    // The whole pid (at most 7 digits, pid_max <= 2^22): a live process never shares it, so
    // removeStale() only ever removes names of a dead one. Interface names are at most 15
    // bytes: "cf" + 7 + 2 + "br"/"h9" stays within them.
    this.tag = `cf${process.pid}${String(run % 100).padStart(2, '0')}`;
    this.subnet = `10.77.${(process.pid + run) % 250}`;
    this.bridge = `${this.tag}br`;
    this.made = [];
  }

  ns(i) { return `${this.tag}n${i}`; }
  hostVeth(i) { return `${this.tag}h${i}`; }
  addr(i) { return `${this.subnet}.${10 + i}`; }
  addrs() { return Array.from({ length: this.size }, (_, i) => this.addr(i)); }

  setup() {
    this.removeStale();
    this.pickFreeSubnet();
    ip('link', 'add', this.bridge, 'type', 'bridge');
    this.made.push(() => ip('link', 'del', this.bridge));
    ip('addr', 'add', `${this.subnet}.1/24`, 'dev', this.bridge);
    ip('link', 'set', this.bridge, 'up');
    for (let i = 0; i < this.size; i++) {
      const ns = this.ns(i);
      const inner = `${this.tag}v${i}`;
      ip('netns', 'add', ns);
      this.made.push(() => ip('netns', 'del', ns));
      ip('link', 'add', this.hostVeth(i), 'type', 'veth', 'peer', 'name', inner);
      this.made.push(() => ip('link', 'del', this.hostVeth(i)));
      ip('link', 'set', inner, 'netns', ns);
      ip('link', 'set', this.hostVeth(i), 'master', this.bridge);
      ip('link', 'set', this.hostVeth(i), 'up');
      ip('netns', 'exec', ns, 'ip', 'addr', 'add', `${this.addr(i)}/24`, 'dev', inner);
      ip('netns', 'exec', ns, 'ip', 'link', 'set', inner, 'up');
      ip('netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up');
    }
    return this;
  }

  // Another run (another process) may hold the /24 this one's ids map to: take the next free one.
  pickFreeSubnet() {
    const used = ip('-o', '-4', 'addr', 'show');
    for (let k = 0; k < 250 && used.includes(` ${this.subnet}.`); k++) {
      this.subnet = `10.77.${(Number(this.subnet.split('.')[2]) + 1) % 250}`;
    }
  }

  // Links and namespaces left under this run's names by a process with the same id that died
  // before its teardown.
  // Also removes the names of any harness process that no longer runs (one killed with SIGKILL
  // cannot tear down): names cf<pid><run>{br,h<i>,n<i>} whose pid is gone.
  removeStale() {
    const gone = (...args) => { try { ip(...args); } catch { /* not there */ } };
    for (let i = 0; i < this.size; i++) {
      gone('link', 'del', this.hostVeth(i));
      gone('netns', 'del', this.ns(i));
    }
    gone('link', 'del', this.bridge);
    const dead = (name) => {
      const m = /^cf(\d+)\d\d(br|h\d+|n\d+)$/.exec(name ?? '');
      return m && Number(m[1]) !== process.pid && !pidAlive(Number(m[1]));
    };
    for (const l of ip('netns', 'list').split('\n')) {
      const name = l.split(' ')[0];
      if (dead(name)) gone('netns', 'del', name);
    }
    for (const l of ip('-o', 'link', 'show').split('\n')) {
      const name = l.split(':')[1]?.trim().split('@')[0];
      if (dead(name) && !/n\d+$/.test(name)) gone('link', 'del', name);
    }
  }

  // What of this run is still there after teardown(): its namespaces and host links.
  leftovers() {
    const names = new Set([
      ...ip('netns', 'list').split('\n').map((l) => l.split(' ')[0]),
      ...ip('-o', 'link', 'show').split('\n').map((l) => l.split(':')[1]?.trim().split('@')[0]),
    ]);
    const mine = [this.bridge];
    for (let i = 0; i < this.size; i++) mine.push(this.ns(i), this.hostVeth(i));
    return mine.filter((n) => names.has(n)).map((n) => `network ${n}`);
  }

  teardown() {
    for (const undo of this.made.reverse()) {
      try { undo(); } catch { /* already gone */ }
    }
    this.made = [];
  }

  // Node i loses its link: nobody (peers or clients) reaches it, it reaches nobody.
  linkDown(i) { ip('link', 'set', this.hostVeth(i), 'down'); }
  linkUp(i) { ip('link', 'set', this.hostVeth(i), 'up'); }

  // Packets from node i to node j vanish (one way; TCP to j then fails both ways).
  blackhole(i, j) {
    ip('netns', 'exec', this.ns(i), 'ip', 'route', 'add', 'blackhole', `${this.addr(j)}/32`);
  }
  unblackhole(i, j) {
    try {
      ip('netns', 'exec', this.ns(i), 'ip', 'route', 'del', 'blackhole', `${this.addr(j)}/32`);
    } catch { /* not set */ }
  }

  healAll() {
    for (let i = 0; i < this.size; i++) {
      this.linkUp(i);
      for (let j = 0; j < this.size; j++) if (i !== j) this.unblackhole(i, j);
    }
  }
}
