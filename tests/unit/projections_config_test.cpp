// Goal: a projection's config (EventStore's GET/PUT /config fields) prints every field under
// EventStore's names, takes any subset back over a base, and refuses a body that is not a JSON
// object, a wrong type, or a number that is negative or absurdly large, saying which field.
#include "worker/projections/config.hpp"

#include <gtest/gtest.h>

using namespace chorus::projections;

TEST(ProjectionConfig, PrintsEveryFieldAndTakesASubsetBack) {
  ProjectionConfig base;
  base.emit_enabled = true;
  const std::string json = config_json(base);
  for (const char* field :
       {"\"emitEnabled\":true", "\"trackEmittedStreams\":false", "\"checkpointAfterMs\":0",
        "\"checkpointHandledThreshold\":4000", "\"checkpointUnhandledBytesThreshold\":10000000",
        "\"pendingEventsThreshold\":5000", "\"maxWriteBatchLength\":500",
        "\"maxAllowedWritesInFlight\":0", "\"projectionExecutionTimeout\":250"}) {
    EXPECT_NE(json.find(field), std::string::npos) << field << " in " << json;
  }
  std::string error;
  const auto changed =
      parse_config(R"({"checkpointHandledThreshold":10,"trackEmittedStreams":true})", base, &error);
  ASSERT_TRUE(changed) << error;
  EXPECT_EQ(changed->checkpoint_handled_threshold, 10);
  EXPECT_TRUE(changed->track_emitted_streams);
  EXPECT_TRUE(changed->emit_enabled);  // kept from the base
  const auto round = parse_config(json, {}, &error);
  ASSERT_TRUE(round) << error;
  EXPECT_EQ(config_json(*round), json);
}

TEST(ProjectionConfig, RefusesWhatIsNotAConfig) {
  std::string error;
  for (const char* body : {"", "[]", "nope", "7"}) {
    EXPECT_FALSE(parse_config(body, {}, &error)) << body;
    EXPECT_NE(error.find("JSON object"), std::string::npos) << error;
  }
  EXPECT_FALSE(parse_config(R"({"checkpointAfterMs":-1})", {}, &error));
  EXPECT_NE(error.find("checkpointAfterMs"), std::string::npos) << error;
  EXPECT_FALSE(parse_config(R"({"maxWriteBatchLength":"many"})", {}, &error));
  EXPECT_NE(error.find("maxWriteBatchLength"), std::string::npos) << error;
  EXPECT_FALSE(parse_config(R"({"pendingEventsThreshold":1e12})", {}, &error));
}
