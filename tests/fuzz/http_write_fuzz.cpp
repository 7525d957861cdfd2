// Fuzz target: the body of an HTTP write (POST /streams/{stream}): an events+json array or a
// single event, chosen by Content-Type as a client sends it (worker/http/write_body). Properties:
// parsing never throws; the result is events or a refusal, never both; a refusal is a client
// error (400) or the 307 to incoming/{guid}; every accepted event has a type; a JSON event's
// data is JSON.
#include "tests/fuzz/fuzz_check.hpp"
#include "worker/http/write_body.hpp"

#include <Poco/Exception.h>
#include <Poco/JSON/Parser.h>
#include <fuzzer/FuzzedDataProvider.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace {

bool parses_as_json(const std::string& text) {
  try {
    Poco::JSON::Parser parser;
    parser.parse(text);
    return true;
  } catch (const Poco::Exception&) {
    return false;
  }
}

constexpr std::array<const char*, 6> kContentTypes = {"application/vnd.eventstore.events+json",
                                                      "application/vnd.eventstore.atom+json",
                                                      "application/json",
                                                      "application/json; charset=utf-8",
                                                      "text/plain",
                                                      "Application/Vnd.EventStore.Events+JSON"};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  chorus::http::Request request;
  request.method = "POST";
  request.base_url = "http://127.0.0.1:2113";
  const std::string stream = in.ConsumeRandomLengthString(32);
  request.path = "/streams/" + stream;
  if (in.ConsumeBool()) request.headers["Content-Type"] = in.PickValueInArray(kContentTypes);
  if (in.ConsumeBool()) request.headers["ES-EventType"] = in.ConsumeRandomLengthString(32);
  if (in.ConsumeBool()) request.headers["ES-EventId"] = in.ConsumeRandomLengthString(40);
  const std::string default_type = in.ConsumeBool() ? "" : "$user-defined";
  request.body = in.ConsumeRemainingBytesAsString();

  const chorus::http::ParsedWrite parsed =
      chorus::http::parse_write_body(request, stream, default_type);
  if (parsed.refusal) {
    FUZZ_CHECK(parsed.events.empty(), "events with a refusal");
    const int status = parsed.refusal->status;
    FUZZ_CHECK(status == 400 || status == 307, "a refusal that is not a client error");
    if (status == 307) FUZZ_CHECK(parsed.refusal->headers.count("Location") == 1, "307 Location");
    return 0;
  }
  for (const chorus::NewEvent& event : parsed.events) {
    FUZZ_CHECK(!event.event_type.empty(), "an event without a type");
    FUZZ_CHECK(!event.data_is_json || parses_as_json(event.data), "JSON data that is not JSON");
    FUZZ_CHECK(!event.metadata_is_json || parses_as_json(event.metadata),
               "JSON metadata that is not JSON");
  }
  return 0;
}
