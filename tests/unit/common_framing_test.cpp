// Goal: the TCP framing parser and package codec (PROTOCOL.md A1) handle partial, concatenated,
// truncated, oversized and zero/negative-length frames, parse credentials, and round-trip.
#include "common/framing.hpp"

#include <gtest/gtest.h>

#include <string>

namespace chorus::wire {
namespace {

std::string le32(uint32_t v) {
  std::string out(4, '\0');
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
  return out;
}

Guid sample_guid() { return *parse_guid("00112233-4455-6677-8899-aabbccddeeff"); }

TEST(FrameParser, WholeFrameAtOnce) {
  FrameParser parser;
  parser.feed(encode_package(Command::Ping, sample_guid(), ""));
  const std::optional<std::string> frame = parser.next_frame();
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->size(), kPackageHeaderBytes);
  EXPECT_FALSE(parser.next_frame());
  EXPECT_EQ(parser.buffered_bytes(), 0u);
}

TEST(FrameParser, PartialFrameByteByByte) {
  const std::string bytes = encode_package(Command::WriteEvents, sample_guid(), "payload!");
  FrameParser parser;
  for (size_t i = 0; i + 1 < bytes.size(); ++i) {
    parser.feed(bytes.substr(i, 1));
    EXPECT_FALSE(parser.next_frame()) << "at byte " << i;
  }
  parser.feed(bytes.substr(bytes.size() - 1));
  const std::optional<std::string> frame = parser.next_frame();
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->substr(kPackageHeaderBytes), "payload!");
}

TEST(FrameParser, ConcatenatedFrames) {
  const std::string bytes = encode_package(Command::Ping, sample_guid(), "a") +
                            encode_package(Command::Pong, sample_guid(), "bb") +
                            encode_package(Command::Ping, sample_guid(), "ccc");
  FrameParser parser;
  parser.feed(bytes);
  for (const char* payload : {"a", "bb", "ccc"}) {
    const std::optional<std::string> frame = parser.next_frame();
    ASSERT_TRUE(frame);
    EXPECT_EQ(frame->substr(kPackageHeaderBytes), payload);
  }
  EXPECT_FALSE(parser.next_frame());
  EXPECT_FALSE(parser.invalid());
}

TEST(FrameParser, TruncatedFrameWaitsForMore) {
  const std::string bytes = encode_package(Command::Ping, sample_guid(), "0123456789");
  FrameParser parser;
  parser.feed(bytes.substr(0, bytes.size() - 3));
  EXPECT_FALSE(parser.next_frame());
  EXPECT_FALSE(parser.invalid());
  EXPECT_EQ(parser.buffered_bytes(), bytes.size() - 3);
}

TEST(FrameParser, OversizedLengthIsInvalid) {
  FrameParser parser;
  parser.feed(le32(kFrameBytesMax + 1));
  EXPECT_FALSE(parser.next_frame());
  EXPECT_TRUE(parser.invalid());
  EXPECT_FALSE(parser.error().empty());
}

TEST(FrameParser, MaximumLengthIsAccepted) {
  FrameParser parser;
  parser.feed(le32(kFrameBytesMax));
  EXPECT_FALSE(parser.next_frame());
  EXPECT_FALSE(parser.invalid());
}

TEST(FrameParser, TwoGigabyteLengthIsInvalid) {
  FrameParser parser;
  parser.feed(le32(0x80000000u));
  EXPECT_FALSE(parser.next_frame());
  EXPECT_TRUE(parser.invalid());
}

TEST(FrameParser, ZeroAndNegativeLengthsAreInvalid) {
  for (uint32_t length : {0u, 0xFFFFFFFFu}) {
    FrameParser parser;
    parser.feed(le32(length));
    EXPECT_FALSE(parser.next_frame());
    EXPECT_TRUE(parser.invalid()) << length;
  }
}

TEST(FrameParser, StaysInvalidAfterError) {
  FrameParser parser;
  parser.feed(le32(0));
  EXPECT_FALSE(parser.next_frame());
  parser.feed(encode_package(Command::Ping, sample_guid(), ""));
  EXPECT_FALSE(parser.next_frame());
  EXPECT_TRUE(parser.invalid());
}

// A large frame fed in chunks is reserved once its length is known (never grown, so never copied
// to grow), holds what arrived, is handed out as the very string it arrived in, and leaves the
// parser holding no memory.
TEST(FrameParser, LargeFrameIsReservedOnceAndHandedOutWithoutACopy) {
  const std::string payload(size_t{10} * 1024 * 1024 + 7, 'x');
  const std::string bytes = encode_package(Command::Ping, sample_guid(), payload);
  FrameParser parser;
  parser.feed(std::string_view(bytes).substr(0, 2));
  EXPECT_EQ(parser.partial_length(), 0u);
  EXPECT_EQ(parser.buffered_bytes(), 2u);
  const size_t chunk = 256 * 1024;
  const char* reserved = nullptr;
  for (size_t at = 2; at < bytes.size(); at += chunk) {
    parser.feed(std::string_view(bytes).substr(at, chunk));
    if (at + chunk >= bytes.size()) break;
    EXPECT_EQ(parser.partial_length(), bytes.size() - 4);
    EXPECT_EQ(parser.capacity_bytes(), bytes.size() - 4) << "after " << at << " bytes";
    EXPECT_EQ(parser.partial(), std::string_view(bytes).substr(4, parser.partial().size()));
    EXPECT_EQ(parser.buffered_bytes(), at + std::min(chunk, bytes.size() - at));
    if (reserved == nullptr) reserved = parser.partial().data();
    EXPECT_EQ(parser.partial().data(), reserved) << "the frame moved after " << at << " bytes";
  }
  const std::optional<std::string> frame = parser.next_frame();
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->data(), reserved);
  EXPECT_EQ(frame->size(), kPackageHeaderBytes + payload.size());
  EXPECT_EQ(std::string_view(*frame), std::string_view(bytes).substr(4));
  EXPECT_EQ(parser.buffered_bytes(), 0u);
  EXPECT_EQ(parser.capacity_bytes(), std::string().capacity()) << "nothing beyond an empty string";
  parser.feed(encode_package(Command::Pong, sample_guid(), "after"));
  const std::optional<std::string> next = parser.next_frame();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->substr(kPackageHeaderBytes), "after");
}

// Frames before a bad length prefix are still handed out; nothing after it is.
TEST(FrameParser, FramesBeforeABadPrefixAreStillReturned) {
  FrameParser parser;
  parser.feed(encode_package(Command::Ping, sample_guid(), "one") + le32(0) +
              encode_package(Command::Ping, sample_guid(), "two"));
  EXPECT_TRUE(parser.invalid());
  const std::optional<std::string> frame = parser.next_frame();
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->substr(kPackageHeaderBytes), "one");
  EXPECT_FALSE(parser.next_frame());
}

TEST(Package, RoundTripWithoutCredentials) {
  Package p;
  p.command = static_cast<uint8_t>(Command::ReadEvent);
  p.correlation_id = sample_guid();
  p.payload = std::string("\x00\x01\x02", 3);
  const std::string bytes = encode_package(p);
  const PackageParse parsed = parse_package(std::string_view(bytes).substr(kLengthPrefixBytes));
  ASSERT_TRUE(parsed.package) << parsed.error;
  EXPECT_EQ(parsed.package->command, p.command);
  EXPECT_EQ(parsed.package->flags, 0);
  EXPECT_EQ(parsed.package->correlation_id, p.correlation_id);
  EXPECT_FALSE(parsed.package->credentials);
  EXPECT_EQ(parsed.package->payload, p.payload);
}

TEST(Package, CorrelationIdIsInDotnetOrder) {
  const std::string bytes = encode_package(Command::Ping, sample_guid(), "");
  EXPECT_EQ(bytes.substr(6, 16), std::string("\x33\x22\x11\x00\x55\x44\x77\x66\x88\x99\xaa\xbb"
                                             "\xcc\xdd\xee\xff",
                                             16));
}

TEST(Package, CredentialsParse) {
  // Hand-built: command, flags 0x01, guid, login "admin", password "changeit", payload "xyz".
  std::string frame;
  frame.push_back(static_cast<char>(Command::WriteEvents));
  frame.push_back(0x01);
  frame += to_dotnet_bytes(sample_guid());
  frame += std::string("\x05") + "admin" + std::string("\x08") + "changeit" + "xyz";
  const PackageParse parsed = parse_package(frame);
  ASSERT_TRUE(parsed.package) << parsed.error;
  ASSERT_TRUE(parsed.package->credentials);
  EXPECT_EQ(parsed.package->credentials->login, "admin");
  EXPECT_EQ(parsed.package->credentials->password, "changeit");
  EXPECT_EQ(parsed.package->payload, "xyz");
}

TEST(Package, CredentialsRoundTripAndEmptyPasswordIsLenient) {
  Package p;
  p.command = static_cast<uint8_t>(Command::Authenticate);
  p.correlation_id = sample_guid();
  p.credentials = Credentials{"ops", ""};
  const std::string bytes = encode_package(p);
  const PackageParse parsed = parse_package(std::string_view(bytes).substr(kLengthPrefixBytes));
  ASSERT_TRUE(parsed.package) << parsed.error;
  EXPECT_EQ(parsed.package->flags, 0x01);
  ASSERT_TRUE(parsed.package->credentials);
  EXPECT_EQ(parsed.package->credentials->login, "ops");
  EXPECT_EQ(parsed.package->credentials->password, "");
  EXPECT_EQ(parsed.package->payload, "");
}

TEST(Package, TruncatedCredentialsAreRejected) {
  std::string frame;
  frame.push_back(static_cast<char>(Command::WriteEvents));
  frame.push_back(0x01);
  frame += to_dotnet_bytes(sample_guid());
  EXPECT_FALSE(parse_package(frame).package);  // login length missing
  EXPECT_FALSE(parse_package(frame + "\x05" + "adm").package);
  EXPECT_FALSE(parse_package(frame + "\x05" + "admin" + "\x08" + "chan").package);
}

TEST(Package, OverlongCredentialsAreCutAndTheFrameStaysValid) {
  Package p;
  p.command = static_cast<uint8_t>(Command::Ping);
  p.credentials = Credentials{std::string(300, 'l'), std::string(256, 'p')};
  p.payload = "tail";
  const std::string bytes = encode_package(p);
  FrameParser parser;
  parser.feed(bytes);
  const std::optional<std::string> frame = parser.next_frame();
  ASSERT_TRUE(frame);
  const PackageParse parsed = parse_package(*frame);
  ASSERT_TRUE(parsed.package) << parsed.error;
  EXPECT_EQ(parsed.package->credentials->login.size(), kCredentialBytesMax);
  EXPECT_EQ(parsed.package->credentials->password.size(), kCredentialBytesMax);
  EXPECT_EQ(parsed.package->payload, "tail");
}

TEST(Package, ShorterThanHeaderIsRejected) {
  const PackageParse parsed = parse_package(std::string(17, '\0'));
  EXPECT_FALSE(parsed.package);
  EXPECT_FALSE(parsed.error.empty());
}

TEST(Package, CommandNames) {
  EXPECT_EQ(command_name(0x82), "WriteEvents");
  EXPECT_EQ(command_name(0x5A), "0x5A");
}

TEST(EncodePackageHeader, HeaderThenSharedPayloadIsTheWholePackage) {
  // A payload shared by many connections goes out behind a header of each one's own.
  const Guid id = random_guid();
  const std::string payload(100'000, 'p');
  EXPECT_EQ(encode_package_header(Command::StreamEventAppeared, id, payload.size()) + payload,
            encode_package(Command::StreamEventAppeared, id, payload));
}

}  // namespace
}  // namespace chorus::wire
