// The machine page's scavenge and disk-use texts: one line per scavenge (running with its
// progress, or its result with the space saved) and the data volumes' free space. Pure
// functions over the manager's answers.
import type { ClusterScavengeAnswer, ClusterScavengeStep, NodeInfo, NodeScavengeAnswer,
  NodeSpace } from './api';
import { formatBytes, formatCount, formatDuration } from './format';

export function scavengeFinished(state: string): boolean {
  return state !== 'InProgress' && state !== 'Running' && state !== 'Waiting';
}

function resultText(result: string, saved: number, removed: number, time_ms: number,
                    error: string): string {
  const figures = `${formatBytes(saved)} saved, ${formatCount(removed)} events removed` +
    ` in ${formatDuration(time_ms / 1000)}`;
  if (result === 'Success') return `done: ${figures}`;
  return `${result}${error ? ` (${error})` : ''}: ${figures}`;
}

// "n1: scavenging, 42 %" or "n1: done: 1.2 MiB saved, 1,000 events removed in 3s".
export function describeNodeScavenge(answer: NodeScavengeAnswer): string {
  const s = answer.scavenge;
  if (!s) return `${answer.node}: ${answer.error ?? 'no scavenge'}`;
  if (s.scavengeResult === 'InProgress') {
    return `${answer.node}: scavenging, ${s.progressPercent} %`;
  }
  return `${answer.node}: ${resultText(s.scavengeResult, s.spaceSavedBytes, s.eventsRemoved,
    s.timeTakenMs, s.error)}`;
}

export function describeStep(step: ClusterScavengeStep): string {
  switch (step.state) {
    case 'Waiting': return 'waiting';
    case 'Running': return `scavenging, ${step.progressPercent} %`;
    case 'Skipped': return `skipped${step.error ? ` (${step.error})` : ''}`;
    default:
      return resultText(step.state, step.spaceSavedBytes, step.eventsRemoved, step.timeTakenMs,
        step.error);
  }
}

// "Scavenge of default: running (1 of 3 done)" or "... Success: 3.4 MiB saved".
export function describeClusterScavenge(answer: ClusterScavengeAnswer): string {
  const head = `Scavenge of ${answer.cluster}`;
  if (answer.state === 'None') return `${head}: none started`;
  if (answer.state === 'Running') {
    const done = answer.nodes.filter((n) => scavengeFinished(n.state)).length;
    return `${head}: running (${done} of ${answer.nodes.length} nodes done)`;
  }
  const saved = formatBytes(answer.spaceSavedBytes ?? 0);
  return `${head}: ${answer.state === 'Success' ? 'done' : answer.state}, ${saved} saved, ` +
    `${formatCount(answer.eventsRemoved ?? 0)} events removed`;
}

export interface VolumeSummary {
  free_bytes: number;
  total_bytes: number;
  low: boolean;  // a node refuses writes for lack of space
}

// The data volume's free space as the nodes see it: the smallest free figure of the running
// nodes (nodes of one machine usually share the volume; with several, the fullest counts).
export function volumeSummary(nodes: NodeInfo[]): VolumeSummary | null {
  let found: VolumeSummary | null = null;
  for (const n of nodes) {
    const s: NodeSpace | null | undefined = n.space;
    if (!s || s.diskTotalBytes <= 0) continue;
    if (!found || s.diskFreeBytes < found.free_bytes) {
      found = { free_bytes: s.diskFreeBytes, total_bytes: s.diskTotalBytes, low: false };
    }
  }
  if (found) found.low = nodes.some((n) => n.space?.writesRefusedLowDisk === true);
  return found;
}
