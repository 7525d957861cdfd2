// Guid conversions between RFC order, .NET wire order and text.
#include "common/guid.hpp"

#include <boost/uuid/random_generator.hpp>
#include <boost/uuid/string_generator.hpp>
#include <boost/uuid/uuid_io.hpp>

#include <algorithm>
#include <cctype>

namespace chorus {
namespace {

// .NET stores Data1 (4 bytes), Data2 (2) and Data3 (2) little-endian; the last 8 bytes as written.
// Swapping is its own inverse, so one function converts both ways.
void swap_dotnet_order(std::array<uint8_t, 16>& b) {
  std::swap(b[0], b[3]);
  std::swap(b[1], b[2]);
  std::swap(b[4], b[5]);
  std::swap(b[6], b[7]);
}

}  // namespace

Guid nil_guid() { return Guid{}; }

Guid random_guid() {
  thread_local boost::uuids::random_generator generator;
  return generator();
}

std::string to_dotnet_bytes(const Guid& g) {
  std::array<uint8_t, 16> b{};
  std::copy(g.begin(), g.end(), b.begin());
  swap_dotnet_order(b);
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

std::optional<Guid> from_dotnet_bytes(std::string_view bytes) {
  if (bytes.size() != 16) return std::nullopt;
  std::array<uint8_t, 16> b{};
  std::copy(bytes.begin(), bytes.end(), b.begin());
  swap_dotnet_order(b);
  Guid g{};
  std::copy(b.begin(), b.end(), g.begin());
  return g;
}

std::string to_string(const Guid& g) { return boost::uuids::to_string(g); }

std::optional<Guid> parse_guid(std::string_view text) {
  // Accept only the canonical 36-character form (optionally braced), as EventStore does.
  if (text.size() == 38 && text.front() == '{' && text.back() == '}') {
    text = text.substr(1, 36);
  }
  if (text.size() != 36) return std::nullopt;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const bool dash_slot = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash_slot ? c != '-' : !std::isxdigit(static_cast<unsigned char>(c))) return std::nullopt;
  }
  try {
    return boost::uuids::string_generator()(std::string(text));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::string to_raw_bytes(const Guid& g) {
  return std::string(reinterpret_cast<const char*>(g.data), 16);
}

std::optional<Guid> from_raw_bytes(std::string_view bytes) {
  if (bytes.size() != 16) return std::nullopt;
  Guid g{};
  std::copy(bytes.begin(), bytes.end(), g.begin());
  return g;
}

}  // namespace chorus
