#include "common/logging.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace clisc {
namespace {

TEST(LoggingTest, TextQuotesValuesThatNeedIt) {
  std::string line = FormatEventText("case_rejected", {{"case", "BraTS20_Training_001"},
                                                        {"reason", "missing t1ce"},
                                                        {"n", 3}});
  EXPECT_EQ(line, "case_rejected case=BraTS20_Training_001 reason=\"missing t1ce\" n=3");
}

TEST(LoggingTest, JsonIsOneParsableObject) {
  std::string line = FormatEventJson("task_done", {{"task", "t1"}, {"seconds", 1.5}});
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["event"], "task_done");
  EXPECT_EQ(j["task"], "t1");
  EXPECT_EQ(j["seconds"], "1.5");
}

TEST(LoggingTest, ParsesLevelsAndFormats) {
  EXPECT_EQ(*ParseLogLevel("warn"), LogLevel::kWarn);
  EXPECT_FALSE(ParseLogLevel("loud").ok());
  EXPECT_EQ(*ParseLogFormat("json"), LogFormat::kJson);
  EXPECT_FALSE(ParseLogFormat("xml").ok());
}

}  // namespace
}  // namespace clisc

namespace clisc {
namespace {

TEST(LoggingSettingsTest, CurrentSettingsAreTheLastInitialized) {
  InitLogging(LogLevel::kWarn, LogFormat::kJson);
  EXPECT_EQ(CurrentLogLevel(), LogLevel::kWarn);
  EXPECT_EQ(CurrentLogFormat(), LogFormat::kJson);
  InitLogging(LogLevel::kInfo, LogFormat::kText);
  EXPECT_EQ(CurrentLogLevel(), LogLevel::kInfo);
  EXPECT_EQ(CurrentLogFormat(), LogFormat::kText);
}

}  // namespace
}  // namespace clisc
