// The CLISC method's stages 0-13 (METHOD.md, "Stages and their granularity") as coordinator tasks:
// which tasks a dataset and a config give, their dependencies, and the params each role reads.
//
// Stages 0-8 have round 0; stages 9-13 run once per self-training round r (s3f.rounds), named
// `<stage>_r<r>` with round r, plus the baselines (`_supervised`, `_sam_only`, round 0).
// Per-case tasks are keyed `<stage>/<case id>`, global tasks by the stage name alone. Params hold
// the outputs the task must write (name and path under the run's artifact store), the config
// sections the stage reads (cut out of the effective config, nested as in the YAML, so a role can
// rebuild a typed Config from them) and a few extras (split, case_dir, source, variant). The plan
// is a pure function of the config and the case list: the same inputs give a byte-identical plan
// JSON.
//
// Who gets which tasks: prep runs on every planned case; the slice labels, CAM, AMDA and SAM
// stages on the train split; reference mode also labels and CAMs the valid split, from which
// the CAM threshold reduce tasks (reference mode only) select the threshold on ground truth.
// The SAM-only baseline (unsupervised mode) runs stages 1-8 on the test split as inference.
// Every round trains the U-Net on the train split and predicts the test split; rounds before
// the last also predict the train split, score it with SAM and rank it (S3F).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/splits.h"
#include "common/status.h"
#include "coordinator/ledger_types.h"

namespace clisc {

// kCase: one task per case; kGlobal: one task over all cases (training); kReduce: one task that
// combines every case's results into a small document (threshold, report).
enum class StageUnit { kCase, kGlobal, kReduce };
std::string_view StageUnitName(StageUnit unit);  // "case", "global", "reduce"

struct StageDefinition {
  std::string name;  // the stage, and the key prefix of its tasks
  std::string role;  // the worker role that runs it: prep, clip, cam, reduce, sam
  StageUnit unit = StageUnit::kCase;
  bool reference_only = false;  // planned only in `mode: reference`
  std::string doc;              // one line
  // Tasks carry the stage name plus a variant suffix: a round (`train_unet_r2`) or a baseline
  // (`train_unet_supervised`). The task's round field holds the round (0 for baselines).
  bool variants = false;
};

// The stages in plan order (a stage's dependencies are all earlier in the table).
const std::vector<StageDefinition>& MethodStages();

struct PlannedCase {
  std::string id;
  std::filesystem::path dir;  // the case folder (made absolute in the plan)
  bool has_seg = false;       // a seg file exists: prep writes the GT (quality logs, reference)
};

struct MethodPlanInputs {
  std::vector<PlannedCase> cases;  // every case to prepare; ids unique
  Splits splits;                   // ids of `cases`; a case in no split gets only prep
};

// The splits of `ids` the config asks for: `seeded` shuffles them with data.splits.seed and cuts
// them by the fractions; `csv` reads the three CSV files (a null valid_csv is an empty valid
// split). INVALID_ARGUMENT when a CSV names an id that is not among `ids` (naming them) or a case
// is in two splits. Ids in no split are allowed; CheckSplits(splits, ids) lists them.
StatusOr<Splits> SplitsForConfig(const Config& config, const std::vector<std::string>& ids);

// The tasks of stages 0-13, dependencies always before their dependents. INVALID_ARGUMENT for
// repeated case ids or split ids that are not cases; FAILED_PRECONDITION when the splits leave
// no train case, or (reference mode) no valid case or a train/valid case without a seg file.
StatusOr<std::vector<TaskSpec>> PlanMethodStages(const Config& config,
                                                 const MethodPlanInputs& inputs);

// The plan as the JSON `clisc coordinator --plan` reads, one task per line:
// ParseTaskPlan(TaskPlanJson(tasks)) gives `tasks` back (params in canonical form).
std::string TaskPlanJson(const std::vector<TaskSpec>& tasks);

struct RejectedCase {
  std::string id;
  std::string reason;
};

// Everything `clisc plan` (and `clisc run`) needs from one dataset folder.
struct MethodPlan {
  std::filesystem::path data_dir;       // absolute
  std::vector<PlannedCase> cases;       // planned cases, sorted by id
  Splits splits;                        // restricted to the planned cases, in the config's order
  std::vector<std::string> unassigned;  // planned cases in no split (prep only), sorted
  std::vector<RejectedCase> rejected;   // discovered but not planned, sorted by id
  std::vector<std::string> warnings;    // discovery warnings about the data folder
  std::vector<TaskSpec> tasks;
};

// Discovers the cases under `data_dir` (names only, no volume is read), splits them per the
// config, and plans stages 0-13. A case with a discovery problem or without a file for one of
// data.modalities is rejected with its reason (after the split, so one broken case does not move
// the others between splits). NOT_FOUND / INVALID_ARGUMENT for a missing or non-folder data_dir,
// FAILED_PRECONDITION when no case can be planned, and the errors of SplitsForConfig and
// PlanMethodStages.
StatusOr<MethodPlan> PlanFromDataset(const Config& config, const std::filesystem::path& data_dir);

// The table entry a task stage belongs to: "train_unet" for "train_unet_r2"; the name itself for
// a stage without variants.
std::string StageFamily(std::string_view stage);

// Task counts per stage, in MethodStages() order (stages without tasks included, count 0); a
// family with variants lists each variant (round order, baselines last).
std::vector<std::pair<std::string, int>> TaskCountsByStage(const std::vector<TaskSpec>& tasks);

}  // namespace clisc
