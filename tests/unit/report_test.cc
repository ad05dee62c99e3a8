// The run report over a fake workdir: page content and escaping, overlay PNGs, the metrics CSV,
// summary.json, the results table, and a workdir the run left before its evaluation.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "report/report_html.h"
#include "report/results_table.h"
#include "report/run_report.h"
#include "tests/e2e/report_render_workdir.h"

namespace clisc::report {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

uint32_t BigEndian(const std::string& s, size_t at) {
  return (uint32_t(uint8_t(s[at])) << 24) | (uint32_t(uint8_t(s[at + 1])) << 16) |
         (uint32_t(uint8_t(s[at + 2])) << 8) | uint32_t(uint8_t(s[at + 3]));
}

std::string Fixed(double value, int decimals) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
  return buffer;
}

class ReportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("clisc_report_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    workdir_ = dir_ / "w";
  }
  void TearDown() override { fs::remove_all(dir_); }

  json ReadJson(const fs::path& path) { return json::parse(ReadFile(path)); }

  fs::path dir_, workdir_;
};

TEST_F(ReportTest, WritesThePageTheCsvTheSummaryAndThreeOverlays) {
  testing::BuildFakeWorkdir(workdir_);
  if (HasFatalFailure()) return;
  RunReportOptions options;
  options.workdir = workdir_;
  options.title = "Report <of> \"run\" & co";
  ASSERT_TRUE(WriteRunReport(options).ok());
  const fs::path out = workdir_ / "report";
  const std::string html = ReadFile(out / "index.html");
  ASSERT_FALSE(html.empty());

  // The metrics table shows the values of evaluation.json, the final row marked.
  const json evaluation = ReadJson(workdir_ / "report" / "data" / "evaluation.json");
  for (const json& row : evaluation["rows"]) {
    const std::string dice = Fixed(row["dice"]["mean"].get<double>(), 4) + " ± " +
                             Fixed(row["dice"]["std"].get<double>(), 4);
    EXPECT_NE(html.find(dice), std::string::npos) << dice;
    EXPECT_NE(html.find(Fixed(row["hd95_mm"]["mean"].get<double>(), 2)), std::string::npos);
  }
  EXPECT_NE(html.find("<tr class=\"final\"><td class=\"l\">r1 ★ final</td>"), std::string::npos);
  // Per-stage quality, timings from the ledger, run facts, heuristic labels.
  EXPECT_NE(html.find("0.9125"), std::string::npos);
  EXPECT_NE(html.find("0.6543"), std::string::npos);
  EXPECT_NE(html.find("<td class=\"l\">evaluate_r1</td>"), std::string::npos);
  EXPECT_NE(html.find("heuristic (heuristic stand-in)"), std::string::npos);
  EXPECT_NE(html.find("Heuristic backend:"), std::string::npos);
  EXPECT_NE(html.find("<td class=\"l\">unsupervised</td>"), std::string::npos);
  EXPECT_NE(html.find("4 / 0 / 3"), std::string::npos);
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_EQ(html.find("Missing from this report"), std::string::npos);
  // Every string is escaped: the title, the config text, the data dir, a variant title.
  EXPECT_EQ(html.find("<script>alert"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; more"),
            std::string::npos);
  EXPECT_NE(html.find("<title>Report &lt;of&gt; &quot;run&quot; &amp; co</title>"),
            std::string::npos);
  EXPECT_NE(html.find("/data/brats &lt;demo&gt;"), std::string::npos);
  EXPECT_NE(html.find("CLISC round 1 &lt;r1&gt; &amp; &quot;co&quot;"), std::string::npos);
  // No external resource: only data: images, no src/href to anything else.
  EXPECT_EQ(html.find("src=\"http"), std::string::npos);
  EXPECT_EQ(html.find("href="), std::string::npos);

  // Three overlays (best, median, worst): files that are PNGs of the size the page embeds.
  std::vector<fs::path> pngs;
  for (const auto& entry : fs::directory_iterator(out / "overlays")) pngs.push_back(entry.path());
  ASSERT_EQ(pngs.size(), 3u);
  for (const char* rank : {"best_case_001.png", "median_case_002.png", "worst_case_003.png"}) {
    const std::string png = ReadFile(out / "overlays" / rank);
    ASSERT_GT(png.size(), 33u) << rank;
    EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8)) << rank;
    EXPECT_EQ(png.substr(12, 4), "IHDR");
    // 24x20 voxels scaled by min(8, ceil(256 / 24)) = 8, plus the legend strip.
    EXPECT_EQ(BigEndian(png, 16), 24u * 8);
    EXPECT_EQ(BigEndian(png, 20), 20u * 8 + 15);
    EXPECT_NE(html.find("data:image/png;base64," + Base64Encode(png)), std::string::npos) << rank;
  }

  // metrics.csv: one row per test case and variant, values from eval/<variant>.json.
  const std::string csv = ReadFile(out / "metrics.csv");
  std::istringstream lines(csv);
  std::string line;
  std::getline(lines, line);
  EXPECT_EQ(line, "case,variant,dice,hd95_mm,hd95_monai_mm,hd_mm,empty_prediction,empty_gt");
  int rows = 0;
  while (std::getline(lines, line)) ++rows;
  EXPECT_EQ(rows, 6);
  const json r1 = ReadJson(workdir_ / "eval" / "r1.json");
  char expected[256];
  const json& c = r1["cases"][1];
  std::snprintf(
      expected, sizeof expected, "case_002,r1,%.6g,%.6g,%.6g,%.6g,0,0",
      c["medpy"]["dice"]["value"].get<double>(), c["medpy"]["hd95_mm"]["value"].get<double>(),
      c["monai"]["hd95_mm"]["value"].get<double>(), c["medpy"]["hd_mm"]["value"].get<double>());
  EXPECT_NE(csv.find(expected), std::string::npos) << expected << "\n" << csv;

  // summary.json.
  const json summary = ReadJson(out / "summary.json");
  EXPECT_EQ(summary["run"], "clisc");
  EXPECT_EQ(summary["mode"], "unsupervised");
  EXPECT_EQ(summary["backends"]["sam"], "heuristic");
  EXPECT_EQ(summary["heuristic_backends"].size(), 4u);
  EXPECT_EQ(summary["final"]["variant"], "r1");
  EXPECT_DOUBLE_EQ(summary["final"]["dice"].get<double>(),
                   r1["summary"]["ours"]["dice"]["mean"].get<double>());
  EXPECT_DOUBLE_EQ(summary["final"]["hd95_mm"].get<double>(),
                   r1["summary"]["ours"]["hd95_mm"]["mean"].get<double>());
  EXPECT_EQ(summary["variants"].size(), 2u);
  EXPECT_EQ(summary["report"]["overlays"].size(), 3u);
  EXPECT_EQ(summary["report"]["html"], "index.html");
  EXPECT_DOUBLE_EQ(summary["stages"]["quality"]["sam_dice"]["mean"].get<double>(), 0.6543);
  // Ledger timings: 3 prep tasks, one retried; each attempt took 1.5 s of fake time.
  const json& prep = summary["stages"]["timings"][0];
  EXPECT_EQ(prep["stage"], "prep");
  EXPECT_EQ(prep["tasks"], 3);
  EXPECT_EQ(prep["succeeded"], 3);
  EXPECT_EQ(prep["attempts"], 4);
  EXPECT_EQ(prep["retries"], 1);
  EXPECT_EQ(prep["failed_attempts"], 1);
  EXPECT_DOUBLE_EQ(prep["task_time_s"].get<double>(), 6.0);
  EXPECT_DOUBLE_EQ(prep["wall_s"].get<double>(), 6.0);
}

TEST_F(ReportTest, OrdersTheOverlaysByDiceOfTheFinalVariant) {
  testing::BuildFakeWorkdir(workdir_);
  if (HasFatalFailure()) return;
  auto data = LoadRunReportData(workdir_);
  ASSERT_TRUE(data.ok());
  const std::vector<CaseOverlay> overlays = WriteCaseOverlays(*data, dir_ / "out");
  ASSERT_EQ(overlays.size(), 3u);
  EXPECT_EQ(overlays[0].rank, "best");
  EXPECT_EQ(overlays[2].rank, "worst");
  EXPECT_GT(overlays[0].dice, overlays[1].dice);
  EXPECT_GT(overlays[1].dice, overlays[2].dice);
  for (const CaseOverlay& o : overlays) {
    EXPECT_TRUE(o.error.empty()) << o.error;
    // The GT cube spans z 2..5: the chosen slice holds GT voxels.
    EXPECT_GE(o.slice_z, 2);
    EXPECT_LE(o.slice_z, 5);
  }
}

TEST_F(ReportTest, ResultsTableListsTheRoundsAndTheStageQuality) {
  testing::BuildFakeWorkdir(workdir_);
  if (HasFatalFailure()) return;
  auto table = LoadResultsTable(workdir_);
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  ASSERT_EQ(table->rows.size(), 2u);
  EXPECT_EQ(table->rows[0].variant, "r1");
  EXPECT_TRUE(table->rows[0].is_final);
  EXPECT_FALSE(table->rows[1].is_final);
  EXPECT_EQ(table->rows[0].cases, 3);
  ASSERT_EQ(table->quality.size(), 4u);
  EXPECT_DOUBLE_EQ(table->quality[0].mean, 0.9125);
  const std::string text = FormatResultsTable(*table);
  EXPECT_NE(text.find("r1 *"), std::string::npos) << text;
  EXPECT_NE(
      text.find(Fixed(table->rows[0].dice_mean, 4) + " ± " + Fixed(table->rows[0].dice_std, 4)),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("SAM pseudo-label Dice"), std::string::npos);
  EXPECT_NE(text.find("WARNING: clip ran a heuristic backend"), std::string::npos);
}

TEST_F(ReportTest, AWorkdirWithoutEvaluationGivesAPageThatSaysSo) {
  testing::BuildFakeWorkdir(workdir_, /*with_evaluation=*/false);
  if (HasFatalFailure()) return;
  RunReportOptions options;
  options.workdir = workdir_;
  ASSERT_TRUE(WriteRunReport(options).ok());
  const std::string html = ReadFile(workdir_ / "report" / "index.html");
  EXPECT_NE(html.find("No evaluation yet"), std::string::npos);
  EXPECT_NE(html.find("Missing from this report"), std::string::npos);
  EXPECT_NE(html.find("report/data/evaluation.json does not exist yet"), std::string::npos);
  EXPECT_NE(html.find("0.9125"), std::string::npos);  // what exists is still shown
  EXPECT_EQ(html.find("<img"), std::string::npos);
  const json summary = ReadJson(workdir_ / "report" / "summary.json");
  EXPECT_TRUE(summary["final"]["variant"].is_null());
  EXPECT_FALSE(summary["missing"].empty());
  EXPECT_EQ(ReadFile(workdir_ / "report" / "metrics.csv"),
            "case,variant,dice,hd95_mm,hd95_monai_mm,hd_mm,empty_prediction,empty_gt\n");
}

TEST_F(ReportTest, AnEmptyWorkdirStillRendersAndAMissingOneIsNotFound) {
  fs::create_directories(workdir_);
  RunReportOptions options;
  options.workdir = workdir_;
  ASSERT_TRUE(WriteRunReport(options).ok());
  const std::string html = ReadFile(workdir_ / "report" / "index.html");
  EXPECT_NE(html.find("No stage timings"), std::string::npos);
  EXPECT_NE(html.find("No run config"), std::string::npos);
  EXPECT_NE(html.find("No per-stage quality yet"), std::string::npos);
  EXPECT_EQ(LoadResultsTable(workdir_).status().code(), StatusCode::kFailedPrecondition);
  options.workdir = dir_ / "absent";
  EXPECT_EQ(WriteRunReport(options).code(), StatusCode::kNotFound);
}

TEST_F(ReportTest, AMissingPredictionIsNamedInsteadOfAnOverlay) {
  testing::BuildFakeWorkdir(workdir_);
  if (HasFatalFailure()) return;
  fs::remove(workdir_ / "cases" / "case_003" / "unet_r1" / "prediction_cropped.nii.gz");
  RunReportOptions options;
  options.workdir = workdir_;
  ASSERT_TRUE(WriteRunReport(options).ok());
  const std::string html = ReadFile(workdir_ / "report" / "index.html");
  EXPECT_NE(html.find("No overlay for worst: case_003"), std::string::npos);
  EXPECT_EQ(std::distance(fs::directory_iterator(workdir_ / "report" / "overlays"),
                          fs::directory_iterator()),
            2);
}

TEST(ReportHtmlTest, EscapesMarkupAndEncodesBase64) {
  EXPECT_EQ(EscapeHtml("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
}

}  // namespace
}  // namespace clisc::report
