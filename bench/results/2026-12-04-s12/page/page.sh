#!/bin/bash
# storage-writer-bench, rows layout, new files at several SQLite page sizes, interleaved.
B=/work/wt/page/build/release/bench/storage-writer-bench
out=${1:-/tmp/s11/page.jsonl}; : > "$out"
for round in 1 2 3; do
  for commit in 1 16 48; do
    ev=$(( commit == 1 ? 8000 : 48000 ))
    for ps in 2048 4096 8192 16384; do
      d=/var/tmp/pagebench; rm -rf $d; mkdir -p $d; sync
      line=$(CHORUS_PAGE_SIZE=$ps $B --db $d --events $ev --streams 64 --batch 1 --commit $commit 2>&1 | tail -1)
      real=$(sqlite3 $d/chorus.db 'PRAGMA page_size' 2>/dev/null)
      echo "{\"round\":$round,\"commit\":$commit,\"page\":$ps,\"real\":\"$real\",\"r\":$line}" >> "$out"
    done
  done
done
rm -rf /var/tmp/pagebench
