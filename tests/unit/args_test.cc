#include "cli/args.h"

#include <gtest/gtest.h>

namespace clisc::cli {
namespace {

ArgParser MakeParser() {
  ArgParser p("synth", "synth --out DIR [--cases N]", "Make data.");
  p.Option("out", "DIR", "output folder", std::nullopt, /*required=*/true)
      .Option("cases", "N", "how many", "16")
      .Flag("json", "machine output")
      .Positional("extra", "an extra argument", /*required=*/false);
  return p;
}

TEST(ArgParserTest, ParsesOptionsFlagsAndDefaults) {
  ArgParser p = MakeParser();
  ASSERT_TRUE(p.Parse({"--out", "/tmp/x", "--json", "pos"}).ok());
  EXPECT_EQ(p.Get("out"), "/tmp/x");
  EXPECT_EQ(*p.GetInt("cases"), 16);
  EXPECT_TRUE(p.GetFlag("json"));
  EXPECT_EQ(p.GetPositional("extra"), "pos");
}

TEST(ArgParserTest, AcceptsEqualsForm) {
  ArgParser p = MakeParser();
  ASSERT_TRUE(p.Parse({"--out=/a", "--cases=3"}).ok());
  EXPECT_EQ(p.Get("out"), "/a");
  EXPECT_EQ(*p.GetInt("cases"), 3);
}

TEST(ArgParserTest, ErrorsNameTheOption) {
  ArgParser p1 = MakeParser();
  Status s = p1.Parse({"--bogus"});
  EXPECT_NE(s.message().find("--bogus"), std::string::npos);
  ArgParser p2 = MakeParser();
  s = p2.Parse({});
  EXPECT_NE(s.message().find("--out"), std::string::npos);
  ArgParser p3 = MakeParser();
  ASSERT_TRUE(p3.Parse({"--out", "x", "--cases", "many"}).ok());
  EXPECT_FALSE(p3.GetInt("cases").ok());
  ArgParser p4 = MakeParser();
  EXPECT_FALSE(p4.Parse({"--out"}).ok());
}

TEST(ArgParserTest, HelpListsEveryOption) {
  ArgParser p = MakeParser();
  ASSERT_TRUE(p.Parse({"--help"}).ok());
  EXPECT_TRUE(p.help_requested());
  std::string help = p.Help();
  for (const char* s : {"--out DIR", "--cases N", "--json", "[default: 16]", "--help"}) {
    EXPECT_NE(help.find(s), std::string::npos) << s;
  }
}

}  // namespace
}  // namespace clisc::cli
