// Proves the voter-set rules (issue 10, "Node identity and the voter set"): a node takes a free
// seat once and keeps it; a non-member (all seats taken, or not listed by --cluster-member) is
// refused; an endpoint pinned to one instance id refuses another (a node rebuilt with a wiped
// data folder), and an id pinned at one endpoint is refused at another; the pins survive a
// restart through the pin file (and restoring the old instance id is the way back in); a pin
// file that does not fit the configuration, or is malformed, is refused with a clear reason; an
// operator's replacement moves a seat to a new member once, is refused when it names no seat, this
// node's own, a successor that already votes or is not listed, and survives a restart.
#include "worker/cluster/voter_set.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

namespace chorus::cluster {
namespace {

const Voter kSelf{"10.0.0.1:1112", "7d4f0c1a-2b3c-4d5e-8f60-718293a4b501"};
const Voter kB{"10.0.0.2:1112", "7d4f0c1a-2b3c-4d5e-8f60-718293a4b502"};
const Voter kC{"10.0.0.3:1112", "7d4f0c1a-2b3c-4d5e-8f60-718293a4b503"};
const Voter kD{"10.0.0.4:1112", "7d4f0c1a-2b3c-4d5e-8f60-718293a4b504"};
const std::string kRebuiltB = "7d4f0c1a-2b3c-4d5e-8f60-718293a4b5ff";

class TempFolder {
 public:
  TempFolder() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("chorus-voters-test-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempFolder() { std::filesystem::remove_all(path_); }
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

TEST(VoterSet, MembersTakeFreeSeatsAndNonMembersAreRefused) {
  VoterSet set(kSelf, 3, {}, {});
  EXPECT_EQ(set.offer(kB.endpoint, kB.instance_id).admission, Admission::kPinned);
  EXPECT_EQ(set.offer(kB.endpoint, kB.instance_id).admission, Admission::kVoter) << "kept";
  EXPECT_EQ(set.offer(kC.endpoint, kC.instance_id).admission, Admission::kPinned);
  const Verdict fourth = set.offer(kD.endpoint, kD.instance_id);
  EXPECT_EQ(fourth.admission, Admission::kFull) << "a 4th node of a 3-node cluster";
  EXPECT_FALSE(fourth.voter());
  EXPECT_NE(fourth.reason.find("seats"), std::string::npos) << fourth.reason;
  EXPECT_EQ(set.others(), (std::vector<Voter>{kB, kC}));
  EXPECT_EQ(set.offer(kSelf.endpoint, kD.instance_id).admission, Admission::kSelf);
  EXPECT_EQ(set.offer(kD.endpoint, kSelf.instance_id).admission, Admission::kSelf);
}

TEST(VoterSet, PinnedEndpointRefusesAnotherIdAndAnIdStaysAtItsEndpoint) {
  VoterSet set(kSelf, 5, {}, {kB});
  const Verdict rebuilt = set.offer(kB.endpoint, kRebuiltB);
  EXPECT_EQ(rebuilt.admission, Admission::kIdMismatch) << "a wiped node comes back with a new id";
  EXPECT_NE(rebuilt.reason.find(kB.instance_id), std::string::npos) << "names the pinned id";
  EXPECT_NE(rebuilt.reason.find("/admin/members/replace"), std::string::npos)
      << "says how to recover";
  EXPECT_EQ(set.offer(kD.endpoint, kB.instance_id).admission, Admission::kIdElsewhere);
  EXPECT_EQ(set.others(), std::vector<Voter>{kB}) << "refusals pin nothing";
}

TEST(VoterSet, ClusterMemberListDecidesWhoMayTakeASeat) {
  const std::vector<std::string> listed = {kSelf.endpoint, kB.endpoint, kC.endpoint};
  VoterSet set(kSelf, 3, listed, {});
  EXPECT_EQ(set.offer(kD.endpoint, kD.instance_id).admission, Admission::kNotListed)
      << "an unlisted node is refused even while seats are free";
  EXPECT_EQ(set.offer(kC.endpoint, kC.instance_id).admission, Admission::kPinned);
  EXPECT_EQ(VoterSet::check(kSelf, 3, listed, {kC}), "");
  EXPECT_NE(VoterSet::check(kSelf, 3, {kB.endpoint, kC.endpoint, kD.endpoint}, {}), "")
      << "the list must name this node";
  EXPECT_NE(VoterSet::check(kSelf, 5, listed, {}), "") << "as many members as --cluster-size";
  EXPECT_NE(VoterSet::check(kSelf, 3, listed, {kD}), "") << "a pin the list does not name";
}

TEST(VoterSet, PinsMustFitTheClusterSize) {
  EXPECT_EQ(VoterSet::check(kSelf, 3, {}, {kB, kC}), "");
  EXPECT_NE(VoterSet::check(kSelf, 3, {}, {kB, kC, kD}), "") << "more voters than seats";
  EXPECT_NE(VoterSet::check(kSelf, 5, {}, {kB, Voter{kB.endpoint, kD.instance_id}}), "");
  EXPECT_NE(VoterSet::check(kSelf, 5, {}, {Voter{kD.endpoint, kSelf.instance_id}}), "");
}

TEST(VoterSet, PinFileRoundTripsAndRestartKeepsThePins) {
  TempFolder folder;
  std::string error;
  auto none = load_voter_pins(folder.str(), &error);
  ASSERT_TRUE(none) << error;
  EXPECT_TRUE(none->empty()) << "no file: nothing pinned yet";
  ASSERT_TRUE(save_voter_pins(folder.str(), {kB, kC}, &error)) << error;
  auto loaded = load_voter_pins(folder.str(), &error);
  ASSERT_TRUE(loaded) << error;
  EXPECT_EQ(*loaded, (std::vector<Voter>{kB, kC}));
  // After a restart the 4th node is still refused, and B's rebuilt node is still refused.
  VoterSet restarted(kSelf, 3, {}, *loaded);
  EXPECT_EQ(restarted.offer(kD.endpoint, kD.instance_id).admission, Admission::kFull);
  EXPECT_EQ(restarted.offer(kB.endpoint, kRebuiltB).admission, Admission::kIdMismatch);
  // Recovery: the rebuilt node is given its old instance id back, and is a voter again.
  EXPECT_EQ(restarted.offer(kB.endpoint, kB.instance_id).admission, Admission::kVoter);
}

TEST(VoterSet, MalformedPinFilesAreRefused) {
  std::string error;
  EXPECT_FALSE(VoterSet::parse("10.0.0.2:1112\n", &error));
  EXPECT_NE(error.find("line 1"), std::string::npos) << error;
  EXPECT_FALSE(VoterSet::parse("# c\n10.0.0.2:1112 not-a-guid\n", &error));
  EXPECT_NE(error.find("line 2"), std::string::npos) << error;
  EXPECT_FALSE(VoterSet::parse("nohostport " + kB.instance_id + "\n", &error));
  EXPECT_FALSE(VoterSet::parse(kB.endpoint + " " + kB.instance_id + " extra\n", &error));
  std::string many;
  for (size_t i = 0; i <= kVoterPinsMax; ++i) {
    many += "10.0.1." + std::to_string(i % 250) + ":" + std::to_string(1000 + i) + " " +
            kB.instance_id + "\n";
  }
  EXPECT_FALSE(VoterSet::parse(many, &error)) << "bounded";
  const auto ok = VoterSet::parse(VoterSet::to_text({kB}), &error);
  ASSERT_TRUE(ok) << error;
  EXPECT_EQ(*ok, std::vector<Voter>{kB});
}

TEST(VoterBook, PinsArePersistedAndRefusalsReportedOncePerInterval) {
  TempFolder folder;
  std::vector<std::pair<std::string, bool>> lines;
  VoterBook book(VoterSet(kSelf, 3, {}, {}), folder.str(),
                 [&](const std::string& line, bool refused) { lines.emplace_back(line, refused); });
  const auto changed = book.offer({{kB.endpoint, kB.instance_id}, {kC.endpoint, kC.instance_id}});
  ASSERT_TRUE(changed);
  EXPECT_EQ(changed->size(), 2u);
  std::string error;
  EXPECT_EQ(*load_voter_pins(folder.str(), &error), (std::vector<Voter>{kB, kC}));
  lines.clear();
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(book.offer({{kD.endpoint, kD.instance_id}}));
  ASSERT_EQ(lines.size(), 1u) << "a stray node is reported once, not at every gossip round";
  EXPECT_TRUE(lines[0].second);
  EXPECT_EQ(book.voters(), (std::vector<Voter>{kB, kC}));
}

TEST(VoterSet, AReplacementMovesASeatOnceAndIsRefusedWhenItCannotBe) {
  VoterSet set(kSelf, 3, {}, {kB, kC});
  std::string error;
  // By instance id or endpoint; the successor keeps the seat's endpoint unless it names one.
  const auto by_id = set.plan_replacement(kB.instance_id, Voter{"", kRebuiltB}, &error);
  ASSERT_TRUE(by_id) << error;
  EXPECT_EQ(*by_id, (Replacement{kB, Voter{kB.endpoint, kRebuiltB}}));
  const auto by_endpoint = set.plan_replacement(kB.endpoint, Voter{"", kRebuiltB}, &error);
  ASSERT_TRUE(by_endpoint) << error;
  EXPECT_EQ(*by_endpoint, *by_id);

  EXPECT_FALSE(set.plan_replacement(kD.instance_id, Voter{"", kRebuiltB}, &error)) << "no seat";
  EXPECT_NE(error.find("no seat"), std::string::npos) << error;
  EXPECT_FALSE(set.plan_replacement(kSelf.instance_id, Voter{"", kRebuiltB}, &error)) << "own";
  EXPECT_FALSE(set.plan_replacement(kB.instance_id, Voter{"", "not-a-guid"}, &error));
  EXPECT_FALSE(set.plan_replacement(kB.instance_id, Voter{"", kC.instance_id}, &error))
      << "C already votes";
  EXPECT_FALSE(set.plan_replacement(kB.instance_id, Voter{kC.endpoint, kRebuiltB}, &error))
      << "C's endpoint is taken";
  EXPECT_FALSE(set.plan_replacement(kB.instance_id, Voter{"", kSelf.instance_id}, &error));
  VoterSet listed(kSelf, 3, {kSelf.endpoint, kB.endpoint, kC.endpoint}, {kB, kC});
  EXPECT_FALSE(listed.plan_replacement(kB.instance_id, Voter{kD.endpoint, kRebuiltB}, &error))
      << "--cluster-member does not list D";
  EXPECT_TRUE(listed.plan_replacement(kB.instance_id, Voter{"", kRebuiltB}, &error)) << error;

  // Applied once: the rebuilt node votes, the old id is refused; again, or outdated: no change.
  EXPECT_TRUE(set.apply_replacement(*by_id));
  EXPECT_EQ(set.offer(kB.endpoint, kRebuiltB).admission, Admission::kVoter);
  EXPECT_EQ(set.offer(kB.endpoint, kB.instance_id).admission, Admission::kIdMismatch);
  EXPECT_FALSE(set.apply_replacement(*by_id)) << "applied twice";
  EXPECT_FALSE(set.apply_replacement(Replacement{kC, Voter{kC.endpoint, kSelf.instance_id}}));
  EXPECT_EQ(set.others(), (std::vector<Voter>{Voter{kB.endpoint, kRebuiltB}, kC}));

  const std::string json = replacement_to_json(*by_id);
  const auto parsed = replacement_from_json(json, &error);
  ASSERT_TRUE(parsed) << error;
  EXPECT_EQ(*parsed, *by_id);
  EXPECT_FALSE(replacement_from_json(R"({"seat":{}})", &error));
  EXPECT_FALSE(replacement_from_json("[", &error));
}

TEST(VoterBook, AnAppliedReplacementIsSavedAndHoldsAfterARestart) {
  TempFolder folder;
  std::string error;
  ASSERT_TRUE(save_voter_pins(folder.str(), {kB, kC}, &error)) << error;
  VoterBook book(VoterSet(kSelf, 3, {}, *load_voter_pins(folder.str(), &error)), folder.str(),
                 [](const std::string&, bool) {});
  const auto plan = book.plan_replacement(kB.endpoint, Voter{"", kRebuiltB}, &error);
  ASSERT_TRUE(plan) << error;
  const auto voters = book.apply_replacement(*plan);
  ASSERT_TRUE(voters);
  EXPECT_EQ(*voters, (std::vector<Voter>{Voter{kB.endpoint, kRebuiltB}, kC}));
  EXPECT_FALSE(book.apply_replacement(*plan)) << "idempotent";
  EXPECT_EQ(*load_voter_pins(folder.str(), &error), *voters);
}

}  // namespace
}  // namespace chorus::cluster
