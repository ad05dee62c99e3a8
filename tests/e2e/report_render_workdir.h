// A small fake workdir for the run-report tests: three test cases with tiny cropped volumes
// (FLAIR, brain mask, GT, round-1 prediction, SAM pseudo-label), eval/<variant>.json and
// report/data/evaluation.json in exactly the shape workers/roles/evaluation_reduce.cc writes,
// report/data/stages_1_8.json like the stage_quality reduce step's, and a ledger with finished
// tasks (one of them retried once).
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "common/metrics_summary.h"
#include "common/volume.h"
#include "common/volume_io.h"
#include "coordinator/clock.h"
#include "coordinator/ledger.h"

namespace clisc::testing {

namespace fs = std::filesystem;

inline const std::vector<std::string> kFakeTestCases = {"case_001", "case_002", "case_003"};

// The config text carries markup so the tests can check that the page escapes it.
inline constexpr char kFakeConfigYaml[] =
    "mode: unsupervised\n"
    "data:\n  modalities: [flair]\n"
    "clip:\n  backend: heuristic\n"
    "sam:\n  backend: heuristic\n"
    "note: \"<script>alert('x')</script> & more\"\n";

inline void WriteText(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

// A cube of side `side` at (x0, y0, z0) on a 24x20x8 grid with 1.0 x 1.0 x 2.0 mm voxels.
inline LabelVolume Cube(int x0, int y0, int z0, int side) {
  Geometry geometry;
  geometry.spacing = {1.0, 1.0, 2.0};
  LabelVolume mask(Dims{24, 20, 8}, 0, geometry);
  for (int z = z0; z < z0 + side / 2; ++z) {
    for (int y = y0; y < y0 + side; ++y) {
      for (int x = x0; x < x0 + side; ++x) mask.at(x, y, z) = 1;
    }
  }
  return mask;
}

// eval/<variant>.json as RunEvaluation writes it; returns the document.
inline nlohmann::json WriteFakeEvaluation(const fs::path& w, const std::string& variant,
                                          const std::string& title, int round,
                                          const std::string& mask_stage,
                                          const std::string& mask_artifact) {
  std::vector<MaskMetrics> evaluated;
  nlohmann::json per_case = nlohmann::json::array();
  for (const std::string& id : kFakeTestCases) {
    auto pred = ReadVolume<uint8_t>(variant == "sam_only"
                                        ? w / "cases" / id / "sam" / "pseudo_label_cropped.nii.gz"
                                        : w / "cases" / id / ("unet_" + variant) /
                                              "prediction_cropped.nii.gz");
    auto gt = ReadVolume<uint8_t>(w / "cases" / id / "prep" / "gt_wt.nii.gz");
    EXPECT_TRUE(pred.ok() && gt.ok());
    auto metrics = ComputeMaskMetrics(*pred, *gt);
    EXPECT_TRUE(metrics.ok()) << metrics.status().ToString();
    evaluated.push_back(*metrics);
    nlohmann::json row = ToJson(*metrics);
    row["case"] = id;
    per_case.push_back(std::move(row));
  }
  nlohmann::json doc = {{"stage", "evaluate_" + variant},
                        {"variant", variant},
                        {"title", title},
                        {"round", round},
                        {"mode", "unsupervised"},
                        {"masks", mask_stage + "/" + mask_artifact},
                        {"backends", {{"clip", "heuristic"}, {"sam", "heuristic"}}},
                        {"hd95_definition", "medpy"},
                        {"grid", "cropped (brain box), image spacing in mm"},
                        {"summary", ToJson(SummarizeMetrics(evaluated))},
                        {"cases", per_case},
                        {"without_ground_truth", nlohmann::json::array()},
                        {"errors", nlohmann::json::array()}};
  WriteText(w / "eval" / (variant + ".json"), doc.dump(2));
  return doc;
}

// The evaluation_summary row of one eval document, as RunEvaluationSummary builds it.
inline nlohmann::json SummaryRow(const nlohmann::json& doc) {
  const nlohmann::json& s = doc["summary"];
  const nlohmann::json& ours = s["ours"];
  return {{"variant", doc["variant"]},
          {"title", doc["title"]},
          {"round", doc["round"]},
          {"cases", s.value("cases", 0)},
          {"dice", ours["dice"]},
          {"hd95_mm", ours["hd95_mm"]},
          {"hd95_monai_mm", ours["hd95_monai_mm"]},
          {"hd_mm", ours["hd_mm"]},
          {"empty", s["empty"]},
          {"reference_convention",
           {{"dice", s["reference"]["dice"]}, {"hd95_voxels", s["reference"]["hd95_voxels"]}}}};
}

inline void WriteFakeLedger(const fs::path& w) {
  FakeClock clock;
  auto ledger = Ledger::Open((w / "ledger.db").string(), &clock);
  ASSERT_TRUE(ledger.ok()) << ledger.status().ToString();
  auto run = (*ledger)->OpenRun("clisc", kFakeConfigYaml, "fingerprint");
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  std::vector<TaskSpec> specs;
  for (const std::string& id : kFakeTestCases) {
    TaskSpec prep;
    prep.task_key = "prep/" + id;
    prep.stage = "prep";
    prep.case_id = id;
    prep.role = "prep";
    specs.push_back(prep);
  }
  TaskSpec evaluate;
  evaluate.task_key = "evaluate_r1";
  evaluate.stage = "evaluate_r1";
  evaluate.role = "reduce";
  for (const std::string& id : kFakeTestCases) evaluate.depends_on.push_back("prep/" + id);
  specs.push_back(evaluate);
  auto upserted = (*ledger)->UpsertTasks(*run, specs);
  ASSERT_TRUE(upserted.ok()) << upserted.status().ToString();
  bool retried = false;
  for (TaskId task : upserted->task_ids) {
    auto lease = (*ledger)->Lease({task, "worker-0", std::nullopt});
    ASSERT_TRUE(lease.ok()) << lease.status().ToString();
    clock.AdvanceMs(1500);
    if (!retried) {  // the first task fails once and is retried
      retried = true;
      FailureReport failure{task,
                            lease->attempt,
                            "worker-0",
                            UnavailableError("flaky disk"),
                            /*retryable=*/true,
                            /*retry_delay_ms=*/0};
      ASSERT_TRUE((*ledger)->Fail(failure).ok());
      lease = (*ledger)->Lease({task, "worker-0", std::nullopt});
      ASSERT_TRUE(lease.ok()) << lease.status().ToString();
      clock.AdvanceMs(1500);
    }
    Completion done{task, lease->attempt, "worker-0", "{}", {}};
    ASSERT_TRUE((*ledger)->Complete(done).ok());
  }
  ASSERT_TRUE((*ledger)->SetRunState(*run, RunState::kSucceeded, "done").ok());
}

// Builds the workdir; without evaluation it stops where a run that failed after stages 1-8
// would: no eval/, no report/data/evaluation.json.
inline void BuildFakeWorkdir(const fs::path& w, bool with_evaluation = true) {
  fs::create_directories(w);
  WriteText(w / "config.yaml", kFakeConfigYaml);
  WriteText(w / "run.json", nlohmann::json{{"data", "/data/brats <demo>"},
                                           {"run", "clisc"},
                                           {"created", "2024-01-01T00:00:00Z"},
                                           {"splits", {{"train", 4}, {"valid", 0}, {"test", 3}}}}
                                .dump());
  int shift = 0;
  for (const std::string& id : kFakeTestCases) {
    const fs::path prep = w / "cases" / id / "prep";
    fs::create_directories(prep);
    LabelVolume gt = Cube(6, 5, 2, 8);
    FloatVolume flair = ConvertVolume<float>(gt);
    LabelVolume brain = gt.LikeThis<uint8_t>(0);
    for (int64_t z = 0; z < 8; ++z) {
      for (int64_t y = 1; y < 19; ++y) {
        for (int64_t x = 1; x < 23; ++x) {
          brain.at(x, y, z) = 1;
          flair.at(x, y, z) = 0.05f * float(x + y) + 2.0f * gt.at(x, y, z);
        }
      }
    }
    ASSERT_TRUE(WriteVolume(flair, prep / "flair.nii").ok());
    ASSERT_TRUE(WriteVolume(gt, prep / "gt_wt.nii.gz").ok());
    ASSERT_TRUE(WriteVolume(brain, prep / "brain_mask.nii.gz").ok());
    fs::create_directories(w / "cases" / id / "unet_r1");
    fs::create_directories(w / "cases" / id / "sam");
    ASSERT_TRUE(WriteVolume(Cube(6 + shift, 5, 2, 8),
                            w / "cases" / id / "unet_r1" / "prediction_cropped.nii.gz")
                    .ok());
    ASSERT_TRUE(WriteVolume(Cube(7, 6 + shift, 2, 6),
                            w / "cases" / id / "sam" / "pseudo_label_cropped.nii.gz")
                    .ok());
    shift += 2;
  }
  nlohmann::json stages = {
      {"mode", "unsupervised"},
      {"backends",
       {{"clip", "heuristic"},
        {"clip_detail", "heuristic"},
        {"sam", "heuristic"},
        {"sam_detail", "heuristic"}}},
      {"summary",
       {{"slice_label_accuracy",
         {{"cases", 4}, {"mean", 0.9125}, {"median", 0.9}, {"min", 0.85}, {"max", 1.0}}},
        {"slice_label_raw_accuracy",
         {{"cases", 4}, {"mean", 0.8}, {"median", 0.8}, {"min", 0.7}, {"max", 0.9}}},
        {"cam_dice_raw",
         {{"cases", 4}, {"mean", 0.4321}, {"median", 0.43}, {"min", 0.3}, {"max", 0.5}}},
        {"cam_dice_enhanced",
         {{"cases", 4}, {"mean", 0.5432}, {"median", 0.54}, {"min", 0.4}, {"max", 0.6}}},
        {"sam_dice",
         {{"cases", 4}, {"mean", 0.6543}, {"median", 0.65}, {"min", 0.5}, {"max", 0.8}}},
        {"kept_slices", 40},
        {"dropped_slices", 3},
        {"empty_cam_cases", 0},
        {"slices_without_prompts", 1}}},
      {"cases", nlohmann::json::array()}};
  WriteText(w / "report" / "data" / "stages_1_8.json", stages.dump(2));
  WriteFakeLedger(w);
  if (!with_evaluation) return;
  const nlohmann::json r1 = WriteFakeEvaluation(w, "r1", "CLISC round 1 <r1> & \"co\"", 1,
                                                "predict_r1", "prediction_cropped");
  const nlohmann::json sam = WriteFakeEvaluation(
      w, "sam_only", "SAM pseudo-labels (zero-shot input)", 0, "sam_label", "pseudo_label_cropped");
  nlohmann::json evaluation = {{"mode", "unsupervised"},
                               {"backends", {{"clip", "heuristic"}, {"sam", "heuristic"}}},
                               {"rounds", 1},
                               {"keep_ratio", 0.5},
                               {"final", "r1"},
                               {"note", "Dice over test cases with a non-empty GT"},
                               {"rows", {SummaryRow(r1), SummaryRow(sam)}}};
  WriteText(w / "report" / "data" / "evaluation.json", evaluation.dump(2));
}

}  // namespace clisc::testing
