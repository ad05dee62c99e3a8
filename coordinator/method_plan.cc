#include "coordinator/method_plan.h"

#include <algorithm>
#include <initializer_list>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <system_error>

#include "coordinator/method_plan_internal.h"

namespace clisc {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using plan_internal::JoinIds;

constexpr std::string_view kPrep = "prep";
constexpr std::string_view kClipLabel = "clip_label";
constexpr std::string_view kCamPost = "cam_post";
constexpr std::string_view kSamLabel = "sam_label";
constexpr std::string_view kStageQuality = "stage_quality";

std::string CaseKey(std::string_view stage, const std::string& id) {
  return std::string(stage) + "/" + id;
}

std::string CasePath(const std::string& id, std::string_view relative) {
  return "cases/" + id + "/" + std::string(relative);
}

json OutputList(std::initializer_list<std::pair<std::string, std::string>> outputs) {
  json list = json::array();
  for (const auto& [name, path] : outputs) list.push_back({{"name", name}, {"path", path}});
  return list;
}

// Builds the task list of one plan. Per-case stages visit cases in id order, so the plan does not
// depend on the order of the case list or of the split files.
class PlanBuilder {
 public:
  PlanBuilder(const Config& config, std::vector<PlannedCase> cases,
              std::map<std::string, std::string> split_of)
      : config_json_(json::parse(config.ToJson())),
        reference_(config.GetString("mode") == "reference"),
        modalities_(config.GetStringList("data.modalities")),
        max_attempts_(static_cast<int>(config.GetInt("runtime.max_attempts"))),
        cases_(std::move(cases)),
        split_of_(std::move(split_of)) {}

  std::vector<TaskSpec> Build() {
    for (const PlannedCase& c : cases_) AddPrep(c);
    std::vector<std::string> train, labelled, valid, test;
    for (const PlannedCase& c : cases_) {
      const std::string split = SplitOf(c.id);
      if (split == "train") train.push_back(c.id);
      if (split == "valid") valid.push_back(c.id);
      if (split == "test") test.push_back(c.id);
      if (split == "train" || (reference_ && split == "valid")) labelled.push_back(c.id);
    }
    // The SAM-only baseline runs stages 1-8 on the test split too, as inference: its cases feed
    // no training (the classifier reads `labelled` and the train split's AMDA sets only).
    const bool sam_only = SamOnlyBaseline() && !test.empty();
    std::vector<std::string> slice_cases = labelled, sam_cases = train;
    if (sam_only) {
      slice_cases.insert(slice_cases.end(), test.begin(), test.end());
      sam_cases.insert(sam_cases.end(), test.begin(), test.end());
    }
    for (const std::string& id : slice_cases) AddClipLabel(id);
    for (const char* variant : {"raw", "aug"}) {
      AddClassifierTraining(variant, labelled, train);
      for (const std::string& id : slice_cases) AddCam(variant, id);
      if (reference_) AddCamThreshold(variant, valid);
      for (const std::string& id : sam_cases) AddCamPost(variant, id);
    }
    for (const std::string& id : sam_cases) AddSamLabel(id);
    AddStageQuality(labelled, train);

    std::vector<std::string> evaluations;
    const int rounds = static_cast<int>(config_int("s3f.rounds"));
    for (int r = 1; r <= rounds; ++r) {
      const std::string variant = "r" + std::to_string(r);
      AddUNetTraining(variant, r, train, valid);
      if (r < rounds) {
        for (const std::string& id : train) AddPredict(variant, r, id, /*pseudo_label=*/true);
        for (const std::string& id : train) AddS3fScore(r, id);
        AddS3fRank(r, train);
      }
      for (const std::string& id : test) AddPredict(variant, r, id, /*pseudo_label=*/false);
      if (!test.empty())
        evaluations.push_back(
            AddEvaluation(variant, r, "predict_" + variant, "prediction_cropped", test));
    }
    if (config_bool("baselines.supervised")) {
      AddUNetTraining("supervised", 0, train, valid);
      for (const std::string& id : test) AddPredict("supervised", 0, id, false);
      if (!test.empty()) {
        evaluations.push_back(
            AddEvaluation("supervised", 0, "predict_supervised", "prediction_cropped", test));
      }
    }
    if (sam_only) {
      evaluations.push_back(
          AddEvaluation("sam_only", 0, std::string(kSamLabel), "pseudo_label_cropped", test));
    }
    if (!evaluations.empty()) AddEvaluationSummary(evaluations);
    return std::move(tasks_);
  }

  bool SamOnlyBaseline() const { return config_bool("baselines.sam_only") && !reference_; }

  std::string SplitOf(const std::string& id) const {
    auto it = split_of_.find(id);
    return it == split_of_.end() ? "none" : it->second;
  }

  int64_t config_int(std::string_view path) const { return At(path).get<int64_t>(); }
  bool config_bool(std::string_view path) const { return At(path).get<bool>(); }
  const json& At(std::string_view path) const {
    std::string pointer = "/" + std::string(path);
    std::replace(pointer.begin(), pointer.end(), '.', '/');
    return config_json_.at(json::json_pointer(pointer));
  }

  // The named parts of the effective config ("cam", "data.modalities"), nested as in the YAML.
  json Sections(std::initializer_list<std::string_view> paths) const {
    json out = json::object();
    for (std::string_view path : paths) {
      std::string pointer = "/" + std::string(path);
      std::replace(pointer.begin(), pointer.end(), '.', '/');
      out[json::json_pointer(pointer)] = At(path);
    }
    return out;
  }

  void Add(std::string_view stage, std::string_view role, std::optional<std::string> case_id,
           std::vector<std::string> deps, json params, int round = 0) {
    TaskSpec spec;
    spec.stage = std::string(stage);
    spec.task_key = case_id ? CaseKey(stage, *case_id) : spec.stage;
    spec.case_id = std::move(case_id);
    spec.round = round;
    spec.role = std::string(role);
    if (spec.case_id) params["split"] = SplitOf(*spec.case_id);
    spec.params_json = params.dump();
    spec.max_attempts = max_attempts_;
    spec.depends_on = std::move(deps);
    tasks_.push_back(std::move(spec));
  }

  void AddPrep(const PlannedCase& c) {
    json outputs = json::array();
    for (const std::string& m : modalities_) {
      outputs.push_back({{"name", "image_" + m}, {"path", CasePath(c.id, "prep/" + m + ".nii")}});
    }
    outputs.push_back({{"name", "brain_mask"}, {"path", CasePath(c.id, "prep/brain_mask.nii.gz")}});
    if (c.has_seg) {
      outputs.push_back({{"name", "gt"}, {"path", CasePath(c.id, "prep/gt_wt.nii.gz")}});
    }
    outputs.push_back({{"name", "crop"}, {"path", CasePath(c.id, "prep/crop.json")}});
    Add(kPrep, "prep", c.id, {},
        {{"outputs", std::move(outputs)},
         {"config", Sections({"mode", "data.modalities", "preprocess"})},
         {"case_dir", c.dir.string()}});
  }

  void AddClipLabel(const std::string& id) {
    Add(kClipLabel, "clip", id, {CaseKey(kPrep, id)},
        {{"outputs", OutputList({{"slices", CasePath(id, "clip/slices.json")}})},
         {"config", Sections({"mode", "data.modalities", "clip"})},
         {"source", SplitOf(id) == "valid" ? "gt" : "clip"}});
  }

  // Every labelled case's slice labels and volumes; the aug training also reads the raw CAM
  // post-processing (AMDA slices) of every train case.
  void AddClassifierTraining(const std::string& variant, const std::vector<std::string>& labelled,
                             const std::vector<std::string>& train) {
    std::vector<std::string> deps;
    if (variant == "aug") {
      for (const std::string& id : train) deps.push_back(CaseKey("cam_post_raw", id));
    }
    for (const std::string& id : labelled) deps.push_back(CaseKey(kClipLabel, id));
    for (const std::string& id : labelled) deps.push_back(CaseKey(kPrep, id));
    json config = variant == "aug"
                      ? Sections({"mode", "device", "precision", "data.modalities", "classifier",
                                  "amda.train_on"})
                      : Sections({"mode", "device", "precision", "data.modalities", "classifier"});
    Add("train_classifier_" + variant, "cam", std::nullopt, std::move(deps),
        {{"outputs", OutputList({{"model", "classifier/" + variant + "/model.pth"},
                                 {"log", "classifier/" + variant + "/train_log.json"}})},
         {"config", std::move(config)},
         {"variant", variant}});
  }

  void AddCam(const std::string& variant, const std::string& id) {
    const std::string dir = "cam_" + variant + "/";
    Add("cam_" + variant, "cam", id,
        {"train_classifier_" + variant, CaseKey(kPrep, id), CaseKey(kClipLabel, id)},
        {{"outputs", OutputList({{"cam", CasePath(id, dir + "cam.nii")},
                                 {"info", CasePath(id, dir + "info.json")}})},
         {"config",
          Sections({"mode", "device", "precision", "data.modalities", "classifier", "cam"})},
         {"variant", variant}});
  }

  void AddCamThreshold(const std::string& variant, const std::vector<std::string>& valid) {
    std::vector<std::string> deps;
    for (const std::string& id : valid) deps.push_back(CaseKey("cam_" + variant, id));
    for (const std::string& id : valid) deps.push_back(CaseKey(kPrep, id));
    Add("cam_threshold_" + variant, "reduce", std::nullopt, std::move(deps),
        {{"outputs", OutputList({{"threshold", "cam/" + variant + "/threshold.json"}})},
         {"config", Sections({"mode", "cam"})},
         {"variant", variant}});
  }

  void AddCamPost(const std::string& variant, const std::string& id) {
    const std::string dir = "cam_" + variant + "/";
    std::vector<std::string> deps = {CaseKey("cam_" + variant, id), CaseKey(kPrep, id),
                                     CaseKey(kClipLabel, id)};
    if (reference_) deps.push_back("cam_threshold_" + variant);
    json outputs = OutputList({{"mask", CasePath(id, dir + "mask.nii.gz")},
                               {"quality", CasePath(id, dir + "quality.json")}});
    if (variant == "raw") {
      outputs.push_back({{"name", "amda_slices"}, {"path", CasePath(id, "amda/slices.nii.gz")}});
      outputs.push_back({{"name", "amda_index"}, {"path", CasePath(id, "amda/slices.json")}});
    }
    Add(std::string(kCamPost) + "_" + variant, "cam", id, std::move(deps),
        {{"outputs", std::move(outputs)},
         {"config", Sections({"mode", "seed", "data.modalities", "classifier.image_size", "cam",
                              "amda", "debug"})},
         {"variant", variant}});
  }

  void AddSamLabel(const std::string& id) {
    Add(kSamLabel, "sam", id, {CaseKey("cam_post_aug", id), CaseKey(kPrep, id)},
        {{"outputs",
          OutputList({{"pseudo_label", CasePath(id, "sam/pseudo_label.nii.gz")},
                      {"pseudo_label_cropped", CasePath(id, "sam/pseudo_label_cropped.nii.gz")},
                      {"info", CasePath(id, "sam/info.json")}})},
         {"config", Sections({"mode", "device", "precision", "data.modalities", "sam", "debug"})}});
  }

  void AddStageQuality(const std::vector<std::string>& labelled,
                       const std::vector<std::string>& train) {
    std::vector<std::string> deps;
    for (const std::string& id : labelled) deps.push_back(CaseKey(kClipLabel, id));
    for (const char* stage : {"cam_post_raw", "cam_post_aug", "sam_label"}) {
      for (const std::string& id : train) deps.push_back(CaseKey(stage, id));
    }
    Add(kStageQuality, "reduce", std::nullopt, std::move(deps),
        {{"outputs", OutputList({{"report", "report/data/stages_1_8.json"}})},
         {"config", Sections({"mode", "clip.backend", "sam.backend"})}});
  }

  // Stage 9: one U-Net training. Round 1 learns the SAM pseudo-labels of the train split, round
  // r > 1 the round r-1 predictions of the cases S3F kept, the supervised baseline (round 0) the
  // GT; `train.labels: gt` makes every round learn the GT. Reference mode validates on the valid
  // split's GT.
  void AddUNetTraining(const std::string& variant, int round, const std::vector<std::string>& train,
                       const std::vector<std::string>& valid) {
    std::string labels_stage = std::string(kSamLabel), labels_artifact = "pseudo_label_cropped",
                kept_from;
    if (variant == "supervised" || At("train.labels") == "gt") {
      labels_stage = std::string(kPrep), labels_artifact = "gt";
    } else if (round > 1) {
      labels_stage = "predict_r" + std::to_string(round - 1);
      labels_artifact = "prediction_cropped";
      kept_from = "s3f_rank_r" + std::to_string(round - 1);
    }
    std::vector<std::string> deps;
    if (!kept_from.empty()) deps.push_back(kept_from);
    if (labels_stage != kPrep) {
      for (const std::string& id : train) deps.push_back(CaseKey(labels_stage, id));
    }
    for (const std::string& id : train) deps.push_back(CaseKey(kPrep, id));
    if (reference_) {
      for (const std::string& id : valid) deps.push_back(CaseKey(kPrep, id));
    }
    Add("train_unet_" + variant, "trainer", std::nullopt, std::move(deps),
        {{"outputs", OutputList({{"model", "unet/" + variant + "/model.pth"},
                                 {"log", "unet/" + variant + "/train_log.json"}})},
         {"config", Sections({"mode", "device", "precision", "data.modalities", "unet", "train",
                              "inference"})},
         {"variant", variant},
         {"labels_stage", labels_stage},
         {"labels_artifact", labels_artifact},
         {"kept_from", kept_from},
         {"valid_cases", reference_ ? valid : std::vector<std::string>{}}},
        round);
  }

  // Stage 10: the prediction of one case. Train cases of rounds before the last become the next
  // round's labels (largest component per inference.largest_component_pseudo); test cases are
  // evaluated.
  void AddPredict(const std::string& variant, int round, const std::string& id, bool pseudo_label) {
    const std::string dir = "unet_" + variant + "/";
    Add("predict_" + variant, "trainer", id, {"train_unet_" + variant, CaseKey(kPrep, id)},
        {{"outputs",
          OutputList({{"prediction", CasePath(id, dir + "prediction.nii.gz")},
                      {"prediction_cropped", CasePath(id, dir + "prediction_cropped.nii.gz")},
                      {"info", CasePath(id, dir + "prediction.json")}})},
         {"config",
          Sections({"mode", "device", "precision", "data.modalities", "unet", "inference"})},
         {"variant", variant},
         {"purpose", pseudo_label ? "pseudo_label" : "test"}},
        round);
  }

  // Stage 11: SAM prompted by a round's prediction, and its Dice with that prediction.
  void AddS3fScore(int round, const std::string& id) {
    const std::string r = "r" + std::to_string(round);
    Add("s3f_score_" + r, "sam", id, {CaseKey("predict_" + r, id), CaseKey(kPrep, id)},
        {{"outputs", OutputList({{"score", CasePath(id, "s3f_" + r + "/score.json")}})},
         {"config", Sections({"mode", "device", "precision", "data.modalities", "sam", "debug"})},
         {"variant", r}},
        round);
  }

  // Stage 12: the ranking of a round's scores and the cases kept for the next round.
  void AddS3fRank(int round, const std::vector<std::string>& train) {
    const std::string r = "r" + std::to_string(round);
    std::vector<std::string> deps;
    for (const std::string& id : train) deps.push_back(CaseKey("s3f_score_" + r, id));
    Add("s3f_rank_" + r, "reduce", std::nullopt, std::move(deps),
        {{"outputs", OutputList({{"kept", "s3f/" + r + "/kept.json"}})},
         {"config", Sections({"mode", "s3f"})},
         {"variant", r}},
        round);
  }

  // Stage 13: metrics of one set of test-split masks against the GT. Returns the task key.
  std::string AddEvaluation(const std::string& variant, int round, const std::string& mask_stage,
                            const std::string& mask_artifact,
                            const std::vector<std::string>& test) {
    std::vector<std::string> deps;
    for (const std::string& id : test) deps.push_back(CaseKey(mask_stage, id));
    for (const std::string& id : test) deps.push_back(CaseKey(kPrep, id));
    Add("evaluate_" + variant, "reduce", std::nullopt, std::move(deps),
        {{"outputs", OutputList({{"metrics", "eval/" + variant + ".json"}})},
         {"config", Sections({"mode", "evaluation", "clip.backend", "sam.backend"})},
         {"variant", variant},
         {"mask_stage", mask_stage},
         {"mask_artifact", mask_artifact}},
        round);
    return "evaluate_" + variant;
  }

  void AddEvaluationSummary(const std::vector<std::string>& evaluations) {
    Add("evaluation_summary", "reduce", std::nullopt, evaluations,
        {{"outputs", OutputList({{"report", "report/data/evaluation.json"}})},
         {"config",
          Sections({"mode", "evaluation", "s3f", "baselines", "clip.backend", "sam.backend"})}});
  }

  const json config_json_;
  const bool reference_;
  const std::vector<std::string> modalities_;
  const int max_attempts_;
  const std::vector<PlannedCase> cases_;
  const std::map<std::string, std::string> split_of_;
  std::vector<TaskSpec> tasks_;
};

}  // namespace

std::string_view StageUnitName(StageUnit unit) {
  switch (unit) {
    case StageUnit::kCase:
      return "case";
    case StageUnit::kGlobal:
      return "global";
    case StageUnit::kReduce:
      return "reduce";
  }
  return "?";
}

const std::vector<StageDefinition>& MethodStages() {
  static const std::vector<StageDefinition> stages = {
      {"prep", "prep", StageUnit::kCase, false,
       "stage 0: brain box crop, clipping and normalization, brain mask, GT (every case)"},
      {"clip_label", "clip", StageUnit::kCase, false,
       "stage 1: per-slice tumor/normal labels from CLIP (reference mode: valid cases from GT)"},
      {"train_classifier_raw", "cam", StageUnit::kGlobal, false,
       "stage 2: slice classifier trained on the CLIP labels"},
      {"cam_raw", "cam", StageUnit::kCase, false, "stage 3: LayerCAM volume of the classifier"},
      {"cam_threshold_raw", "reduce", StageUnit::kReduce, true,
       "stage 4: CAM threshold searched on the valid cases' GT (reference mode)"},
      {"cam_post_raw", "cam", StageUnit::kCase, false,
       "stage 5: binary CAM (threshold, opening, small components) and the AMDA slice set"},
      {"train_classifier_aug", "cam", StageUnit::kGlobal, false,
       "stage 6: classifier retrained on the AMDA-masked slices"},
      {"cam_aug", "cam", StageUnit::kCase, false, "stage 7: LayerCAM of the retrained classifier"},
      {"cam_threshold_aug", "reduce", StageUnit::kReduce, true,
       "stage 7: CAM threshold of the retrained classifier (reference mode)"},
      {"cam_post_aug", "cam", StageUnit::kCase, false, "stage 7: enhanced binary CAM"},
      {"sam_label", "sam", StageUnit::kCase, false,
       "stage 8: SAM pseudo-label prompted by the enhanced CAM"},
      {"stage_quality", "reduce", StageUnit::kReduce, false,
       "quality summary of stages 1-8 (GT used for logs only)"},
      {"train_unet", "trainer", StageUnit::kGlobal, false,
       "stage 9: 3D U-Net trained on a round's labels (_r1: SAM, _rN: S3F-kept predictions; "
       "_supervised: GT baseline)",
       true},
      {"predict", "trainer", StageUnit::kCase, false,
       "stage 10: sliding-window prediction (train cases: next round's labels; test cases)", true},
      {"s3f_score", "sam", StageUnit::kCase, false,
       "stage 11: Dice between SAM prompted by the prediction and the prediction", true},
      {"s3f_rank", "reduce", StageUnit::kReduce, false,
       "stage 12: rank the scores, keep s3f.keep_ratio of the cases for the next round", true},
      {"evaluate", "reduce", StageUnit::kReduce, false,
       "stage 13: Dice, HD95, HD on the test split (_rN, _supervised, _sam_only)", true},
      {"evaluation_summary", "reduce", StageUnit::kReduce, false,
       "every round and baseline side by side (report/data/evaluation.json)"},
  };
  return stages;
}

StatusOr<std::vector<TaskSpec>> PlanMethodStages(const Config& config,
                                                 const MethodPlanInputs& inputs) {
  std::vector<PlannedCase> cases = inputs.cases;
  std::sort(cases.begin(), cases.end(),
            [](const PlannedCase& a, const PlannedCase& b) { return a.id < b.id; });
  std::vector<std::string> ids;
  for (PlannedCase& c : cases) {
    if (c.id.empty()) return InvalidArgumentError("a planned case has an empty id");
    if (!ids.empty() && ids.back() == c.id) {
      return InvalidArgumentError("case " + c.id + " is listed twice");
    }
    ids.push_back(c.id);
    std::error_code ec;
    fs::path absolute = fs::absolute(c.dir, ec);
    if (!ec) c.dir = absolute.lexically_normal();
  }
  RETURN_IF_ERROR(ValidateDisjoint(inputs.splits));
  SplitCheck check = CheckSplits(inputs.splits, ids);
  if (!check.unknown_ids.empty()) {
    return InvalidArgumentError("the splits name case(s) that are not planned: " +
                                JoinIds(check.unknown_ids));
  }
  std::map<std::string, std::string> split_of;
  for (const std::string& id : inputs.splits.train) split_of[id] = "train";
  for (const std::string& id : inputs.splits.valid) split_of[id] = "valid";
  for (const std::string& id : inputs.splits.test) split_of[id] = "test";

  if (inputs.splits.train.empty()) {
    return FailedPreconditionError("no train case: the method needs at least one (" +
                                   std::to_string(cases.size()) + " case(s) planned)");
  }
  if (config.GetString("mode") == "reference") {
    if (inputs.splits.valid.empty()) {
      return FailedPreconditionError(
          "mode reference selects on the valid split, and it has no case (raise "
          "data.splits.valid_fraction or list cases in data.splits.valid_csv)");
    }
    std::vector<std::string> without_seg;
    for (const PlannedCase& c : cases) {
      auto it = split_of.find(c.id);
      if (!c.has_seg && it != split_of.end() && it->second != "test") without_seg.push_back(c.id);
    }
    if (!without_seg.empty()) {
      return FailedPreconditionError(
          "mode reference needs the ground truth of every train and valid case; no seg file for " +
          JoinIds(without_seg));
    }
  }
  if (config.GetBool("baselines.supervised") || config.GetString("train.labels") == "gt") {
    std::vector<std::string> without_seg;
    for (const PlannedCase& c : cases) {
      auto it = split_of.find(c.id);
      if (!c.has_seg && it != split_of.end() && it->second == "train") without_seg.push_back(c.id);
    }
    if (!without_seg.empty()) {
      return FailedPreconditionError(
          std::string(config.GetBool("baselines.supervised") ? "baselines.supervised"
                                                             : "train.labels: gt") +
          " trains on the ground truth of every train case; no seg file for " +
          JoinIds(without_seg));
    }
  }
  return PlanBuilder(config, std::move(cases), std::move(split_of)).Build();
}

std::string TaskPlanJson(const std::vector<TaskSpec>& tasks) {
  std::string out = "{\"tasks\": [";
  for (size_t i = 0; i < tasks.size(); ++i) {
    const TaskSpec& t = tasks[i];
    nlohmann::ordered_json task;
    task["key"] = t.task_key;
    task["stage"] = t.stage;
    task["role"] = t.role;
    task["case"] = t.case_id ? nlohmann::ordered_json(*t.case_id) : nullptr;
    task["round"] = t.round;
    task["max_attempts"] = t.max_attempts;
    task["deps"] = t.depends_on;
    task["params"] = nlohmann::ordered_json::parse(t.params_json);
    out += (i ? ",\n" : "\n") + task.dump();
  }
  out += "\n]}\n";
  return out;
}

std::string StageFamily(std::string_view stage) {
  for (const StageDefinition& definition : MethodStages()) {
    if (definition.variants && stage.size() > definition.name.size() + 1 &&
        stage.substr(0, definition.name.size() + 1) == definition.name + "_") {
      return definition.name;
    }
  }
  return std::string(stage);
}

std::vector<std::pair<std::string, int>> TaskCountsByStage(const std::vector<TaskSpec>& tasks) {
  std::map<std::string, int> counts;
  std::map<std::string, int> first_round;  // orders a family's variants by round, then name
  for (const TaskSpec& t : tasks) {
    ++counts[t.stage];
    first_round.emplace(t.stage, t.round == 0 ? 1 << 30 : t.round);
  }
  std::vector<std::pair<std::string, int>> out;
  for (const StageDefinition& stage : MethodStages()) {
    if (!stage.variants) {
      out.emplace_back(stage.name, counts[stage.name]);
      counts.erase(stage.name);
      continue;
    }
    std::vector<std::string> variants;
    for (const auto& [name, n] : counts) {
      if (StageFamily(name) == stage.name && name != stage.name) variants.push_back(name);
    }
    std::stable_sort(variants.begin(), variants.end(),
                     [&](const auto& a, const auto& b) { return first_round[a] < first_round[b]; });
    if (variants.empty()) out.emplace_back(stage.name, 0);
    for (const std::string& name : variants) {
      out.emplace_back(name, counts[name]);
      counts.erase(name);
    }
  }
  for (const auto& [stage, n] : counts) out.emplace_back(stage, n);  // not a method stage
  return out;
}

}  // namespace clisc
