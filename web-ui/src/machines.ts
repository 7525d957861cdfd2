// The Machines view's logic: the /api/machines answer (this manager, then each peer manager it
// reached) checked and summarised per machine. Pure functions over plain data.
import type { MachineInfo, NodeInfo } from './api';

export interface MachineSummary {
  address: string;
  name: string;
  self: boolean;
  reachable: boolean;
  error: string | null;
  nodes: NodeInfo[];
  running: number;
  leaders: string[];  // names of this machine's nodes that lead their cluster
}

// Accepts the answer and returns one summary per machine; a malformed answer throws, so the page
// shows why instead of an empty table.
export function parseMachines(answer: unknown): MachineSummary[] {
  const list = (answer as { machines?: unknown })?.machines;
  if (!Array.isArray(list)) throw new Error('machines answer has no "machines" list');
  return (list as MachineInfo[]).map((m) => {
    const nodes = m.reachable && Array.isArray(m.nodes) ? m.nodes : [];
    return {
      address: String(m.address ?? ''),
      name: m.manager?.name || String(m.address ?? ''),
      self: m.self === true,
      reachable: m.reachable === true,
      error: m.reachable ? null : (m.error ?? 'not reachable'),
      nodes,
      running: nodes.filter((n) => n.state === 'Running').length,
      leaders: nodes.filter((n) => n.role === 'Leader').map((n) => n.name),
    };
  });
}
