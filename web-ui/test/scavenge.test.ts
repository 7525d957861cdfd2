// Goal: prove the machine page's scavenge lines say whether a scavenge runs (with its progress)
// or how it ended (with the space saved), for one node and for a cluster step by step, and that
// the data volume's free space is the fullest running node's, flagged when writes are refused.
import { describe, expect, it } from 'vitest';
import type { NodeInfo } from '../src/api';
import { describeClusterScavenge, describeNodeScavenge, describeStep, scavengeFinished,
  volumeSummary } from '../src/scavenge';

const state = (result: string, extra = {}) => ({
  scavengeId: 'id', scavengeResult: result, error: '', progressPercent: 42,
  spaceSavedBytes: 2048, eventsExamined: 10, eventsRemoved: 1000, timeTakenMs: 3000, ...extra,
});

const step = (node: string, s: string, extra = {}) => ({
  node, state: s, scavengeId: null, error: '', progressPercent: 10, eventsExamined: 0,
  eventsRemoved: 5, spaceSavedBytes: 1024, timeTakenMs: 1000, ...extra,
});

describe('scavenge texts', () => {
  it('describes a node scavenge running and finished', () => {
    expect(describeNodeScavenge({ node: 'n1', scavenge: state('InProgress') }))
      .toBe('n1: scavenging, 42 %');
    expect(describeNodeScavenge({ node: 'n1', scavenge: state('Success') }))
      .toBe('n1: done: 2.0 KiB saved, 1,000 events removed in 3s');
    expect(describeNodeScavenge({ node: 'n1', scavenge: state('Failed', { error: 'disk' }) }))
      .toMatch(/^n1: Failed \(disk\): /);
    expect(describeNodeScavenge({ node: 'n1', scavenge: null, error: 'n1 is not running' }))
      .toBe('n1: n1 is not running');
  });
  it('describes each step and the cluster scavenge', () => {
    expect(describeStep(step('n1', 'Waiting'))).toBe('waiting');
    expect(describeStep(step('n1', 'Running'))).toBe('scavenging, 10 %');
    expect(describeStep(step('n1', 'Skipped', { error: 'n1 is not running' })))
      .toBe('skipped (n1 is not running)');
    expect(describeStep(step('n1', 'Success'))).toMatch(/^done: 1\.0 KiB saved/);
    const running = { cluster: 'c', state: 'Running',
      nodes: [step('n2', 'Success'), step('n3', 'Running'), step('n1', 'Waiting')] };
    expect(describeClusterScavenge(running)).toBe('Scavenge of c: running (1 of 3 nodes done)');
    expect(describeClusterScavenge({ ...running, state: 'Success', spaceSavedBytes: 3 * 1048576,
      eventsRemoved: 15 })).toBe('Scavenge of c: done, 3.0 MiB saved, 15 events removed');
    expect(describeClusterScavenge({ cluster: 'c', state: 'None', nodes: [] }))
      .toBe('Scavenge of c: none started');
  });
  it('knows when a scavenge has ended', () => {
    expect(scavengeFinished('InProgress')).toBe(false);
    expect(scavengeFinished('Running')).toBe(false);
    expect(scavengeFinished('Waiting')).toBe(false);
    for (const s of ['Success', 'Failed', 'Stopped', 'Skipped']) expect(scavengeFinished(s)).toBe(true);
  });
});

describe('volumeSummary', () => {
  const node = (name: string, free: number | null, refused = false) => ({
    name, space: free === null ? null : { databaseBytes: 1, walBytes: 0, logBytes: 0,
      indexBytes: 0, otherBytes: 0, reclaimableBytes: 0, breakdownAt: null,
      diskFreeBytes: free, diskTotalBytes: 1000, minFreeDiskBytes: 0,
      writesRefusedLowDisk: refused },
  }) as unknown as NodeInfo;
  it('takes the smallest free space of the nodes that report one', () => {
    expect(volumeSummary([node('n1', 500), node('n2', null), node('n3', 300)]))
      .toEqual({ free_bytes: 300, total_bytes: 1000, low: false });
  });
  it('flags a node refusing writes and is null without figures', () => {
    expect(volumeSummary([node('n1', 500, true)])?.low).toBe(true);
    expect(volumeSummary([node('n1', null)])).toBeNull();
  });
});
