// Fuzz target: EventStore TCP framing fed in arbitrary chunks, then package parsing.
// Properties: the incremental FrameParser yields the same frames however the bytes are split;
// it never buffers more than one frame; every parsed package encodes back to the same bytes.
#include "common/framing.hpp"
#include "tests/fuzz/fuzz_check.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace {

using chorus::wire::FrameParser;

// A small cap so that the fuzzer reaches the "too long" path with short inputs.
constexpr uint32_t kFuzzFrameBytesMax = 4096;

struct Split {
  std::vector<std::string> frames;
  bool invalid = false;
};

Split run(std::string_view bytes, const std::vector<size_t>& chunk_sizes) {
  FrameParser parser(kFuzzFrameBytesMax);
  Split out;
  size_t offset = 0;
  size_t chunk = 0;
  while (offset < bytes.size()) {
    const size_t want =
        chunk_sizes.empty() ? bytes.size() : chunk_sizes[chunk++ % chunk_sizes.size()];
    const size_t n = std::min(bytes.size() - offset, want == 0 ? size_t{1} : want);
    parser.feed(bytes.substr(offset, n));
    offset += n;
    while (auto frame = parser.next_frame()) out.frames.push_back(std::move(*frame));
    if (parser.invalid()) {
      out.invalid = true;
      break;
    }
    // Whatever is left is part of one frame: memory stays bounded by the frame cap.
    FUZZ_CHECK(parser.buffered_bytes() < kFuzzFrameBytesMax + 4, "buffer beyond one frame");
  }
  return out;
}

void check_package(const std::string& frame) {
  const auto parsed = chorus::wire::parse_package(frame);
  FUZZ_CHECK(parsed.package.has_value() != !parsed.error.empty(), "package xor error");
  if (!parsed.package) return;
  const std::string encoded = chorus::wire::encode_package(*parsed.package);
  FUZZ_CHECK(encoded.size() == frame.size() + 4, "re-encoded size");
  FUZZ_CHECK(std::string_view(encoded).substr(4) == frame, "re-encoded bytes");
  (void)chorus::wire::command_name(parsed.package->command);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The first bytes choose chunk sizes (1..16); the rest is the byte stream.
  const size_t header = std::min<size_t>(size, 4);
  std::vector<size_t> chunk_sizes;
  for (size_t i = 0; i < header; ++i) chunk_sizes.push_back(size_t{1} + (data[i] & 0x0F));
  const std::string_view bytes(reinterpret_cast<const char*>(data) + header, size - header);

  const Split whole = run(bytes, {});
  const Split chunked = run(bytes, chunk_sizes);
  FUZZ_CHECK(whole.frames == chunked.frames, "frames depend on how the bytes are split");
  FUZZ_CHECK(whole.invalid == chunked.invalid, "validity depends on how the bytes are split");
  for (const auto& frame : whole.frames) check_package(frame);
  return 0;
}
