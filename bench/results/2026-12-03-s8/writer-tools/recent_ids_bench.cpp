// RecentIds micro-benchmark (writer.md, section 5): 1.5 M events as the leader does them (find,
// then add), then 1.5 M finds of missing ids. Built against two copies of recent_ids.cpp:
//   g++ -std=c++20 -O2 -I<copy> -I<repo> recent_ids_bench.cpp <copy>/worker/engine/recent_ids.cpp
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include "worker/engine/recent_ids.hpp"
using namespace chorus;
int main() {
  RecentIds ids;  // 16 MiB default
  std::mt19937_64 rng(42);
  auto g = [&] {
    Guid x;
    uint64_t a = rng(), b = rng();
    memcpy(x.data, &a, 8);
    memcpy(x.data + 8, &b, 8);
    return x;
  };
  int64_t pos = 0;
  const std::string streams[4] = {"bench-1234abcd-1", "bench-1234abcd-2", "bench-1234abcd-3",
                                  "bench-1234abcd-4"};
  // the leader's pattern: find (miss) then add, 1.5 M events (the ring fills and wraps)
  size_t hits = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 1500000; ++i) {
    Guid id = g();
    if (ids.find(id, streams[i & 3])) ++hits;
    ids.add(id, streams[i & 3], i, pos, pos + 400);
    pos += 400;
  }
  auto t1 = std::chrono::steady_clock::now();
  // finds alone (misses)
  for (int i = 0; i < 1500000; ++i)
    if (ids.find(g(), streams[i & 3])) ++hits;
  auto t2 = std::chrono::steady_clock::now();
  printf("find+add %.1f ns/event, find-miss %.1f ns, size %zu hits %zu\n",
         std::chrono::duration<double, std::nano>(t1 - t0).count() / 1500000,
         std::chrono::duration<double, std::nano>(t2 - t1).count() / 1500000, ids.size(), hits);
}
