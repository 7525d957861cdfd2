// stats_micro.cpp DB_FOLDER: the old and new /stats process facts and the old folder listing, µs
// per call in a loop (g++ -O2 -std=c++20 stats_micro.cpp -o m && ./m /tmp/s10/idle/run/data/c0n0).
// Old vs new /stats process facts + db size, per call (µs), on this VM.
#include <fcntl.h>
#include <unistd.h>
#include <array>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>
struct F {
  double cpu = 0;
  long rss = 0, th = 0;
};
F old_facts() {
  F f;
  std::ifstream file("/proc/self/stat");
  std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  size_t close = text.rfind(')');
  std::istringstream rest(text.substr(close + 2));
  std::vector<std::string> fields;
  for (std::string x; rest >> x;) fields.push_back(x);
  auto field = [&](size_t n) { return std::stod(fields.at(n - 3)); };
  double t = sysconf(_SC_CLK_TCK);
  f.cpu = (field(14) + field(15)) / t;
  f.th = field(20);
  f.rss = field(24) * sysconf(_SC_PAGESIZE);
  return f;
}
long old_db(const char* dir) {
  std::error_code ec;
  long total = 0;
  for (auto& e : std::filesystem::directory_iterator(dir, ec))
    if (e.is_regular_file(ec)) total += e.file_size(ec);
  return total;
}
F new_facts() {
  std::array<char, 2048> b{};
  int fd = ::open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  ssize_t n = ::read(fd, b.data(), b.size());
  ::close(fd);
  std::string_view line(b.data(), n);
  size_t close = line.rfind(')');
  std::array<long, 25> field{};
  size_t at = close + 2;
  for (size_t k = 3; k < 25; ++k) {
    size_t end = std::min(line.find_first_of(" \n", at), line.size());
    if (k >= 4) std::from_chars(line.data() + at, line.data() + end, field[k]);
    at = end + 1;
  }
  F f;
  f.cpu = double(field[14] + field[15]) / sysconf(_SC_CLK_TCK);
  f.th = field[20];
  f.rss = field[24] * sysconf(_SC_PAGESIZE);
  return f;
}
template <class Fn>
double us(Fn fn, int n) {
  auto t = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) fn();
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t).count() /
         n;
}
int main(int, char** argv) {
  long sink = 0;
  const int n = 3000;
  for (int r = 0; r < 3; ++r) {
    printf("old facts %.1f us  old db listing %.1f us  new facts %.1f us\n",
           us([&] { sink += old_facts().th; }, n), us([&] { sink += old_db(argv[1]); }, n),
           us([&] { sink += new_facts().th; }, n));
  }
  std::fprintf(stderr, "%ld\n", sink);  // keeps the calls
}
