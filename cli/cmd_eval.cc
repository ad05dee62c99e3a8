// `clisc eval --pred FILE_OR_DIR --gt FILE_OR_DIR [--json] [--hd95 medpy|monai|both]
// [--labels wt] [--threads N]`: Dice and HD95 of label volumes against ground truth, per case and
// summarised, with empty masks counted apart and the CLISC reference's convention alongside.
//
// Directories are paired by case id: a file name without .nii/.nii.gz and without a trailing
// _seg/_pred (or -seg/-pred), so BraTS20_Training_001_pred.nii.gz meets
// BraTS20_Training_001_seg.nii.gz. A folder inside the directory counts as a case folder when it
// holds a file whose id is the folder's name (BraTS: <case>/<case>_seg.nii.gz).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "cli/args.h"
#include "cli/command.h"
#include "common/metrics.h"
#include "common/metrics_summary.h"
#include "common/parallel_for.h"
#include "common/status.h"
#include "common/volume.h"
#include "common/volume_io.h"

namespace clisc::cli {
namespace {

namespace fs = std::filesystem;

// ---- Finding and pairing the files. ----

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The case id of a NIfTI file name, or nullopt when the name is not NIfTI.
std::optional<std::string> CaseIdOf(const std::string& file_name) {
  std::string stem;
  if (EndsWith(file_name, ".nii.gz")) {
    stem = file_name.substr(0, file_name.size() - 7);
  } else if (EndsWith(file_name, ".nii")) {
    stem = file_name.substr(0, file_name.size() - 4);
  } else {
    return std::nullopt;
  }
  for (const char* suffix : {"_seg", "_pred", "-seg", "-pred"}) {
    if (EndsWith(stem, suffix) && stem.size() > std::string(suffix).size()) {
      return stem.substr(0, stem.size() - std::string(suffix).size());
    }
  }
  if (stem.empty()) return std::nullopt;
  return stem;
}

// The label files of one side (--pred or --gt), by case id.
struct Side {
  bool single_file = false;
  std::map<std::string, fs::path> files;
  std::map<std::string, std::vector<fs::path>> duplicates;  // ids claimed by several files
  std::vector<std::string> warnings;
};

void AddFile(Side& side, const std::string& id, const fs::path& path) {
  auto [it, inserted] = side.files.emplace(id, path);
  if (!inserted) {
    auto& dup = side.duplicates[id];
    if (dup.empty()) dup.push_back(it->second);
    dup.push_back(path);
  }
}

std::vector<fs::directory_entry> SortedEntries(const fs::path& dir,
                                               std::vector<std::string>& warn) {
  std::vector<fs::directory_entry> entries;
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  if (ec) {
    warn.push_back("cannot list " + dir.string() + ": " + ec.message());
    return entries;
  }
  for (; it != end; it.increment(ec)) {
    if (ec) {
      warn.push_back("error while listing " + dir.string() + ": " + ec.message());
      break;
    }
    entries.push_back(*it);
  }
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return a.path() < b.path(); });
  return entries;
}

StatusOr<Side> CollectSide(const fs::path& root, const char* flag) {
  Side side;
  std::error_code ec;
  const fs::file_status status = fs::status(root, ec);
  if (ec || !fs::exists(status)) {
    return NotFoundError(std::string("--") + flag + ": " + root.string() + " does not exist");
  }
  if (fs::is_regular_file(status)) {
    const auto id = CaseIdOf(root.filename().string());
    if (!id) {
      return InvalidArgumentError(std::string("--") + flag + ": " + root.string() +
                                  " is not a .nii or .nii.gz file");
    }
    side.single_file = true;
    side.files[*id] = root;
    return side;
  }
  if (!fs::is_directory(status)) {
    return InvalidArgumentError(std::string("--") + flag + ": " + root.string() +
                                " is neither a file nor a directory");
  }
  for (const fs::directory_entry& entry : SortedEntries(root, side.warnings)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file(ec)) {
      if (const auto id = CaseIdOf(name)) AddFile(side, *id, entry.path());
    } else if (entry.is_directory(ec)) {
      // A case folder: the files in it whose id is the folder's name (BraTS <case>_seg.nii.gz);
      // its other files (the modalities) are not labels.
      for (const fs::directory_entry& inner : SortedEntries(entry.path(), side.warnings)) {
        const auto id = CaseIdOf(inner.path().filename().string());
        if (id && *id == name && inner.is_regular_file(ec)) AddFile(side, *id, inner.path());
      }
    }
  }
  return side;
}

struct CaseJob {
  std::string id;
  fs::path pred, gt;
  std::string error;  // set when the case cannot be evaluated before reading anything
};

std::string Join(const std::vector<fs::path>& paths) {
  std::string out;
  for (const auto& p : paths) out += (out.empty() ? "" : ", ") + p.string();
  return out;
}

std::vector<CaseJob> PairCases(const Side& pred, const Side& gt) {
  std::vector<CaseJob> jobs;
  if (pred.single_file && gt.single_file) {
    // Two files name one case, whatever their ids.
    jobs.push_back(
        {pred.files.begin()->first, pred.files.begin()->second, gt.files.begin()->second, ""});
    return jobs;
  }
  std::map<std::string, CaseJob> by_id;
  for (const auto& [id, path] : pred.files) by_id[id].pred = path;
  for (const auto& [id, path] : gt.files) by_id[id].gt = path;
  for (auto& [id, job] : by_id) {
    job.id = id;
    // With a single file on one side, only that case is asked for.
    if (pred.single_file && !pred.files.count(id)) continue;
    if (gt.single_file && !gt.files.count(id)) continue;
    if (pred.duplicates.count(id)) {
      job.error = "several prediction files for this case: " + Join(pred.duplicates.at(id));
    } else if (gt.duplicates.count(id)) {
      job.error = "several ground-truth files for this case: " + Join(gt.duplicates.at(id));
    } else if (job.gt.empty()) {
      job.error = "no ground truth for prediction " + job.pred.string();
    } else if (job.pred.empty()) {
      job.error = "no prediction for ground truth " + job.gt.string();
    }
    jobs.push_back(job);
  }
  return jobs;
}

// ---- Evaluating. ----

// Whole tumour: every voxel whose label is > 0.
Volume<uint8_t> WholeTumour(const Volume<float>& labels) {
  Volume<uint8_t> mask = labels.LikeThis<uint8_t>();
  for (size_t i = 0; i < mask.voxels().size(); ++i) mask[i] = labels[i] > 0.0f;
  return mask;
}

StatusOr<MaskMetrics> EvaluateCase(const CaseJob& job) {
  // Labels of any integer or float type read as float, which holds every BraTS label exactly.
  ASSIGN_OR_RETURN(const Volume<float> pred, ReadVolume<float>(job.pred));
  ASSIGN_OR_RETURN(const Volume<float> gt, ReadVolume<float>(job.gt));
  if (!(pred.size() == gt.size())) {
    auto text = [](const Dims& d) {
      return std::to_string(d.x) + "x" + std::to_string(d.y) + "x" + std::to_string(d.z);
    };
    return InvalidArgumentError("prediction is " + text(pred.size()) + " voxels but ground truth " +
                                text(gt.size()));
  }
  return ComputeMaskMetrics(WholeTumour(pred), WholeTumour(gt));
}

struct CaseResult {
  CaseJob job;
  std::optional<MaskMetrics> metrics;
  std::string error;
};

std::vector<CaseResult> EvaluateAll(const std::vector<CaseJob>& jobs, int threads) {
  std::vector<CaseResult> results(jobs.size());
  ParallelFor(jobs.size(), threads, [&](size_t i) {
    CaseResult& r = results[i];
    r.job = jobs[i];
    if (!jobs[i].error.empty()) {
      r.error = jobs[i].error;
      return;
    }
    auto m = EvaluateCase(jobs[i]);
    if (m.ok()) {
      r.metrics = *m;
    } else {
      r.error = m.status().ToString();
    }
  });
  return results;
}

// ---- Reporting. ----

struct Columns {
  bool medpy = true, monai = true;
};

std::string Cell(const Metric& m, const char* format) {
  if (std::isnan(m.value)) return "-";
  if (std::isinf(m.value)) return m.value > 0 ? "inf" : "-inf";
  char buf[32];
  std::snprintf(buf, sizeof(buf), format, m.value);
  return buf;
}

std::string Number(double v, const char* format) {
  if (std::isnan(v)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof(buf), format, v);
  return buf;
}

// Prints aligned columns: text columns (the first, and the last when `last_is_text`) to the
// left, numbers to the right.
void PrintRows(const std::vector<std::vector<std::string>>& rows, bool last_is_text = false) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    width.resize(std::max(width.size(), row.size()), 0);
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      const std::string pad(width[c] - row[c].size(), ' ');
      const bool left = c == 0 || (last_is_text && c + 1 == row.size());
      line += (left ? row[c] + pad : pad + row[c]) + (c + 1 < row.size() ? "  " : "");
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::cout << line << "\n";
  }
}

void PrintTable(const std::vector<CaseResult>& results, const MetricsSummary& s,
                const Columns& columns, int errors) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header = {"case", "status", "pred vox", "gt vox", "dice"};
  if (columns.medpy) header.push_back("hd95 mm");
  if (columns.monai) header.push_back("hd95 monai mm");
  header.insert(header.end(), {"ref dice", "ref hd95 vox"});
  rows.push_back(header);
  for (const CaseResult& r : results) {
    if (!r.metrics) continue;
    const MaskMetrics& m = *r.metrics;
    std::vector<std::string> row = {r.job.id, std::string(MetricStatusName(m.status)),
                                    std::to_string(m.pred_voxels), std::to_string(m.gt_voxels),
                                    Cell(m.medpy.dice, "%.4f")};
    if (columns.medpy) row.push_back(Cell(m.medpy.hd95, "%.3f"));
    if (columns.monai) row.push_back(Cell(m.monai.hd95, "%.3f"));
    row.push_back(Cell(m.reference.dice, "%.4f"));
    row.push_back(Cell(m.reference.hd95, "%.3f"));
    rows.push_back(row);
  }
  PrintRows(rows);
  for (const CaseResult& r : results) {
    if (!r.metrics) std::cout << "error: " << r.job.id << ": " << r.error << "\n";
  }

  std::cout << "\n"
            << s.cases << " cases evaluated, " << errors << " failed; empty masks: " << s.pred_empty
            << " prediction, " << s.gt_empty << " ground truth, " << s.both_empty << " both\n";
  std::vector<std::vector<std::string>> summary = {
      {"", "n", "mean", "std", "median", "convention"}};
  auto add = [&](const std::string& name, const ValueSummary& v, const char* format,
                 const std::string& note) {
    summary.push_back({name, std::to_string(v.count), Number(v.mean, format),
                       Number(v.stddev, format), Number(v.median, format), note});
  };
  add("dice", s.dice, "%.4f", "cases with tumour in the GT (empty prediction = 0)");
  if (columns.medpy) add("hd95 mm (medpy)", s.hd95, "%.3f", "both masks non-empty");
  if (columns.monai) add("hd95 mm (monai)", s.hd95_monai, "%.3f", "both masks non-empty");
  add("reference dice", s.reference_dice, "%.4f", "empty prediction -> 0");
  add("reference hd95 vox", s.reference_hd95, "%.3f", "empty prediction -> 0, no spacing");
  PrintRows(summary, /*last_is_text=*/true);
  if (s.reference_crashes > 0) {
    std::cout << s.reference_crashes
              << " case(s) with a prediction but an empty GT: the reference code would crash on "
                 "them; they are left out of its means\n";
  }
}

nlohmann::json ToJsonReport(const std::vector<CaseResult>& results, const MetricsSummary& s,
                            const std::string& hd95, int errors) {
  nlohmann::json cases = nlohmann::json::array(), failed = nlohmann::json::array();
  for (const CaseResult& r : results) {
    nlohmann::json c = {
        {"id", r.job.id},
        {"pred", r.job.pred.empty() ? nullptr : nlohmann::json(r.job.pred.string())},
        {"gt", r.job.gt.empty() ? nullptr : nlohmann::json(r.job.gt.string())}};
    if (r.metrics) {
      c["metrics"] = ToJson(*r.metrics);
      cases.push_back(c);
    } else {
      c["error"] = r.error;
      failed.push_back(c);
    }
  }
  return {{"labels", "wt"},   {"hd95", hd95},          {"cases", cases},
          {"errors", failed}, {"error_count", errors}, {"summary", ToJson(s)}};
}

int RunEval(const std::vector<std::string>& args) {
  ArgParser parser("eval",
                   "eval --pred FILE_OR_DIR --gt FILE_OR_DIR [--json] [--hd95 medpy|monai|both] "
                   "[--labels wt] [--threads N]",
                   "Dice and HD95 of predicted label volumes against ground truth.");
  parser
      .Option("pred", "PATH", "prediction: a .nii/.nii.gz file or a folder of them", std::nullopt,
              true)
      .Option("gt", "PATH",
              "ground truth: a file, a folder of files, or a folder of BraTS case "
              "folders",
              std::nullopt, true)
      .Flag("json", "print JSON instead of tables")
      .Option("hd95", "KIND",
              "medpy (pooled 95th percentile, what CLISC reports), monai (larger "
              "directed 95th percentile) or both",
              "both")
      .Option("labels", "SET", "region evaluated: wt (whole tumour, label > 0)", "wt")
      .Option("threads", "N", "cases evaluated in parallel", "1")
      .Epilog(
          "Files pair by case id: the name without .nii/.nii.gz and without a trailing _seg or\n"
          "_pred. Distances are in mm with the GT's spacing; prediction and GT must share the\n"
          "grid (size, spacing, origin, direction).\n"
          "Empty masks never fail a case: Dice is averaged over cases whose GT has tumour (an\n"
          "empty prediction scores 0), HD95 over cases where both masks are non-empty, and the\n"
          "empty ones are counted. The reference columns follow the CLISC code: an empty\n"
          "prediction scores Dice 0 and HD95 0, and HD95 is in voxels (no spacing).\n"
          "Exit status: 0 when every case was evaluated, 1 when any case failed (unreadable,\n"
          "different grids, no partner file), 2 for usage errors.\n");
  if (int rc = ParseCommandLine(parser, args); rc >= 0) return rc;

  const std::string hd95 = parser.Get("hd95");
  if (hd95 != "medpy" && hd95 != "monai" && hd95 != "both") {
    std::cerr << "error: --hd95 must be medpy, monai or both\n";
    return kExitUsage;
  }
  if (parser.Get("labels") != "wt") {
    std::cerr << "error: --labels: only wt (whole tumour) is supported\n";
    return kExitUsage;
  }
  auto threads = parser.GetInt("threads");
  if (!threads.ok() || *threads < 1 || *threads > 256) {
    std::cerr << "error: --threads must be an integer from 1 to 256\n";
    return kExitUsage;
  }
  auto pred = CollectSide(parser.Get("pred"), "pred");
  auto gt = pred.ok() ? CollectSide(parser.Get("gt"), "gt") : StatusOr<Side>(pred.status());
  if (!pred.ok() || !gt.ok()) {
    const Status& s = pred.ok() ? gt.status() : pred.status();
    std::cerr << "error: " << s.message() << "\n";
    return kExitUsage;
  }
  for (const Side* side : {&*pred, &*gt})
    for (const std::string& w : side->warnings) std::cerr << "warning: " << w << "\n";

  const std::vector<CaseJob> jobs = PairCases(*pred, *gt);
  if (jobs.empty()) {
    std::cerr << "error: no case found (looked for .nii/.nii.gz files)\n";
    return kExitFailure;
  }
  const std::vector<CaseResult> results = EvaluateAll(jobs, static_cast<int>(*threads));
  std::vector<MaskMetrics> evaluated;
  int errors = 0;
  for (const CaseResult& r : results) {
    if (r.metrics) {
      evaluated.push_back(*r.metrics);
    } else {
      ++errors;
    }
  }
  const MetricsSummary summary = SummarizeMetrics(evaluated);
  if (parser.GetFlag("json")) {
    std::cout << ToJsonReport(results, summary, hd95, errors)
                     .dump(2, ' ', false, nlohmann::json::error_handler_t::replace)
              << "\n";
  } else {
    PrintTable(results, summary, Columns{hd95 != "monai", hd95 != "medpy"}, errors);
  }
  return errors == 0 ? kExitOk : kExitFailure;
}

}  // namespace
CLISC_REGISTER_COMMAND("eval", "Dice and HD95 of predictions against ground truth", RunEval);
}  // namespace clisc::cli
