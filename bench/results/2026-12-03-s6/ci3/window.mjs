// How long after waitForLeader() is admin's login refused on the leader (the user bootstrap's
// write not yet committed)? One 3-node --mem-db cluster per round.
import { Cluster } from '/work/wt/index/tests/e2e/lib/cluster.mjs';
const ADMIN = 'Basic ' + Buffer.from('admin:changeit').toString('base64');
for (let round = 0; round < Number(process.argv[2] || 5); round++) {
  const c = new Cluster({ memDb: true });
  try {
    await c.start();
    const { leader } = await c.waitForLeader({ timeoutMs: 15000 });
    const t0 = Date.now(); const seen = [];
    for (;;) {
      const r = await fetch(`http://${leader.host}:${leader.httpPort}/users/$current`, { headers: { Authorization: ADMIN } });
      seen.push(r.status);
      if (r.status === 200) break;
      await new Promise((res) => setTimeout(res, 20));
    }
    console.log(`round ${round}: first ${seen[0]}, refused ${seen.filter((s) => s !== 200).length} times, accepted after ${Date.now() - t0} ms`);
  } finally { await c.cleanup(); }
}
