#include "report/report_data.h"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <ctime>
#include <fstream>
#include <set>
#include <sstream>
#include <system_error>

#include "common/metrics.h"

namespace clisc::report {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::optional<std::string> ReadText(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The document at W/<relative>, or null with a sentence in `missing`.
json ReadJsonDoc(const fs::path& workdir, const std::string& relative, const std::string& what,
                 std::vector<std::string>& missing) {
  const std::optional<std::string> text = ReadText(workdir / relative);
  if (!text) {
    missing.push_back(what + ": " + relative + " does not exist yet");
    return nullptr;
  }
  json doc = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    missing.push_back(what + ": " + relative + " is not a JSON object");
    return nullptr;
  }
  return doc;
}

std::string StringAt(const json& doc, const char* key) {
  auto it = doc.find(key);
  return it != doc.end() && it->is_string() ? it->get<std::string>() : "";
}

double MetricValue(const json& row, const char* family, const char* metric) {
  const json* node = &row;
  for (const char* key : {family, metric, "value"}) {
    if (!node->is_object()) return kNaN;
    auto it = node->find(key);
    if (it == node->end()) return kNaN;
    node = &*it;
  }
  return node->is_number() ? node->get<double>() : kNaN;
}

// A count given as a number or as a list of ids.
std::optional<int64_t> CountOf(const json& value) {
  if (value.is_number_integer()) return value.get<int64_t>();
  if (value.is_array()) return static_cast<int64_t>(value.size());
  return std::nullopt;
}

void LoadConfig(RunReportData& data) {
  const std::optional<std::string> text = ReadText(data.workdir / "config.yaml");
  if (!text) {
    data.missing.push_back("run config: config.yaml does not exist");
    return;
  }
  data.config_yaml = *text;
  try {
    const YAML::Node config = YAML::Load(*text);
    if (config["mode"] && config["mode"].IsScalar()) data.mode = config["mode"].as<std::string>();
    for (const char* stage : {"clip", "sam"}) {
      const YAML::Node node = config[stage];
      if (node && node.IsMap() && node["backend"] && node["backend"].IsScalar()) {
        data.backends[stage] = node["backend"].as<std::string>();
      }
    }
    const YAML::Node modalities = config["data"] ? config["data"]["modalities"] : YAML::Node();
    if (modalities && modalities.IsSequence() && modalities.size() > 0) {
      data.modalities = modalities.as<std::vector<std::string>>();
    }
    if (data.data_dir.empty() && config["data"] && config["data"]["root"] &&
        config["data"]["root"].IsScalar()) {
      data.data_dir = config["data"]["root"].as<std::string>();
    }
  } catch (const YAML::Exception& e) {
    data.missing.push_back(std::string("run config: config.yaml does not parse: ") + e.what());
  }
}

void LoadRunFile(RunReportData& data) {
  const json run = ReadJsonDoc(data.workdir, "run.json", "run record", data.missing);
  if (run.is_null()) return;
  data.data_dir = StringAt(run, "data");
  if (data.data_dir.empty()) data.data_dir = StringAt(run, "data_dir");
  if (!StringAt(run, "run").empty()) data.run_name = StringAt(run, "run");
  if (!StringAt(run, "name").empty()) data.run_name = StringAt(run, "name");
  for (const char* key : {"created", "created_at"}) {
    if (run.contains(key) && run[key].is_string()) data.created = run[key].get<std::string>();
  }
  if (run.contains("created_ms") && run["created_ms"].is_number_integer()) {
    data.created = FormatTimeMs(run["created_ms"].get<int64_t>());
  }
  if (run.contains("splits") && run["splits"].is_object()) {
    const json& s = run["splits"];
    if (s.contains("train")) data.splits.train = CountOf(s["train"]);
    if (s.contains("valid")) data.splits.valid = CountOf(s["valid"]);
    if (s.contains("test")) data.splits.test = CountOf(s["test"]);
  }
}

// Split sizes from the plan when run.json does not give them: prep covers every planned case,
// SAM labels the train split, the evaluation reads the test split's prep outputs, and reference
// mode validates the U-Net on the valid split.
void LoadPlanCounts(RunReportData& data) {
  const std::optional<std::string> text = ReadText(data.workdir / "plan.json");
  if (!text) return;
  const json plan = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (plan.is_discarded() || !plan.contains("tasks") || !plan["tasks"].is_array()) return;
  std::set<std::string> planned, train, valid, test;
  bool test_seen = false;
  for (const json& task : plan["tasks"]) {
    if (!task.is_object()) continue;
    const std::string stage = StringAt(task, "stage"), id = StringAt(task, "case");
    if (stage == "prep" && !id.empty()) planned.insert(id);
    if (stage == "sam_label" && !id.empty()) train.insert(id);
    const json params = task.value("params", json::object());
    if (stage.rfind("train_unet_", 0) == 0 && params.is_object() &&
        params.value("valid_cases", json::array()).is_array()) {
      for (const json& v : params["valid_cases"]) {
        if (v.is_string()) valid.insert(v.get<std::string>());
      }
    }
    if (stage.rfind("evaluate_", 0) == 0 && !test_seen && task.value("deps", json()).is_array()) {
      test_seen = true;
      for (const json& dep : task["deps"]) {
        const std::string key = dep.is_string() ? dep.get<std::string>() : "";
        if (key.rfind("prep/", 0) == 0) test.insert(key.substr(5));
      }
    }
  }
  if (!data.splits.planned) data.splits.planned = static_cast<int64_t>(planned.size());
  if (!data.splits.train) data.splits.train = static_cast<int64_t>(train.size());
  if (!data.splits.valid && data.mode == "reference") {
    data.splits.valid = static_cast<int64_t>(valid.size());
  }
  if (!data.splits.test) data.splits.test = static_cast<int64_t>(test.size());
}

void LoadLedger(RunReportData& data) {
  StatusOr<RunLedgerSummary> ledger = ReadRunLedger(data.workdir / "ledger.db", data.run_name);
  if (!ledger.ok()) {
    data.missing.push_back("stage timings: " + ledger.status().message());
    return;
  }
  data.run_state = ledger->state;
  if (data.created.empty()) data.created = FormatTimeMs(ledger->created_ms);
  if (ledger->state != "running") {
    data.finished = FormatTimeMs(ledger->updated_ms) + " (" + ledger->state + ")";
  }
  data.ledger = std::move(*ledger);
}

void LoadEvaluation(RunReportData& data) {
  data.evaluation =
      ReadJsonDoc(data.workdir, "report/data/evaluation.json",
                  "evaluation (the run has not evaluated the test split)", data.missing);
  if (data.evaluation.is_null()) return;
  data.final_variant = StringAt(data.evaluation, "final");
  if (data.mode.empty()) data.mode = StringAt(data.evaluation, "mode");
  if (!data.evaluation.contains("rows") || !data.evaluation["rows"].is_array()) {
    data.missing.push_back("evaluation: report/data/evaluation.json has no rows");
    return;
  }
  for (const json& row : data.evaluation["rows"]) {
    if (!row.is_object()) continue;
    VariantResult variant;
    variant.variant = StringAt(row, "variant");
    variant.title = StringAt(row, "title");
    variant.round = row.value("round", 0);
    variant.row = row;
    const std::string relative = "eval/" + variant.variant + ".json";
    const json doc =
        ReadJsonDoc(data.workdir, relative, "per-case metrics of " + variant.variant, data.missing);
    if (doc.is_object() && doc.contains("cases") && doc["cases"].is_array()) {
      variant.has_cases = true;
      for (const json& c : doc["cases"]) {
        if (!c.is_object()) continue;
        CaseMetrics m;
        m.case_id = StringAt(c, "case");
        m.dice = MetricValue(c, "medpy", "dice");
        m.hd95_mm = MetricValue(c, "medpy", "hd95_mm");
        m.hd95_monai_mm = MetricValue(c, "monai", "hd95_mm");
        m.hd_mm = MetricValue(c, "medpy", "hd_mm");
        const std::string status = StringAt(c, "status");
        m.empty_prediction = status == "pred_empty" || status == "both_empty";
        m.empty_gt = status == "gt_empty" || status == "both_empty";
        variant.cases.push_back(std::move(m));
      }
    }
    data.variants.push_back(std::move(variant));
  }
}

// The backends as the artifacts record them (they know what actually ran), else the config's.
void ResolveBackends(RunReportData& data) {
  for (const json* doc : {&data.evaluation, &data.stage_quality}) {
    if (!doc->is_object() || !doc->contains("backends") || !(*doc)["backends"].is_object()) {
      continue;
    }
    for (const auto& [key, value] : (*doc)["backends"].items()) {
      if (value.is_string() && !value.get<std::string>().empty()) {
        data.backends[key] = value.get<std::string>();
      }
    }
  }
  std::set<std::string> warned;
  for (const auto& [key, backend] : data.backends) {
    const std::string stage = key.substr(0, key.find("_detail"));
    if (IsHeuristicBackend(backend) && warned.insert(stage).second) {
      data.warnings.push_back(stage + " ran a heuristic backend (" + backend +
                              "), not the paper's model: the numbers say nothing about the "
                              "method's accuracy");
    }
  }
}

}  // namespace

bool IsHeuristicBackend(const std::string& backend) {
  return backend.find("heuristic") != std::string::npos;
}

fs::path VariantMaskPath(const fs::path& workdir, const std::string& variant,
                         const std::string& case_id) {
  if (variant == "sam_only") {
    return workdir / "cases" / case_id / "sam" / "pseudo_label_cropped.nii.gz";
  }
  return workdir / "cases" / case_id / ("unet_" + variant) / "prediction_cropped.nii.gz";
}

std::string FormatTimeMs(int64_t ms) {
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%d %H:%M:%S UTC", &utc);
  return buffer;
}

StatusOr<RunReportData> LoadRunReportData(const fs::path& workdir) {
  std::error_code ec;
  if (!fs::is_directory(workdir, ec)) {
    return NotFoundError("workdir " + workdir.string() + " is not a directory");
  }
  RunReportData data;
  data.workdir = workdir;
  LoadRunFile(data);
  LoadConfig(data);
  LoadLedger(data);
  data.stage_quality = ReadJsonDoc(workdir, "report/data/stages_1_8.json",
                                   "per-stage quality (stages 1-8 not finished)", data.missing);
  if (data.mode.empty() && data.stage_quality.is_object()) {
    data.mode = StringAt(data.stage_quality, "mode");
  }
  LoadEvaluation(data);
  LoadPlanCounts(data);
  ResolveBackends(data);
  return data;
}

}  // namespace clisc::report
