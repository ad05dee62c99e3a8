#include "report/overlay_images.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <system_error>

#include "common/atomic_file.h"
#include "common/png_writer.h"
#include "common/volume_io.h"

namespace clisc::report {
namespace {

namespace fs = std::filesystem;

using Rgb = std::array<uint8_t, 3>;
constexpr Rgb kGtColor{0, 220, 0};
constexpr Rgb kPredColor{255, 0, 255};
constexpr Rgb kBothColor{255, 255, 255};
constexpr Rgb kLegendText{230, 230, 230};
constexpr int kLegendHeight = 15;

// 5x7 glyphs for the legend's words, one row per byte (bit 4 = leftmost column).
struct Glyph {
  char c;
  std::array<uint8_t, 7> rows;
};
constexpr Glyph kGlyphs[] = {
    {'G', {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}},
    {'T', {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
    {'P', {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10}},
    {'R', {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}},
    {'E', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}},
    {'D', {0x1E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1E}},
};

class Canvas {
 public:
  Canvas(int width, int height) : width_(width), height_(height), rgb_(width * height * 3, 0) {}
  void Set(int x, int y, const Rgb& color) {
    if (x < 0 || y < 0 || x >= width_ || y >= height_) return;
    std::copy(color.begin(), color.end(), rgb_.begin() + (size_t(y) * width_ + x) * 3);
  }
  void Fill(int x0, int y0, int w, int h, const Rgb& color) {
    for (int y = y0; y < y0 + h; ++y) {
      for (int x = x0; x < x0 + w; ++x) Set(x, y, color);
    }
  }
  // Returns the x after the text.
  int Text(int x, int y, const std::string& text, const Rgb& color) {
    for (char c : text) {
      for (const Glyph& glyph : kGlyphs) {
        if (glyph.c != c) continue;
        for (int row = 0; row < 7; ++row) {
          for (int col = 0; col < 5; ++col) {
            if (glyph.rows[row] & (0x10 >> col)) Set(x + col, y + row, color);
          }
        }
      }
      x += 6;
    }
    return x;
  }
  int width() const { return width_; }
  int height() const { return height_; }
  const std::vector<uint8_t>& rgb() const { return rgb_; }

 private:
  int width_, height_;
  std::vector<uint8_t> rgb_;
};

double Percentile(std::vector<float>& values, double q) {
  if (values.empty()) return 0;
  const size_t k = static_cast<size_t>(std::lround(q * (values.size() - 1)));
  std::nth_element(values.begin(), values.begin() + k, values.end());
  return values[k];
}

// A pixel of a mask's slice lies on its contour when a 4-neighbour is outside the mask.
bool OnContour(const LabelVolume& mask, int64_t x, int64_t y, int64_t z) {
  if (!mask.at(x, y, z)) return false;
  const Dims& d = mask.size();
  if (x == 0 || y == 0 || x == d.x - 1 || y == d.y - 1) return true;
  return !mask.at(x - 1, y, z) || !mask.at(x + 1, y, z) || !mask.at(x, y - 1, z) ||
         !mask.at(x, y + 1, z);
}

std::string SafeFileName(const std::string& text) {
  std::string out;
  for (char c : text) {
    out += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') ? c : '_';
  }
  return out.empty() ? "case" : out;
}

StatusOr<OverlayImage> RenderCase(const RunReportData& data, const std::string& variant,
                                  const std::string& case_id) {
  const fs::path prep = data.workdir / "cases" / case_id / "prep";
  const fs::path image_path = prep / (data.modalities.front() + ".nii");
  ASSIGN_OR_RETURN(FloatVolume image, ReadVolume<float>(image_path));
  ASSIGN_OR_RETURN(LabelVolume gt, ReadVolume<uint8_t>(prep / "gt_wt.nii.gz"));
  ASSIGN_OR_RETURN(LabelVolume prediction,
                   ReadVolume<uint8_t>(VariantMaskPath(data.workdir, variant, case_id)));
  StatusOr<LabelVolume> brain = ReadVolume<uint8_t>(prep / "brain_mask.nii.gz");
  const bool brain_usable = brain.ok() && brain->size() == image.size();
  return RenderOverlay(image, gt, prediction, brain_usable ? &*brain : nullptr);
}

}  // namespace

StatusOr<OverlayImage> RenderOverlay(const FloatVolume& image, const LabelVolume& gt,
                                     const LabelVolume& prediction, const LabelVolume* brain) {
  const Dims d = image.size();
  if (!(gt.size() == d) || !(prediction.size() == d) || (brain && !(brain->size() == d))) {
    return InvalidArgumentError("overlay: the image, GT and prediction are not on one grid");
  }
  if (d.count() == 0) return InvalidArgumentError("overlay: empty volume");
  // The axial slice with the most GT voxels; the prediction's when the GT is empty.
  auto best_slice = [&](const LabelVolume& mask, int64_t* count) {
    int64_t best_z = d.z / 2, best = 0;
    for (int64_t z = 0; z < d.z; ++z) {
      int64_t n = 0;
      for (int64_t y = 0; y < d.y; ++y) {
        for (int64_t x = 0; x < d.x; ++x) n += mask.at(x, y, z) != 0;
      }
      if (n > best) best = n, best_z = z;
    }
    *count = best;
    return best_z;
  };
  OverlayImage out;
  int64_t count = 0;
  int64_t z = best_slice(gt, &count);
  out.gt_voxels_in_slice = count;
  if (count == 0) z = best_slice(prediction, &count);
  out.slice_z = static_cast<int>(z);

  std::vector<float> window;
  for (int64_t y = 0; y < d.y; ++y) {
    for (int64_t x = 0; x < d.x; ++x) {
      if (!brain || brain->at(x, y, z)) window.push_back(image.at(x, y, z));
    }
  }
  if (window.empty()) {
    for (int64_t i = 0; i < d.x * d.y; ++i) window.push_back(image[image.index(0, 0, z) + i]);
  }
  const double low = Percentile(window, 0.005), high = Percentile(window, 0.995);
  const double range = high > low ? high - low : 1.0;

  const int scale = std::clamp<int>(static_cast<int>(std::ceil(256.0 / std::max(d.x, d.y))), 1, 8);
  const int legend_width = 110;
  Canvas canvas(std::max<int>(static_cast<int>(d.x) * scale, legend_width),
                static_cast<int>(d.y) * scale + kLegendHeight);
  for (int64_t y = 0; y < d.y; ++y) {
    for (int64_t x = 0; x < d.x; ++x) {
      Rgb color{0, 0, 0};
      if (!brain || brain->at(x, y, z)) {
        const double v = std::clamp((image.at(x, y, z) - low) / range, 0.0, 1.0);
        const uint8_t g = static_cast<uint8_t>(std::lround(v * 255));
        color = {g, g, g};
      }
      const bool on_gt = OnContour(gt, x, y, z), on_pred = OnContour(prediction, x, y, z);
      if (on_gt && on_pred) {
        color = kBothColor;
      } else if (on_gt) {
        color = kGtColor;
      } else if (on_pred) {
        color = kPredColor;
      }
      canvas.Fill(static_cast<int>(x) * scale, static_cast<int>(y) * scale, scale, scale, color);
    }
  }
  const int legend_y = static_cast<int>(d.y) * scale;
  canvas.Fill(0, legend_y, canvas.width(), kLegendHeight, {40, 40, 40});
  canvas.Fill(4, legend_y + 4, 8, 8, kGtColor);
  int x = canvas.Text(15, legend_y + 4, "GT", kLegendText);
  canvas.Fill(x + 8, legend_y + 4, 8, 8, kPredColor);
  canvas.Text(x + 19, legend_y + 4, "PRED", kLegendText);
  ASSIGN_OR_RETURN(out.png, EncodePngRgb(canvas.width(), canvas.height(), canvas.rgb()));
  out.width = canvas.width();
  out.height = canvas.height();
  return out;
}

std::vector<CaseOverlay> WriteCaseOverlays(const RunReportData& data, const fs::path& out_dir) {
  std::vector<CaseOverlay> overlays;
  const VariantResult* final_variant = nullptr;
  for (const VariantResult& v : data.variants) {
    if (v.variant == data.final_variant) final_variant = &v;
  }
  if (final_variant == nullptr) return overlays;
  std::vector<const CaseMetrics*> ranked;
  for (const CaseMetrics& c : final_variant->cases) {
    if (std::isfinite(c.dice)) ranked.push_back(&c);
  }
  if (ranked.empty()) return overlays;
  std::stable_sort(ranked.begin(), ranked.end(), [](const CaseMetrics* a, const CaseMetrics* b) {
    return a->dice != b->dice ? a->dice > b->dice : a->case_id < b->case_id;
  });
  const size_t n = ranked.size();
  const std::pair<const char*, size_t> picks[] = {{"best", 0}, {"median", n / 2}, {"worst", n - 1}};
  std::error_code ec;
  fs::create_directories(out_dir / "overlays", ec);
  for (const auto& [rank, index] : picks) {
    if (!overlays.empty() && overlays.back().case_id == ranked[index]->case_id) {
      overlays.back().rank += std::string(", ") + rank;
      continue;
    }
    CaseOverlay overlay;
    overlay.rank = rank;
    overlay.case_id = ranked[index]->case_id;
    overlay.variant = final_variant->variant;
    overlay.dice = ranked[index]->dice;
    StatusOr<OverlayImage> image = RenderCase(data, overlay.variant, overlay.case_id);
    if (!image.ok()) {
      overlay.error = image.status().message();
    } else {
      overlay.slice_z = image->slice_z;
      overlay.relative_path =
          "overlays/" + std::string(rank) + "_" + SafeFileName(overlay.case_id) + ".png";
      const Status written = WriteFileAtomically(out_dir / overlay.relative_path, image->png);
      if (written.ok()) {
        overlay.png = std::move(image->png);
      } else {
        overlay.error = written.message();
        overlay.relative_path.clear();
      }
    }
    overlays.push_back(std::move(overlay));
  }
  return overlays;
}

}  // namespace clisc::report
