// Goal: prove that the Machines view lists this manager and each peer, counts running nodes and
// leaders per machine, shows an unreachable peer with its reason, and refuses a malformed answer.
import { describe, expect, it } from 'vitest';
import { parseMachines } from '../src/machines';

const node = (name: string, state: string, role: string | null) => ({ name, state, role });

describe('parseMachines', () => {
  it('summarises each machine', () => {
    const list = parseMachines({ machines: [
      { address: '127.0.0.1:30777', self: true, reachable: true,
        manager: { name: 'a' }, nodes: [node('n1', 'Running', 'Leader'),
          node('n2', 'Failed', null)] },
      { address: '127.0.0.2:30777', self: false, reachable: false, error: 'no answer' },
    ] });
    expect(list).toHaveLength(2);
    expect(list[0]).toMatchObject({ name: 'a', self: true, running: 1, leaders: ['n1'],
      error: null });
    expect(list[1]).toMatchObject({ name: '127.0.0.2:30777', reachable: false,
      error: 'no answer', nodes: [] });
  });
  it('refuses an answer without a machines list', () => {
    expect(() => parseMachines({ nodes: [] })).toThrow(/machines/);
    expect(() => parseMachines(null)).toThrow(/machines/);
  });
});
