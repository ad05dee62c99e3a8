#include "common/config.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "common/config_schema.h"

namespace clisc {
extern const char kConfigSchemaText[];

namespace {

// gmock is not linked, so a small substring assertion stands in for HasSubstr.
::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << part << "' not found in:\n" << text;
}

std::string ErrorOf(std::string_view text, const std::vector<std::string>& overrides = {}) {
  auto config = LoadConfigString(text, "bad.yaml", overrides);
  EXPECT_FALSE(config.ok()) << "expected an error for:\n" << text;
  if (config.ok()) return "";
  EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument);
  return config.status().message();
}

Config LoadOrDie(std::string_view text, const std::vector<std::string>& overrides = {}) {
  auto config = LoadConfigString(text, "test.yaml", overrides);
  EXPECT_TRUE(config.ok()) << config.status().ToString();
  return config.ok() ? std::move(config).value() : Config();
}

// --- the schema ---------------------------------------------------------------------------

TEST(ConfigSchemaTest, BuiltinSchemaIsWellFormed) {
  auto schema = ConfigSchema::Parse(kConfigSchemaText);
  ASSERT_TRUE(schema.ok()) << schema.status().ToString();
  std::set<std::string> paths;
  for (const auto& leaf : schema->leaves()) {
    EXPECT_TRUE(paths.insert(leaf.path).second) << leaf.path;
    EXPECT_FALSE(leaf.doc.empty()) << leaf.path;
    EXPECT_TRUE(CheckConfigValue(leaf, leaf.default_value).ok()) << leaf.path;
    if (leaf.type == ConfigType::kEnum) {
      EXPECT_FALSE(leaf.values.empty()) << leaf.path;
    }
    if (!leaf.nullable) {
      EXPECT_FALSE(std::holds_alternative<std::monostate>(leaf.default_value)) << leaf.path;
    }
  }
  std::vector<std::string> sections;
  for (const auto& node : schema->root().children) {
    if (!node.is_leaf()) {
      sections.push_back(node.name);
      EXPECT_FALSE(node.doc.empty()) << node.path;
    }
  }
  EXPECT_EQ(sections, (std::vector<std::string>{"data", "preprocess", "clip", "classifier", "cam",
                                                "amda", "sam", "unet", "train", "inference", "s3f",
                                                "evaluation", "baselines", "runtime", "debug"}));
}

TEST(ConfigSchemaTest, DefaultsAreThePapersValues) {
  Config c;
  EXPECT_EQ(c.GetString("mode"), "unsupervised");
  EXPECT_EQ(c.GetStringList("data.modalities"), std::vector<std::string>{"flair"});
  EXPECT_DOUBLE_EQ(c.GetDouble("preprocess.clip_percentile"), 99.9);
  EXPECT_DOUBLE_EQ(c.GetDouble("clip.threshold"), 0.6);
  EXPECT_EQ(c.GetInt("clip.smoothing.window"), 5);
  EXPECT_EQ(c.GetInt("clip.smoothing.max_gap"), 6);
  EXPECT_EQ(c.GetInt("clip.smoothing.quorum"), 8);
  EXPECT_EQ(c.GetStringList("clip.prompts").size(), 2u);
  EXPECT_DOUBLE_EQ(c.GetDouble("classifier.lr"), 1e-4);
  EXPECT_EQ(c.GetInt("classifier.epochs"), 30);
  EXPECT_DOUBLE_EQ(c.GetDouble("cam.min_component_fraction"), 1.0 / 3.0);
  EXPECT_EQ(c.GetInt("amda.k"), 8);
  EXPECT_EQ(c.GetInt("sam.box_margin"), 10);
  EXPECT_EQ(c.GetIntList("unet.feature_channels"), (std::vector<int64_t>{16, 32, 64, 128, 256}));
  EXPECT_EQ(c.GetIntList("train.patch_size"), (std::vector<int64_t>{128, 128, 128}));
  EXPECT_EQ(c.GetInt("train.epochs"), 400);
  EXPECT_EQ(c.GetInt("train.seed"), 2023);
  EXPECT_FALSE(c.GetOptionalInt("train.max_iterations").has_value());
  EXPECT_DOUBLE_EQ(c.GetDouble("s3f.keep_ratio"), 0.8);
  EXPECT_EQ(c.GetString("runtime.http_bind"), "127.0.0.1:8470");
  EXPECT_TRUE(c.IsNull("runtime.redis_url"));
  EXPECT_TRUE(c.ValidateCrossKey().ok()) << c.ValidateCrossKey().ToString();
}

TEST(ConfigSchemaTest, RejectsMalformedSchemas) {
  auto no_doc = ConfigSchema::Parse("a:\n  type: int\n  default: 1\n");
  EXPECT_TRUE(Contains(no_doc.status().message(), "a: every key needs a 'doc'"));
  auto no_default = ConfigSchema::Parse("s:\n  a:\n    type: int\n    doc: x\n");
  EXPECT_TRUE(Contains(no_default.status().message(), "s.a: every key needs a 'default'"));
  auto bad_default = ConfigSchema::Parse("a:\n  type: int\n  default: 5\n  max: 3\n  doc: x\n");
  EXPECT_TRUE(Contains(bad_default.status().message(), "default: 5 is out of range"));
  auto bad_enum = ConfigSchema::Parse("a:\n  type: enum\n  default: x\n  doc: d\n");
  EXPECT_TRUE(Contains(bad_enum.status().message(), "needs a non-empty 'values'"));
  auto bad_field = ConfigSchema::Parse("a:\n  type: int\n  default: 1\n  doc: d\n  maxi: 2\n");
  EXPECT_TRUE(Contains(bad_field.status().message(), "unknown schema field 'maxi'"));
}

// --- loading and validation ---------------------------------------------------------------

TEST(ConfigTest, ShippedConfigsValidate) {
  for (const char* name : {"brats2020", "demo", "reference"}) {
    const std::string path = std::string(CLISC_SOURCE_DIR) + "/configs/" + name + ".yaml";
    auto config = LoadConfigFile(path);
    ASSERT_TRUE(config.ok()) << config.status().ToString();
  }
  auto demo = LoadConfigFile(std::string(CLISC_SOURCE_DIR) + "/configs/demo.yaml");
  ASSERT_TRUE(demo.ok());
  EXPECT_EQ(demo->GetString("clip.backend"), "heuristic");
  EXPECT_EQ(demo->GetString("sam.backend"), "heuristic");
  EXPECT_EQ(demo->GetString("classifier.arch"), "small");
  auto reference = LoadConfigFile(std::string(CLISC_SOURCE_DIR) + "/configs/reference.yaml");
  ASSERT_TRUE(reference.ok());
  EXPECT_EQ(reference->GetString("mode"), "reference");
  EXPECT_EQ(reference->GetString("amda.variant"), "reference_fallback");
  EXPECT_EQ(reference->GetString("inference.mode"), "reference_resize");
}

TEST(ConfigTest, MissingFileIsNotFound) {
  auto config = LoadConfigFile("/nonexistent/clisc.yaml");
  EXPECT_EQ(config.status().code(), StatusCode::kNotFound);
}

TEST(ConfigTest, MissingKeysTakeDefaults) {
  Config c = LoadOrDie("clip:\n  threshold: 0.7\n");
  EXPECT_DOUBLE_EQ(c.GetDouble("clip.threshold"), 0.7);
  EXPECT_EQ(c.GetString("clip.backend"), "model");
  EXPECT_EQ(c.GetInt("clip.smoothing.window"), 5);
  Config empty = LoadOrDie("");
  EXPECT_EQ(empty.GetInt("train.epochs"), 400);
  Config empty_section = LoadOrDie("clip:\n");
  EXPECT_DOUBLE_EQ(empty_section.GetDouble("clip.threshold"), 0.6);
}

TEST(ConfigTest, IntsAreAcceptedForFloats) {
  Config c = LoadOrDie("train:\n  lr: 1\n");
  EXPECT_DOUBLE_EQ(c.GetDouble("train.lr"), 1.0);
}

TEST(ConfigTest, UnknownKeyNamesPathAndSuggests) {
  std::string e = ErrorOf("clip:\n  treshold: 0.5\n");
  EXPECT_TRUE(Contains(e, "bad.yaml:2:3: clip.treshold: unknown key"));
  EXPECT_TRUE(Contains(e, "did you mean clip.threshold?"));
  EXPECT_TRUE(
      Contains(ErrorOf("clipp:\n  threshold: 0.5\n"), "clipp: unknown key (did you mean clip?)"));
  // A key in the wrong section points at where that name lives.
  EXPECT_TRUE(Contains(ErrorOf("amda:\n  box_margin: 3\n"), "did you mean sam.box_margin?"));
  std::string far = ErrorOf("zzzzzz: 1\n");
  EXPECT_TRUE(Contains(far, "zzzzzz: unknown key"));
  EXPECT_FALSE(Contains(far, "did you mean"));
}

TEST(ConfigTest, WrongTypeSaysExpectedAndFound) {
  EXPECT_TRUE(Contains(ErrorOf("train:\n  epochs: many\n"),
                       "train.epochs: expected int, found string 'many'"));
  EXPECT_TRUE(
      Contains(ErrorOf("train:\n  epochs: 2.5\n"), "train.epochs: expected int, found float 2.5"));
  EXPECT_TRUE(Contains(ErrorOf("train:\n  epochs: \"5\"\n"),
                       "train.epochs: expected int, found string '5'"));
  EXPECT_TRUE(Contains(ErrorOf("train:\n  patch_size: 128\n"),
                       "train.patch_size: expected list of int, found int 128"));
  EXPECT_TRUE(Contains(ErrorOf("train:\n  patch_size: [128, x, 128]\n"),
                       "train.patch_size: element 1: expected int, found string 'x'"));
  EXPECT_TRUE(Contains(ErrorOf("debug:\n  overlays: yes\n"),
                       "debug.overlays: expected bool, found string 'yes'"));
  EXPECT_TRUE(Contains(ErrorOf("clip: 5\n"), "clip: expected a section (a map of keys)"));
  EXPECT_TRUE(
      Contains(ErrorOf("train:\n  epochs: null\n"), "train.epochs: expected int, found null"));
}

TEST(ConfigTest, OutOfRangeSaysTheRange) {
  EXPECT_TRUE(Contains(ErrorOf("clip:\n  threshold: 1.5\n"),
                       "bad.yaml:2:14: clip.threshold: 1.5 is out of range [0.0, 1.0]"));
  EXPECT_TRUE(Contains(ErrorOf("train:\n  batch_size: 0\n"),
                       "train.batch_size: 0 is out of range (must be >= 1)"));
  EXPECT_TRUE(Contains(ErrorOf("train:\n  patch_size: [128, 4, 128]\n"),
                       "train.patch_size: element 1: 4 is out of range"));
  EXPECT_TRUE(Contains(ErrorOf("train:\n  patch_size: [128, 128]\n"),
                       "expected a list of exactly 3 elements, found 2"));
}

TEST(ConfigTest, BadEnumListsAllowedValues) {
  EXPECT_TRUE(Contains(ErrorOf("mode: semi\n"),
                       "mode: 'semi' is not an allowed value; expected one of: unsupervised, "
                       "reference"));
  EXPECT_TRUE(Contains(ErrorOf("data:\n  modalities: [flair, dwi]\n"),
                       "data.modalities: element 1: 'dwi' is not an allowed value"));
}

TEST(ConfigTest, MalformedYamlGivesLineAndColumn) {
  std::string e = ErrorOf("clip:\n  threshold: [0.5\n");
  EXPECT_TRUE(Contains(e, "bad.yaml:"));
  EXPECT_TRUE(Contains(e, "malformed YAML"));
  EXPECT_TRUE(Contains(ErrorOf("- a\n- b\n"), "<top level>: expected a section"));
}

TEST(ConfigTest, DuplicateKeysAreErrors) {
  EXPECT_TRUE(Contains(ErrorOf("seed: 1\nseed: 2\n"), "bad.yaml:2:1: seed: duplicate key"));
}

TEST(ConfigTest, ReportsEveryProblemAtOnce) {
  std::string e = ErrorOf("mode: x\nclip:\n  threshold: 2\n");
  EXPECT_TRUE(Contains(e, "mode:"));
  EXPECT_TRUE(Contains(e, "clip.threshold:"));
  EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 1);
}

TEST(ConfigTest, CrossKeyRules) {
  EXPECT_TRUE(Contains(ErrorOf("data:\n  splits:\n    source: csv\n"),
                       "bad.yaml: data.splits.train_csv: required when data.splits.source is csv"));
  EXPECT_TRUE(Contains(ErrorOf("data:\n  splits:\n    test_fraction: 0.5\n"),
                       "data.splits.test_fraction: train_fraction + valid_fraction + "
                       "test_fraction must be 1"));
  EXPECT_TRUE(Contains(ErrorOf("s3f:\n  keep_ratio: 0\n"), "s3f.keep_ratio: must be in (0, 1]"));
  EXPECT_TRUE(Contains(ErrorOf("train:\n  patch_size: [120, 128, 128]\n"),
                       "train.patch_size: side 120 does not divide by 16"));
  EXPECT_TRUE(Contains(ErrorOf("device: gpu\n"), "device: expected cpu, cuda or cuda:N"));
  EXPECT_TRUE(Contains(ErrorOf("precision: fp16\n"), "precision: fp16 needs a CUDA device"));
  EXPECT_TRUE(Contains(ErrorOf("sam:\n  checkpoint: null\n"),
                       "sam.checkpoint: required when sam.backend is model"));
  EXPECT_TRUE(Contains(ErrorOf("runtime:\n  http_bind: localhost\n"), "runtime.http_bind"));
  EXPECT_TRUE(Contains(ErrorOf("data:\n  modalities: [t1, t1]\n"), "lists a modality twice"));
  // Nullable keys take null when the rule does not need them.
  LoadOrDie("sam:\n  backend: heuristic\n  checkpoint: null\n");
}

// --- overrides ----------------------------------------------------------------------------

TEST(ConfigTest, OverridesApplyInOrderOverTheFile) {
  Config c = LoadOrDie(
      "train:\n  epochs: 10\n",
      {"train.epochs=5", "clip.threshold=0.7", "train.patch_size=[64, 64, 64]", "train.epochs=6",
       "runtime.redis_url=redis://:pw@host:6379/0", "cam.threshold_search={min: 0.1, max: 0.5}"});
  EXPECT_EQ(c.GetInt("train.epochs"), 6);
  EXPECT_DOUBLE_EQ(c.GetDouble("clip.threshold"), 0.7);
  EXPECT_EQ(c.GetIntList("train.patch_size"), (std::vector<int64_t>{64, 64, 64}));
  EXPECT_EQ(c.GetOptionalString("runtime.redis_url"), "redis://:pw@host:6379/0");
  EXPECT_DOUBLE_EQ(c.GetDouble("cam.threshold_search.max"), 0.5);
  EXPECT_DOUBLE_EQ(c.GetDouble("cam.threshold_search.step"), 0.05);
  EXPECT_EQ(c.source(), "test.yaml + --set");
}

TEST(ConfigTest, OverrideErrorsNameTheKey) {
  EXPECT_TRUE(Contains(ErrorOf("", {"train.epoch=5"}),
                       "--set: train.epoch: unknown key (did you mean train.epochs?)"));
  EXPECT_TRUE(
      Contains(ErrorOf("", {"clip.threshold=2"}), "--set: clip.threshold: 2.0 is out of range"));
  EXPECT_TRUE(Contains(ErrorOf("", {"train.epochs"}), "expected key.path=value"));
}

TEST(ConfigTest, OverridesMayCompleteTheFile) {
  const char* text = "data:\n  splits:\n    source: csv\n";
  LoadOrDie(text, {"data.splits.train_csv=a.csv", "data.splits.test_csv=b.csv"});
}

// --- output and identity ------------------------------------------------------------------

TEST(ConfigTest, ToYamlRoundTripsInSchemaOrder) {
  auto demo = LoadConfigFile(std::string(CLISC_SOURCE_DIR) + "/configs/demo.yaml");
  ASSERT_TRUE(demo.ok());
  const std::string yaml = demo->ToYaml();
  Config again = LoadOrDie(yaml);
  EXPECT_EQ(again.Fingerprint(""), demo->Fingerprint(""));
  EXPECT_LT(yaml.find("\nmode:"), yaml.find("\ndata:"));
  EXPECT_LT(yaml.find("\ndata:"), yaml.find("\nclip:"));
  EXPECT_LT(yaml.find("\nclip:"), yaml.find("\nruntime:"));
  EXPECT_TRUE(Contains(yaml, "  lr: 0.001\n"));
  EXPECT_TRUE(Contains(yaml, "  patch_size: [32, 32, 32]\n"));
}

TEST(ConfigTest, ToJsonIsNested) {
  auto json = nlohmann::json::parse(Config().ToJson());
  EXPECT_DOUBLE_EQ(json["clip"]["threshold"].get<double>(), 0.6);
  EXPECT_EQ(json["clip"]["smoothing"]["window"].get<int>(), 5);
  EXPECT_TRUE(json["runtime"]["redis_url"].is_null());
}

TEST(ConfigTest, FingerprintFollowsItsSectionOnly) {
  Config a, b;
  EXPECT_EQ(a.Fingerprint("clip"), b.Fingerprint("clip"));
  EXPECT_EQ(a.Fingerprint("clip").size(), 16u);
  ASSERT_TRUE(b.Set("train.epochs", "5").ok());
  EXPECT_EQ(a.Fingerprint("clip"), b.Fingerprint("clip"));
  EXPECT_NE(a.Fingerprint("train"), b.Fingerprint("train"));
  EXPECT_NE(a.Fingerprint(""), b.Fingerprint(""));
  ASSERT_TRUE(b.Set("clip.smoothing.window", "4").ok());
  EXPECT_NE(a.Fingerprint("clip"), b.Fingerprint("clip"));
  EXPECT_NE(a.Fingerprint("clip.smoothing"), b.Fingerprint("clip.smoothing"));
  EXPECT_EQ(a.Fingerprint("clip.threshold"), b.Fingerprint("clip.threshold"));
  // Setting a value back restores the fingerprint: it depends on values, not history.
  ASSERT_TRUE(b.Set("clip.smoothing", "{window: 5}").ok());
  EXPECT_EQ(a.Fingerprint("clip"), b.Fingerprint("clip"));
}

TEST(ConfigTest, DoublesFormatShortAndRoundTrip) {
  EXPECT_EQ(FormatConfigDouble(0.1), "0.1");
  EXPECT_EQ(FormatConfigDouble(400), "400.0");
  EXPECT_EQ(FormatConfigDouble(1e-4), "1.0e-04");
  EXPECT_EQ(FormatConfigDouble(1.0 / 3.0), "0.3333333333333333");
  EXPECT_EQ(FormatConfigValue(std::string("a: b")), "\"a: b\"");
  EXPECT_EQ(FormatConfigValue(std::string("true")), "\"true\"");
  EXPECT_EQ(FormatConfigValue(std::string("cuda:0")), "cuda:0");
}

TEST(ConfigTest, EditDistance) {
  EXPECT_EQ(EditDistance("threshold", "treshold"), 1u);
  EXPECT_EQ(EditDistance("", "abc"), 3u);
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3u);
}

TEST(ConfigDeathTest, GettersAbortOnProgrammingErrors) {
  Config c;
  EXPECT_DEATH((void)c.GetInt("train.epoch"), "not a key of the config schema");
  EXPECT_DEATH((void)c.GetString("train.epochs"), "GetString");
  EXPECT_DEATH((void)c.GetString("runtime.redis_url"), "null");
}

// --- the CLI ------------------------------------------------------------------------------

struct RunResult {
  int exit_code = -1;
  std::string out, err;
};

std::string ReadAll(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

RunResult RunClisc(const std::string& args) {
  // ctest runs each test in its own process, several at once: one folder per process.
  const auto dir = std::filesystem::path(::testing::TempDir()) /
                   ("clisc_config_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto out = dir / "stdout", err = dir / "stderr";
  std::string command =
      std::string(CLISC_BINARY) + " " + args + " >" + out.string() + " 2>" + err.string();
  int status = std::system(command.c_str());
  RunResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = ReadAll(out);
  r.err = ReadAll(err);
  return r;
}

std::string WriteTemp(const std::string& name, const std::string& text) {
  const auto path = std::filesystem::path(::testing::TempDir()) / name;
  std::ofstream(path) << text;
  return path.string();
}

class ConfigCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(CLISC_BINARY)) GTEST_SKIP() << "clisc not built: " << CLISC_BINARY;
  }
};

TEST_F(ConfigCliTest, ValidateBadFileExitsTwoAndNamesTheKey) {
  const std::string file = WriteTemp("bad_config.yaml", "clip:\n  threshold: 1.5\n");
  RunResult r = RunClisc("config validate " + file);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(Contains(r.err, "clip.threshold"));
  EXPECT_TRUE(Contains(r.err, file));
}

TEST_F(ConfigCliTest, ValidateWithRepeatedSet) {
  const std::string ok = std::string(CLISC_SOURCE_DIR) + "/configs/demo.yaml";
  RunResult good = RunClisc("config validate " + ok + " --set train.epochs=3 --set=seed=7");
  EXPECT_EQ(good.exit_code, 0) << good.err;
  EXPECT_TRUE(Contains(good.out, "OK"));
  RunResult bad =
      RunClisc("config validate " + ok + " --set train.epochs=3 --set mode=semi --json");
  EXPECT_EQ(bad.exit_code, 2);
  auto json = nlohmann::json::parse(bad.out);
  EXPECT_FALSE(json["ok"].get<bool>());
  EXPECT_TRUE(Contains(json["errors"][0].get<std::string>(), "mode"));
}

TEST_F(ConfigCliTest, ShowPrintsAConfigThatLoadsBack) {
  RunResult r = RunClisc("config show " + std::string(CLISC_SOURCE_DIR) +
                         "/configs/brats2020.yaml --set train.epochs=9");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Config c = LoadOrDie(r.out);
  EXPECT_EQ(c.GetInt("train.epochs"), 9);
  EXPECT_EQ(c.GetString("device"), "cuda:0");
}

TEST_F(ConfigCliTest, ReferenceListsEveryKey) {
  RunResult json = RunClisc("config reference --json");
  ASSERT_EQ(json.exit_code, 0) << json.err;
  auto parsed = nlohmann::json::parse(json.out);
  EXPECT_EQ(parsed["keys"].size(), BuiltinConfigSchema().leaves().size());
  RunResult md = RunClisc("config reference --markdown");
  ASSERT_EQ(md.exit_code, 0);
  RunResult text = RunClisc("config reference");
  ASSERT_EQ(text.exit_code, 0);
  for (const auto& leaf : BuiltinConfigSchema().leaves()) {
    EXPECT_TRUE(Contains(md.out, "`" + leaf.path + "`"));
    EXPECT_TRUE(Contains(text.out, leaf.path));
  }
}

}  // namespace
}  // namespace clisc
