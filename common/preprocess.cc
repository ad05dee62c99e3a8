#include "common/preprocess.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>

#include "common/atomic_file.h"
#include "common/case_validation.h"
#include "common/volume_io.h"

namespace clisc {
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kCropRecordFormat = "clisc.crop_record.v1";

std::string DimsText(const Dims& d) {
  return std::to_string(d.x) + "x" + std::to_string(d.y) + "x" + std::to_string(d.z);
}

Status CheckFinite(const FloatVolume& volume, std::string_view what) {
  int64_t bad = std::count_if(volume.voxels().begin(), volume.voxels().end(),
                              [](float v) { return !std::isfinite(v); });
  if (bad == 0) return OkStatus();
  return InvalidArgumentError(std::string(what) + ": " + std::to_string(bad) +
                              " non-finite voxels");
}

// Labels as read (any pixel type, as float) -> uint8 in the BraTS2020 coding.
StatusOr<LabelVolume> ToCanonicalLabels(const FloatVolume& seg, BratsNaming naming) {
  LabelVolume out = seg.LikeThis<uint8_t>();
  for (size_t i = 0; i < seg.voxels().size(); ++i) {
    float v = seg[i];
    if (!std::isfinite(v) || v < 0 || v > 255 || v != std::nearbyint(v)) {
      return InvalidArgumentError("seg: voxel value " + std::to_string(v) +
                                  " is not a label in 0..255");
    }
    out[i] = static_cast<uint8_t>(CanonicalSegLabel(naming, static_cast<int>(v)));
  }
  return out;
}

nlohmann::json StatsToJson(const IntensityStats& s) {
  return {{"clip_low", s.clip_low},
          {"clip_high", s.clip_high},
          {"mean", s.mean},
          {"std", s.std},
          {"constant", s.constant}};
}

}  // namespace

nlohmann::json CropRecordToJson(const CropRecord& r) {
  return {
      {"format", kCropRecordFormat},
      {"box",
       {{"x0", r.box.x0},
        {"y0", r.box.y0},
        {"z0", r.box.z0},
        {"x1", r.box.x1},
        {"y1", r.box.y1},
        {"z1", r.box.z1},
        {"inclusive", true}}},
      {"original_size", {r.original_size.x, r.original_size.y, r.original_size.z}},
      {"spacing", r.original_geometry.spacing},
      {"origin", r.original_geometry.origin},
      {"direction", r.original_geometry.direction},
  };
}

StatusOr<CropRecord> CropRecordFromJson(const nlohmann::json& j) {
  // nlohmann throws on a missing key or a wrong type; that is converted here, once.
  CropRecord r;
  try {
    if (j.at("format").get<std::string>() != kCropRecordFormat) {
      return InvalidArgumentError("crop record: unknown format " + j.at("format").dump());
    }
    const auto& box = j.at("box");
    if (!box.at("inclusive").get<bool>()) {
      return InvalidArgumentError("crop record: only inclusive boxes are supported");
    }
    r.box = {box.at("x0").get<int64_t>(), box.at("y0").get<int64_t>(), box.at("z0").get<int64_t>(),
             box.at("x1").get<int64_t>(), box.at("y1").get<int64_t>(), box.at("z1").get<int64_t>()};
    auto size = j.at("original_size").get<std::array<int64_t, 3>>();
    r.original_size = {size[0], size[1], size[2]};
    r.original_geometry.spacing = j.at("spacing").get<std::array<double, 3>>();
    r.original_geometry.origin = j.at("origin").get<std::array<double, 3>>();
    r.original_geometry.direction = j.at("direction").get<std::array<double, 9>>();
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgumentError(std::string("crop record: ") + e.what());
  }
  if (!r.box.FitsIn(r.original_size)) {
    return InvalidArgumentError("crop record: box " + r.box.ToString() + " does not fit " +
                                DimsText(r.original_size));
  }
  return r;
}

float PercentileValue(std::vector<float> values, double percentile) {
  const size_t n = values.size();
  // rank = ceil(q * n), in long double with a tolerance so that q * n landing a hair above an
  // integer through rounding (0.999 * 1000) does not add one.
  long double exact = static_cast<long double>(percentile) / 100.0L * static_cast<long double>(n);
  long double rank = std::ceil(exact - 1e-9L * std::max<long double>(1.0L, exact));
  size_t k = static_cast<size_t>(std::clamp<long double>(rank, 1.0L, static_cast<long double>(n)));
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(k - 1),
                   values.end());
  return values[k - 1];
}

IntensityStats ClipAndStandardize(FloatVolume& volume, double percentile, bool standardize) {
  IntensityStats stats;
  std::vector<float>& v = volume.voxels();
  if (v.empty()) return stats;
  stats.clip_low = *std::min_element(v.begin(), v.end());
  const float high = PercentileValue(v, percentile);
  stats.clip_high = high;
  double sum = 0;
  for (float& x : v) {
    x = std::min(x, high);  // the lower bound is the minimum itself: nothing to clip
    sum += x;
  }
  const double n = static_cast<double>(v.size());
  stats.mean = sum / n;
  double squares = 0, largest = 0;
  for (float x : v) {
    double d = x - stats.mean;
    squares += d * d;
    largest = std::max(largest, std::abs(static_cast<double>(x)));
  }
  stats.std = std::sqrt(squares / n);
  // A constant box leaves only rounding noise in the std; dividing by it would blow that noise
  // up to +-1, so such a box is only centred.
  stats.constant = !(stats.std > 1e-7 * std::max(1.0, largest));
  if (!standardize) return stats;
  const double scale = stats.constant ? 1.0 : 1.0 / stats.std;
  for (float& x : v) x = static_cast<float>((x - stats.mean) * scale);
  return stats;
}

StatusOr<PreprocessedCase> PreprocessVolumes(std::string id, std::vector<Modality> modalities,
                                             std::vector<FloatVolume> raw,
                                             std::optional<LabelVolume> seg,
                                             const PreprocessOptions& options) {
  if (raw.empty() || raw.size() != modalities.size()) {
    return InvalidArgumentError(id + ": need one volume per modality");
  }
  const FloatVolume& reference = raw.front();
  const std::string ref_name(ModalityName(modalities.front()));
  for (size_t i = 0; i < raw.size(); ++i) {
    std::string name(ModalityName(modalities[i]));
    RETURN_IF_ERROR(CheckFinite(raw[i], id + " " + name));
    if (!(raw[i].size() == reference.size()) ||
        !raw[i].geometry().NearlyEquals(reference.geometry())) {
      return InvalidArgumentError(id + ": " + name + " is not on the grid of " + ref_name);
    }
  }
  if (seg &&
      (!(seg->size() == reference.size()) || !seg->geometry().NearlyEquals(reference.geometry()))) {
    return InvalidArgumentError(id + ": seg is not on the grid of " + ref_name);
  }
  std::optional<BoundingBox> box = NonzeroBoundingBox(reference);
  if (!box) {
    return FailedPreconditionError(id + ": " + ref_name + " has no nonzero voxel (no brain)");
  }
  if (options.reference_exclusive_crop) {
    // The reference slices [min:max), dropping the last brain plane on each axis.
    --box->x1, --box->y1, --box->z1;
    if (box->empty()) {
      return FailedPreconditionError(id +
                                     ": the brain box is one voxel thin on an axis; the "
                                     "reference's exclusive crop leaves nothing");
    }
  }

  PreprocessedCase out;
  out.id = std::move(id);
  out.modalities = modalities;
  out.crop = {*box, reference.size(), reference.geometry()};

  ASSIGN_OR_RETURN(FloatVolume ref_crop, CropToBox(reference, *box));
  out.brain_mask = ref_crop.LikeThis<uint8_t>();
  for (size_t i = 0; i < ref_crop.voxels().size(); ++i) {
    out.brain_mask[i] = ref_crop[i] != 0.0f ? 1 : 0;
  }
  for (size_t i = 0; i < raw.size(); ++i) {
    ASSIGN_OR_RETURN(FloatVolume cropped, CropToBox(raw[i], *box));
    raw[i] = FloatVolume();  // release the full-size volume early
    out.stats.push_back(ClipAndStandardize(cropped, options.clip_percentile, options.standardize));
    out.images.push_back(std::move(cropped));
  }
  if (seg) {
    ASSIGN_OR_RETURN(LabelVolume labels, CropToBox(*seg, *box));
    LabelVolume whole = labels.LikeThis<uint8_t>();
    for (size_t i = 0; i < labels.voxels().size(); ++i) whole[i] = labels[i] > 0 ? 1 : 0;
    out.labels = std::move(labels);
    out.whole_tumor = std::move(whole);
  }
  return out;
}

StatusOr<PreprocessedCase> PreprocessCase(const CaseFiles& files,
                                          const PreprocessOptions& options) {
  if (options.modalities.empty()) return InvalidArgumentError("no modality requested");
  if (!(options.clip_percentile > 0 && options.clip_percentile <= 100)) {
    return InvalidArgumentError("clip percentile must be in (0, 100]");
  }
  std::vector<FloatVolume> raw;
  for (Modality m : options.modalities) {
    const auto& path = files.image(m);
    if (!path) {
      return NotFoundError(files.id + ": no " + std::string(ModalityName(m)) + " file");
    }
    auto volume = ReadVolume<float>(*path);
    if (!volume.ok()) return volume.status().WithContext(files.id + " " + DisplayPath(*path));
    // ITK reads NaN and Inf as 0; only the file can tell.
    auto non_finite = CountNonFiniteVoxels(*path);
    if (!non_finite.ok()) return non_finite.status().WithContext(files.id);
    if (*non_finite > 0) {
      return InvalidArgumentError(files.id + " " + std::string(ModalityName(m)) + ": " +
                                  std::to_string(*non_finite) + " non-finite voxels");
    }
    raw.push_back(std::move(volume).value());
  }
  std::optional<LabelVolume> seg;
  if (options.read_seg && files.seg) {
    auto volume = ReadVolume<float>(*files.seg);
    if (!volume.ok()) return volume.status().WithContext(files.id + " " + DisplayPath(*files.seg));
    auto labels = ToCanonicalLabels(*volume, files.naming);
    if (!labels.ok()) return labels.status().WithContext(files.id);
    seg = std::move(labels).value();
  }
  return PreprocessVolumes(files.id, options.modalities, std::move(raw), std::move(seg), options);
}

fs::path PreprocessedPaths::image(const std::string& id, Modality modality) const {
  return images_dir / (id + "_" + std::string(ModalityName(modality)) + ".nii");
}

PreprocessedPaths PreprocessedLayout(const fs::path& out_dir, const std::string& id) {
  PreprocessedPaths p;
  p.images_dir = out_dir / "images";
  p.labels_dir = out_dir / "labels";
  p.brain_mask = p.labels_dir / (id + "_brain_mask.nii.gz");
  p.labels = p.labels_dir / (id + "_seg.nii.gz");
  p.whole_tumor = p.labels_dir / (id + "_wt.nii.gz");
  p.record = out_dir / "crop" / (id + ".json");
  return p;
}

Status WritePreprocessed(const PreprocessedCase& result, const fs::path& out_dir) {
  PreprocessedPaths paths = PreprocessedLayout(out_dir, result.id);
  for (const fs::path& dir : {paths.images_dir, paths.labels_dir, paths.record.parent_path()}) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return UnavailableError("cannot create " + DisplayPath(dir) + ": " + ec.message());
  }
  for (size_t i = 0; i < result.images.size(); ++i) {
    RETURN_IF_ERROR(WriteVolume(result.images[i], paths.image(result.id, result.modalities[i])));
  }
  RETURN_IF_ERROR(WriteVolume(result.brain_mask, paths.brain_mask));
  if (result.labels) RETURN_IF_ERROR(WriteVolume(*result.labels, paths.labels));
  if (result.whole_tumor) RETURN_IF_ERROR(WriteVolume(*result.whole_tumor, paths.whole_tumor));

  nlohmann::json record = CropRecordToJson(result.crop);
  record["case"] = DisplayName(result.id);
  nlohmann::json stats = nlohmann::json::object();
  for (size_t i = 0; i < result.stats.size(); ++i) {
    stats[std::string(ModalityName(result.modalities[i]))] = StatsToJson(result.stats[i]);
  }
  record["normalization"] = stats;
  return WriteFileAtomically(paths.record, record.dump(2) + "\n");
}

StatusOr<CropRecord> ReadCropRecord(const fs::path& json_file) {
  std::ifstream in(json_file, std::ios::binary);
  if (!in) return NotFoundError("cannot open crop record " + DisplayPath(json_file));
  std::ostringstream text;
  text << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgumentError(DisplayPath(json_file) + ": not valid JSON");
  auto record = CropRecordFromJson(j);
  if (!record.ok()) return record.status().WithContext(DisplayPath(json_file));
  return record;
}

}  // namespace clisc
