// The text and Prometheus views of a status document.
#include "coordinator/status_render.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>

namespace clisc {
namespace {

using nlohmann::json;

constexpr int64_t kNow = 1'704'067'200'000;

json Stage(const std::string& name, int total, int pending, int leased, int succeeded, int failed,
           int blocked, json eta) {
  return {{"stage", name},
          {"total", total},
          {"pending", pending},
          {"leased", leased},
          {"succeeded", succeeded},
          {"failed", failed},
          {"blocked", blocked},
          {"cancelled", 0},
          {"done_fraction", static_cast<double>(total - pending - leased) / total},
          {"rate_per_s", eta.is_null() ? json(nullptr) : json(0.5)},
          {"eta_s", eta}};
}

json SampleDocument() {
  json failures = json::array();
  for (int i = 0; i < 12; ++i) {
    failures.push_back({{"task_id", 100 + i},
                        {"task_key", "prep/case_" + std::to_string(i)},
                        {"stage", "prep"},
                        {"case_id", "case_" + std::to_string(i)},
                        {"state", "failed"},
                        {"error_code", "INVALID_ARGUMENT"},
                        {"error_message", "corrupt header\nsecond line"}});
  }
  return {{"schema", 1},
          {"generated_ms", kNow},
          {"source", "coordinator"},
          {"reader", {{"address", "127.0.0.1:8470"}, {"read_ms", kNow}}},
          {"run",
           {{"name", "brats"},
            {"id", 1},
            {"state", "running"},
            {"state_reason", ""},
            {"created_ms", kNow - 3'723'000},
            {"updated_ms", kNow},
            {"config_fingerprint", "fp"}}},
          {"totals",
           {{"pending", 11},
            {"leased", 3},
            {"succeeded", 14},
            {"failed", 12},
            {"blocked", 2},
            {"cancelled", 0},
            {"total", 42}}},
          {"stages",
           {Stage("prep", 20, 0, 0, 8, 12, 0, 0.0), Stage("segmentation", 20, 8, 2, 6, 0, 4, 192.0),
            Stage("train", 2, 1, 1, 0, 0, 0, nullptr)}},
          {"cases", {{"active", 8}, {"excluded", 12}}},
          {"workers",
           {{{"id", "gpu-worker-1"},
             {"roles", {"sam", "unet"}},
             {"device", "cuda:0"},
             {"slots", 2},
             {"hostname", "node1"},
             {"state", "alive"},
             {"alive", true},
             {"last_heartbeat_ms", kNow - 400},
             {"age_ms", 400},
             {"running",
              {{{"task_id", 7},
                {"task_key", "segmentation/case_3"},
                {"stage", "segmentation"},
                {"case_id", "case_3"},
                {"attempt", 1},
                {"fraction", 0.45},
                {"message", "slice 70/155"}}}}},
            {{"id", "cpu-worker-2"},
             {"roles", {"ingest"}},
             {"device", "cpu"},
             {"slots", 1},
             {"hostname", "node2"},
             {"state", "dead"},
             {"alive", false},
             {"last_heartbeat_ms", kNow - 95'000},
             {"age_ms", 95'000},
             {"running", json::array()}}}},
          {"failures", failures},
          {"failures_total", 14},
          {"coordinator",
           {{"coordinator_id", "coord-1"},
            {"pid", 77},
            {"started_ms", kNow - 60'000},
            {"uptime_ms", 60'000},
            {"endpoint", "tcp://0.0.0.0:8471"},
            {"http_endpoint", "127.0.0.1:8470"},
            {"redis_state", "connected"},
            {"frames_dropped", {{"bad_envelope", 3}, {"too_large", 1}}},
            {"counters", {{"frames_received", 1200}, {"results.stale", 2}, {"bytes_total", 9}}},
            {"gauges", {{"roundtrip_p99_ms", 4.5}}}}}};
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string LineWith(const std::string& text, const std::string& needle) {
  for (const std::string& line : Lines(text)) {
    if (line.find(needle) != std::string::npos) return line;
  }
  return "";
}

TEST(StatusRenderTest, FormatsDurations) {
  EXPECT_EQ(FormatDurationSeconds(0), "0s");
  EXPECT_EQ(FormatDurationSeconds(42.4), "42s");
  EXPECT_EQ(FormatDurationSeconds(192), "3m12s");
  EXPECT_EQ(FormatDurationSeconds(3723), "1h02m");
  EXPECT_EQ(FormatDurationSeconds(2 * 86400 + 3 * 3600), "2d03h");
  EXPECT_EQ(FormatDurationSeconds(-1), "-");
}

TEST(StatusRenderTest, TextShowsBarsCountsWorkersAndFailures) {
  std::string text = RenderStatusText(SampleDocument(), 100);
  EXPECT_NE(text.find("run brats  running  age 1h02m"), std::string::npos) << text;

  std::string prep = LineWith(text, "prep ");
  EXPECT_NE(prep.find("20/20"), std::string::npos) << prep;
  EXPECT_NE(prep.find("12 failed"), std::string::npos) << prep;
  EXPECT_NE(prep.find("eta 0s"), std::string::npos) << prep;
  std::smatch bar;
  ASSERT_TRUE(std::regex_search(prep, bar, std::regex(R"(\[(#+)\])"))) << prep;

  std::string seg = LineWith(text, "segmentation ");
  EXPECT_NE(seg.find("10/20"), std::string::npos) << seg;
  EXPECT_NE(seg.find("2 running"), std::string::npos) << seg;
  EXPECT_NE(seg.find("4 blocked"), std::string::npos) << seg;
  EXPECT_NE(seg.find("eta 3m12s"), std::string::npos) << seg;
  ASSERT_TRUE(std::regex_search(seg, bar, std::regex(R"(\[(#+)(\.+)\])"))) << seg;
  // Half done, half to go (an odd bar width leaves one more dot).
  EXPECT_LE(std::abs(static_cast<int>(bar[1].length()) - static_cast<int>(bar[2].length())), 1)
      << seg;

  std::string train = LineWith(text, "train ");
  EXPECT_NE(train.find("eta -"), std::string::npos) << train;
  EXPECT_TRUE(std::regex_search(train, std::regex(R"(\[\.+\])"))) << train;

  std::string worker = LineWith(text, "gpu-worker-1");
  EXPECT_NE(worker.find("cuda:0"), std::string::npos) << worker;
  EXPECT_NE(worker.find("sam,unet"), std::string::npos) << worker;
  EXPECT_NE(worker.find("0.4s ago"), std::string::npos) << worker;
  EXPECT_NE(worker.find("segmentation/case_3 45% slice 70/155"), std::string::npos) << worker;
  std::string dead = LineWith(text, "cpu-worker-2");
  EXPECT_NE(dead.find("no (dead)"), std::string::npos) << dead;
  EXPECT_NE(dead.find("1m35s ago"), std::string::npos) << dead;
  EXPECT_NE(text.find("workers: 1 alive of 2"), std::string::npos) << text;

  EXPECT_NE(text.find("failures: 14"), std::string::npos) << text;
  EXPECT_NE(text.find("prep/case_9  failed  INVALID_ARGUMENT: corrupt header second line"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("prep/case_10"), std::string::npos) << text;  // only the first 10
  EXPECT_NE(text.find("... and 4 more"), std::string::npos) << text;
  EXPECT_NE(text.find("from coordinator 127.0.0.1:8470"), std::string::npos) << text;
  EXPECT_NE(text.find("frames dropped 4"), std::string::npos) << text;

  for (const std::string& line : Lines(text)) EXPECT_LE(line.size(), 100u) << line;
}

TEST(StatusRenderTest, TextNamesTheSource) {
  json doc = SampleDocument();
  doc["source"] = "redis";
  doc["reader"] = {
      {"address", "redis://host:6379"}, {"read_ms", kNow}, {"mirrored_ms", kNow - 400}};
  EXPECT_NE(RenderStatusText(doc).find("from redis redis://host:6379 (mirrored 0.4 s ago)"),
            std::string::npos);
  doc["source"] = "ledger";
  doc["reader"] = {{"address", "/data/ledger.db"}};
  doc.erase("coordinator");
  EXPECT_NE(RenderStatusText(doc).find("from ledger file /data/ledger.db (no live worker view)"),
            std::string::npos);
}

TEST(StatusRenderTest, TextSurvivesAStrangeDocument) {
  json doc = {
      {"run", "not an object"}, {"stages", {{{"stage", 5}, {"total", "x"}}}}, {"workers", 3}};
  std::string text = RenderStatusText(doc, 40);
  EXPECT_NE(text.find("run ?"), std::string::npos) << text;
  EXPECT_FALSE(RenderStatusText(json::object()).empty());
  EXPECT_FALSE(RenderPrometheus(doc).empty());
}

// Checks the exposition format line by line; returns samples by "name{labels}".
std::map<std::string, std::string> ParseExposition(const std::string& text) {
  static const std::regex kHelp(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .*)");
  static const std::regex kType(R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (gauge|counter))");
  static const std::regex kSample(
      R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*")(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*")*\})? (-?[0-9.eE+-]+|NaN|[+-]Inf))");
  std::map<std::string, std::string> samples;
  std::set<std::string> typed, helped;
  EXPECT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  for (const std::string& line : Lines(text)) {
    std::smatch m;
    if (std::regex_match(line, m, kHelp)) {
      EXPECT_TRUE(helped.insert(m[1]).second) << "second HELP for " << m[1];
    } else if (std::regex_match(line, m, kType)) {
      EXPECT_TRUE(typed.insert(m[1]).second) << "second TYPE for " << m[1];
      EXPECT_TRUE(helped.count(m[1])) << "TYPE before HELP for " << m[1];
    } else if (std::regex_match(line, m, kSample)) {
      EXPECT_TRUE(typed.count(m[1])) << "sample without TYPE: " << line;
      size_t space = line.rfind(' ');
      samples[line.substr(0, space)] = line.substr(space + 1);
    } else {
      ADD_FAILURE() << "not an exposition line: '" << line << "'";
    }
  }
  return samples;
}

TEST(StatusRenderTest, PrometheusParsesLineByLine) {
  auto samples = ParseExposition(RenderPrometheus(SampleDocument()));
  EXPECT_EQ(samples[R"(clisc_tasks{run="brats",stage="segmentation",state="leased"})"], "2");
  EXPECT_EQ(samples[R"(clisc_tasks{run="brats",stage="prep",state="failed"})"], "12");
  EXPECT_EQ(samples[R"(clisc_run_state{run="brats",state="running"})"], "1");
  EXPECT_EQ(samples[R"(clisc_run_state{run="brats",state="failed"})"], "0");
  EXPECT_EQ(samples[R"(clisc_workers{state="alive"})"], "1");
  EXPECT_EQ(samples[R"(clisc_workers{state="dead"})"], "1");
  EXPECT_EQ(samples[R"(clisc_workers{state="gone"})"], "0");
  EXPECT_EQ(samples[R"(clisc_worker_last_heartbeat_age_seconds{worker="gpu-worker-1"})"], "0.4");
  EXPECT_EQ(samples[R"(clisc_frames_dropped_total{reason="bad_envelope"})"], "3");
  EXPECT_EQ(samples["clisc_coordinator_frames_received_total"], "1200");
  EXPECT_EQ(samples["clisc_coordinator_results_stale_total"], "2");
  EXPECT_EQ(samples["clisc_coordinator_bytes_total"], "9");  // no second _total
  EXPECT_EQ(samples["clisc_coordinator_roundtrip_p99_ms"], "4.5");
  EXPECT_EQ(samples[R"(clisc_stage_eta_seconds{run="brats",stage="segmentation"})"], "192");
  EXPECT_EQ(samples.count(R"(clisc_stage_eta_seconds{run="brats",stage="train"})"), 0u);
}

TEST(StatusRenderTest, PrometheusEscapesLabelValues) {
  json doc = SampleDocument();
  doc["run"]["name"] = "a\"b\\c\nd";
  doc["workers"][0]["id"] = "w\"1";
  std::string text = RenderPrometheus(doc);
  auto samples = ParseExposition(text);
  EXPECT_EQ(samples[R"(clisc_run_state{run="a\"b\\c\nd",state="running"})"], "1") << text;
  EXPECT_EQ(samples[R"(clisc_worker_last_heartbeat_age_seconds{worker="w\"1"})"], "0.4") << text;
}

}  // namespace
}  // namespace clisc
