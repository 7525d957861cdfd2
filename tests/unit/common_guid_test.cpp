// Goal: GUIDs use .NET's byte order on the wire (PROTOCOL.md A2, its exact example), and text
// conversions round-trip and refuse malformed input.
#include "common/guid.hpp"

#include <gtest/gtest.h>

namespace chorus {
namespace {

constexpr const char* kText = "00112233-4455-6677-8899-aabbccddeeff";
const std::string kDotnetBytes("\x33\x22\x11\x00\x55\x44\x77\x66\x88\x99\xaa\xbb\xcc\xdd\xee\xff",
                               16);

TEST(Guid, DotnetByteOrderMatchesProtocolExample) {
  const std::optional<Guid> g = parse_guid(kText);
  ASSERT_TRUE(g);
  EXPECT_EQ(to_dotnet_bytes(*g), kDotnetBytes);
}

TEST(Guid, FromDotnetBytesInvertsToDotnetBytes) {
  const std::optional<Guid> g = from_dotnet_bytes(kDotnetBytes);
  ASSERT_TRUE(g);
  EXPECT_EQ(to_string(*g), kText);
  const Guid r = random_guid();
  EXPECT_EQ(*from_dotnet_bytes(to_dotnet_bytes(r)), r);
}

TEST(Guid, FromDotnetBytesNeedsSixteenBytes) {
  EXPECT_FALSE(from_dotnet_bytes(kDotnetBytes.substr(0, 15)));
  EXPECT_FALSE(from_dotnet_bytes(kDotnetBytes + "x"));
}

TEST(Guid, RawBytesAreRfcOrder) {
  const Guid g = *parse_guid(kText);
  const std::string raw = to_raw_bytes(g);
  EXPECT_EQ(static_cast<unsigned char>(raw[0]), 0x00);
  EXPECT_EQ(static_cast<unsigned char>(raw[15]), 0xff);
  EXPECT_EQ(*from_raw_bytes(raw), g);
}

TEST(Guid, TextRoundTrip) {
  for (int i = 0; i < 100; ++i) {
    const Guid g = random_guid();
    EXPECT_EQ(*parse_guid(to_string(g)), g);
  }
  EXPECT_EQ(to_string(*parse_guid("00112233-4455-6677-8899-AABBCCDDEEFF")), kText);
  EXPECT_EQ(to_string(*parse_guid("{00112233-4455-6677-8899-aabbccddeeff}")), kText);
}

TEST(Guid, InvalidTextIsRefused) {
  for (const char* text :
       {"", "not-a-guid", "00112233-4455-6677-8899-aabbccddeef",
        "00112233-4455-6677-8899-aabbccddeeffa", "0011223344556677-8899-aabbccddeeff-",
        "g0112233-4455-6677-8899-aabbccddeeff", "00112233_4455_6677_8899_aabbccddeeff"}) {
    EXPECT_FALSE(parse_guid(text)) << text;
  }
}

TEST(Guid, NilIsAllZero) {
  EXPECT_EQ(to_dotnet_bytes(nil_guid()), std::string(16, '\0'));
  EXPECT_NE(random_guid(), nil_guid());
}

}  // namespace
}  // namespace chorus
