import sys, statistics as st
# per transaction: entries queued at wake, wait since previous E, commit duration; and gap from txn end to next submit
for f in sys.argv[1:]:
    L=[l.split() for l in open(f)]
    ev=[(k,int(t),int(a),int(b)) for k,t,a,b in L]
    t0=ev[0][1]
    ev=[e for e in ev if e[1]-t0>1_500_000]  # skip warm-up
    last_E=None; waits=[]; idle=[]; durs=[]; wakeq=[]; sizes=[]; b_t=None
    sub_during=[]  # submits arriving while in commit
    last_sub=None; gaps=[]
    for k,t,a,b in ev:
        if k=='S':
            if last_sub is not None: gaps.append(t-last_sub)
            last_sub=t
        if k=='W':
            wakeq.append(a)
            if last_E is not None: idle.append(t-last_E)
        if k=='B': b_t=t
        if k=='E':
            if b_t: durs.append(t-b_t)
            sizes.append(a); last_E=t
    q=lambda x,p: sorted(x)[int(len(x)*p)] if x else 0
    print(f, "txns",len(sizes),"mean size %.1f"%st.mean(sizes), "single %.0f%%"%(100*sum(1 for s in sizes if s==1)/len(sizes)))
    print("  queued at wake p10/50/90", q(wakeq,.1),q(wakeq,.5),q(wakeq,.9), " idle(E->W) us p50/90", q(idle,.5), q(idle,.9), "share idle>50us %.0f%%"%(100*sum(1 for x in idle if x>50)/max(1,len(idle))))
    print("  txn dur us p10/50/90", q(durs,.1),q(durs,.5),q(durs,.9), " inter-submit gap us p50/90/99", q(gaps,.5),q(gaps,.9),q(gaps,.99))
