#include "workers/backends/heuristic_prompt_segmenter.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <utility>

namespace clisc::backends {
namespace {

// Pixel rectangle with inclusive bounds.
struct Rect {
  int x0 = 0, y0 = 0, x1 = -1, y1 = -1;
  bool empty() const { return x1 < x0 || y1 < y0; }
  bool contains(int x, int y) const { return x >= x0 && x <= x1 && y >= y0 && y <= y1; }
};

struct Pixel {
  int x = 0, y = 0;
};

int RoundToPixel(float coordinate) { return static_cast<int>(std::lround(coordinate)); }

// Separable (2r+1)^2 mean filter with edge replication (scipy's uniform_filter, mode 'nearest').
std::vector<float> MeanFilter(const GrayImage& image, int radius) {
  const int w = image.width, h = image.height;
  std::vector<float> out(image.pixels.begin(), image.pixels.end());
  if (radius <= 0) return out;
  const float norm = 1.0f / static_cast<float>(2 * radius + 1);
  std::vector<float> rows(out.size());
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      float sum = 0;
      for (int d = -radius; d <= radius; ++d) sum += out[y * w + std::clamp(x + d, 0, w - 1)];
      rows[y * w + x] = sum * norm;
    }
  }
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      float sum = 0;
      for (int d = -radius; d <= radius; ++d) sum += rows[std::clamp(y + d, 0, h - 1) * w + x];
      out[y * w + x] = sum * norm;
    }
  }
  return out;
}

// Linear-interpolation percentile (numpy's default) of a non-empty vector, which it reorders.
double Percentile(std::vector<float>& values, double percent) {
  std::sort(values.begin(), values.end());
  const double pos =
      std::clamp(percent, 0.0, 100.0) / 100.0 * static_cast<double>(values.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (pos - static_cast<double>(lo)) * (values[hi] - values[lo]);
}

Status CheckPrompts(const Prompts& prompts, size_t index) {
  const std::string which = "prompt set " + std::to_string(index);
  if (prompts.points.empty() && !prompts.box) {
    return InvalidArgumentError(which + " has no points and no box");
  }
  for (const PointPrompt& p : prompts.points) {
    if (!std::isfinite(p.x) || !std::isfinite(p.y)) {
      return InvalidArgumentError(which + " has a point with a non-finite coordinate");
    }
  }
  if (prompts.box) {
    const BoxPrompt& b = *prompts.box;
    if (!std::isfinite(b.x0) || !std::isfinite(b.y0) || !std::isfinite(b.x1) ||
        !std::isfinite(b.y1)) {
      return InvalidArgumentError(which + " has a box with a non-finite coordinate");
    }
    if (b.x0 > b.x1 || b.y0 > b.y1) {
      return InvalidArgumentError(which + " has an inverted box (x0 > x1 or y0 > y1)");
    }
  }
  return OkStatus();
}

// The image's pixels as seen by one prompt set: indexing plus the region the mask may occupy.
struct Grid {
  int width = 0;
  Rect region;
  size_t at(int x, int y) const { return static_cast<size_t>(y) * width + x; }
  size_t at(const Pixel& p) const { return at(p.x, p.y); }
};

std::vector<Pixel> Steps(bool eight_connected) {
  std::vector<Pixel> steps = {{1, 0}, {-1, 0}, {0, 1}, {0, -1}};
  if (eight_connected) steps.insert(steps.end(), {{1, 1}, {1, -1}, {-1, 1}, {-1, -1}});
  return steps;
}

// Breadth-first flood over the region's `allowed` pixels from labelled sources, all at once: each
// pixel takes the label of the flood that reaches it first (ties to the earlier source), so
// every pixel goes to its nearest source along allowed paths. Pixels with a nonzero `owner` are
// never entered. Returns the number of pixels labelled.
size_t Flood(const Grid& grid, const std::vector<uint8_t>& allowed, const std::vector<Pixel>& steps,
             const std::vector<std::pair<Pixel, uint8_t>>& sources, std::vector<uint8_t>& owner) {
  std::deque<Pixel> queue;
  size_t labelled = 0;
  for (const auto& [p, label] : sources) {
    if (!allowed[grid.at(p)] || owner[grid.at(p)]) continue;
    owner[grid.at(p)] = label;
    queue.push_back(p);
    ++labelled;
  }
  while (!queue.empty()) {
    const Pixel p = queue.front();
    queue.pop_front();
    for (const Pixel& s : steps) {
      const Pixel n{p.x + s.x, p.y + s.y};
      if (!grid.region.contains(n.x, n.y) || !allowed[grid.at(n)] || owner[grid.at(n)]) continue;
      owner[grid.at(n)] = owner[grid.at(p)];
      queue.push_back(n);
      ++labelled;
    }
  }
  return labelled;
}

// A pixel of the largest component of `allowed` pixels that `owner` leaves unclaimed.
std::optional<Pixel> LargestUnclaimedComponent(const Grid& grid,
                                               const std::vector<uint8_t>& allowed,
                                               const std::vector<Pixel>& steps,
                                               const std::vector<uint8_t>& owner) {
  std::vector<uint8_t> visited = owner;
  std::optional<Pixel> largest;
  size_t largest_size = 0;
  for (int y = grid.region.y0; y <= grid.region.y1; ++y) {
    for (int x = grid.region.x0; x <= grid.region.x1; ++x) {
      const size_t size = Flood(grid, allowed, steps, {{Pixel{x, y}, 1}}, visited);
      if (size > largest_size) {
        largest_size = size;
        largest = Pixel{x, y};
      }
    }
  }
  return largest;
}

// Sets the mask's holes inside the region: non-mask pixels that the region border cannot reach
// 4-connected (scipy's binary_fill_holes), except those connected to a pixel of `keep_open`.
void FillHoles(const Grid& grid, const std::vector<Pixel>& keep_open, std::vector<uint8_t>& mask) {
  const Rect& r = grid.region;
  std::vector<uint8_t> open(mask.size(), 0);
  std::vector<Pixel> sources = keep_open;
  for (int x = r.x0; x <= r.x1; ++x) sources.insert(sources.end(), {{x, r.y0}, {x, r.y1}});
  for (int y = r.y0; y <= r.y1; ++y) sources.insert(sources.end(), {{r.x0, y}, {r.x1, y}});
  std::vector<uint8_t> not_mask(mask.size());
  for (size_t i = 0; i < mask.size(); ++i) not_mask[i] = !mask[i];
  std::vector<std::pair<Pixel, uint8_t>> labelled;
  for (const Pixel& p : sources) labelled.push_back({p, 1});
  Flood(grid, not_mask, Steps(false), labelled, open);
  for (int y = r.y0; y <= r.y1; ++y) {
    for (int x = r.x0; x <= r.x1; ++x) {
      if (!open[grid.at(x, y)]) mask[grid.at(x, y)] = 1;
    }
  }
}

// The between-class share of the variance of `values` over the pixels `counted`, classes being
// mask and not mask: w0 w1 (m1 - m0)^2 / var, in [0, 1]; 0 when either class is empty.
float SeparationScore(const Grid& grid, const std::vector<float>& values,
                      const std::vector<uint8_t>& counted, const std::vector<uint8_t>& mask) {
  double n[2] = {0, 0}, sum[2] = {0, 0}, sum_sq = 0;
  for (int y = grid.region.y0; y <= grid.region.y1; ++y) {
    for (int x = grid.region.x0; x <= grid.region.x1; ++x) {
      const size_t i = grid.at(x, y);
      if (!counted[i] && !mask[i]) continue;
      const int cls = mask[i] ? 1 : 0;
      n[cls] += 1;
      sum[cls] += values[i];
      sum_sq += static_cast<double>(values[i]) * values[i];
    }
  }
  if (n[0] == 0 || n[1] == 0) return 0.0f;
  const double total = n[0] + n[1];
  const double mean = (sum[0] + sum[1]) / total;
  const double variance = sum_sq / total - mean * mean;
  if (variance <= 0) return 0.0f;
  const double gap = sum[1] / n[1] - sum[0] / n[0];
  const double between = (n[0] / total) * (n[1] / total) * gap * gap;
  return static_cast<float>(std::clamp(between / variance, 0.0, 1.0));
}

// The seeded two-class threshold on target-likeness values (larger = more like the target):
// t = low + fraction * (target - low), low = mean of the values below t, iterated from the
// midpoint of `start_low` and the target.
double SeededThreshold(const std::vector<double>& likeness, double start_low, double target,
                       double fraction, int iterations) {
  double threshold = 0.5 * (start_low + target);
  for (int it = 0; it < iterations; ++it) {
    double sum = 0;
    size_t count = 0;
    for (double v : likeness) {
      if (v < threshold) {
        sum += v;
        ++count;
      }
    }
    if (count == 0) break;
    const double low = sum / static_cast<double>(count);
    const double next = low + fraction * (target - low);
    if (std::fabs(next - threshold) < 1e-6) break;
    threshold = next;
  }
  return threshold;
}

}  // namespace

HeuristicPromptSegmenter::HeuristicPromptSegmenter(HeuristicPromptSegmenterOptions options)
    : options_(std::move(options)) {}

std::string HeuristicPromptSegmenter::Describe() const {
  return "heuristic region growing in the box from the positive points (no weights)";
}

Status HeuristicPromptSegmenter::SetImage(const GrayImage& image) {
  if (image.width <= 0 || image.height <= 0) {
    return InvalidArgumentError("empty image (" + std::to_string(image.width) + "x" +
                                std::to_string(image.height) + ")");
  }
  if (image.pixels.size() != static_cast<size_t>(image.width) * image.height) {
    return InvalidArgumentError("image has " + std::to_string(image.pixels.size()) +
                                " pixels for " + std::to_string(image.width) + "x" +
                                std::to_string(image.height));
  }
  if (has_image_ && image.width == image_.width && image.height == image_.height &&
      image.pixels == image_.pixels) {
    return OkStatus();
  }
  image_ = image;
  smoothed_ = MeanFilter(image_, options_.smoothing_radius);
  background_ = *std::min_element(image_.pixels.begin(), image_.pixels.end());
  has_image_ = true;
  return OkStatus();
}

StatusOr<std::vector<Segmentation>> HeuristicPromptSegmenter::Segment(
    const std::vector<Prompts>& prompts, bool /*multimask*/) {
  if (!has_image_) return FailedPreconditionError("Segment called before SetImage");
  for (size_t i = 0; i < prompts.size(); ++i) RETURN_IF_ERROR(CheckPrompts(prompts[i], i));
  std::vector<Segmentation> out;
  out.reserve(prompts.size());
  for (const Prompts& p : prompts) out.push_back(SegmentOne(p));
  return out;
}

Segmentation HeuristicPromptSegmenter::SegmentOne(const Prompts& prompts) const {
  const int w = image_.width, h = image_.height;
  Segmentation result;
  result.mask = BinaryMask{w, h, std::vector<uint8_t>(static_cast<size_t>(w) * h, 0)};
  std::vector<uint8_t>& mask = result.mask.pixels;

  // 1. The region: the box clipped to the image (SAM's boxes may reach W or H).
  Grid grid{w, Rect{0, 0, w - 1, h - 1}};
  if (prompts.box) {
    grid.region =
        Rect{std::max(0, RoundToPixel(prompts.box->x0)), std::max(0, RoundToPixel(prompts.box->y0)),
             std::min(w - 1, RoundToPixel(prompts.box->x1)),
             std::min(h - 1, RoundToPixel(prompts.box->y1))};
  }
  const Rect& region = grid.region;
  if (region.empty()) return result;
  std::vector<uint8_t> in_play(mask.size(), 0);  // region pixels that are not background
  std::vector<float> values;                     // their smoothed values
  for (int y = region.y0; y <= region.y1; ++y) {
    for (int x = region.x0; x <= region.x1; ++x) {
      const size_t i = grid.at(x, y);
      in_play[i] = image_.pixels[i] != background_;
      if (in_play[i]) values.push_back(smoothed_[i]);
    }
  }
  if (values.empty()) return result;

  // 3. Target level and polarity.
  std::vector<Pixel> positives, negatives;
  for (const PointPrompt& p : prompts.points) {
    const Pixel px{RoundToPixel(p.x), RoundToPixel(p.y)};
    if (region.contains(px.x, px.y)) (p.positive ? positives : negatives).push_back(px);
  }
  std::vector<float> sorted = values;
  const double region_median = Percentile(sorted, 50.0);
  double level = Percentile(sorted, options_.no_seed_percentile);
  if (!positives.empty()) {
    std::vector<float> seed_values;
    for (const Pixel& p : positives) seed_values.push_back(smoothed_[grid.at(p)]);
    level = Percentile(seed_values, 50.0);
  }
  // From here on, "likeness" is the value for a bright target and its negation for a dark one.
  const double sign = level >= region_median ? 1.0 : -1.0;
  auto like = [&](size_t i) { return sign * smoothed_[i]; };

  // 4.-5. Threshold, candidates, and the positive points snapped onto them.
  std::vector<double> likeness(values.begin(), values.end());
  for (double& v : likeness) v *= sign;
  const double threshold = SeededThreshold(likeness, sign * region_median, sign * level,
                                           options_.seed_fraction, options_.threshold_iterations);
  std::vector<uint8_t> candidate(mask.size(), 0);
  for (size_t i = 0; i < mask.size(); ++i) candidate[i] = in_play[i] && like(i) >= threshold;
  std::vector<Pixel> seeds;
  for (const Pixel& p : positives) {
    std::optional<Pixel> best;
    const int r = candidate[grid.at(p)] ? 0 : options_.seed_snap_radius;
    for (int y = std::max(region.y0, p.y - r); y <= std::min(region.y1, p.y + r); ++y) {
      for (int x = std::max(region.x0, p.x - r); x <= std::min(region.x1, p.x + r); ++x) {
        if (candidate[grid.at(x, y)] && (!best || like(grid.at(x, y)) > like(grid.at(*best))))
          best = Pixel{x, y};
      }
    }
    if (best) seeds.push_back(*best);
  }
  if (!positives.empty() && seeds.empty()) return result;

  // 6. Growth: owner 1 = target (positive points), 2 = negative points.
  const std::vector<Pixel> steps = Steps(options_.eight_connected);
  std::vector<uint8_t> owner(mask.size(), 0);
  std::vector<std::pair<Pixel, uint8_t>> sources;
  for (const Pixel& p : seeds) sources.push_back({p, 1});  // first: ties go to the target
  for (const Pixel& p : negatives) sources.push_back({p, 2});
  Flood(grid, candidate, steps, sources, owner);
  if (seeds.empty()) {
    const std::optional<Pixel> largest = LargestUnclaimedComponent(grid, candidate, steps, owner);
    if (!largest) return result;
    Flood(grid, candidate, steps, {{*largest, 1}}, owner);
  }
  for (size_t i = 0; i < mask.size(); ++i) mask[i] = owner[i] == 1;

  // 7. Holes, then the confidence.
  FillHoles(grid, negatives, mask);
  result.score = SeparationScore(grid, smoothed_, in_play, mask);
  return result;
}

}  // namespace clisc::backends
