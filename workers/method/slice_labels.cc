#include "workers/method/slice_labels.h"

#include <algorithm>
#include <cstdlib>
#include <map>

namespace clisc::method {

std::vector<SliceDecision> DecideSlices(const std::vector<std::vector<float>>& probabilities,
                                        double threshold) {
  std::vector<SliceDecision> decisions(probabilities.size());
  for (size_t z = 0; z < probabilities.size(); ++z) {
    SliceDecision& d = decisions[z];
    d.z = static_cast<int>(z);
    d.probabilities = probabilities[z];
    if (d.probabilities.empty()) continue;
    // max_element returns the first of equal maxima: argmax's tie rule.
    const auto best = std::max_element(d.probabilities.begin(), d.probabilities.end());
    d.raw_label = static_cast<int>(best - d.probabilities.begin());
    d.kept = static_cast<double>(*best) >= threshold;
    d.label = d.kept ? d.raw_label : -1;
  }
  return decisions;
}

void SmoothSliceLabels(std::vector<SliceDecision>& decisions, const SmoothingOptions& options) {
  std::vector<SliceDecision*> kept;
  for (SliceDecision& d : decisions) {
    if (d.kept) kept.push_back(&d);
  }
  std::vector<int> original(kept.size());
  for (size_t i = 0; i < kept.size(); ++i) original[i] = kept[i]->label;

  const int count = static_cast<int>(kept.size());
  for (int i = 0; i < count; ++i) {
    std::map<int, int> votes;
    int neighbours = 0;
    const int first = std::max(0, i - options.window);
    const int last = std::min(count - 1, i + options.window);
    for (int j = first; j <= last; ++j) {
      if (j == i || std::abs(kept[j]->z - kept[i]->z) > options.max_gap) continue;
      ++votes[original[j]];
      ++neighbours;
    }
    if (neighbours <= options.quorum) continue;
    int winner = kNormalLabel, top = 0;
    bool tied = false;
    for (const auto& [label, n] : votes) {
      if (n > top) {
        winner = label, top = n, tied = false;
      } else if (n == top) {
        tied = true;
      }
    }
    kept[i]->label = tied ? kNormalLabel : winner;
  }
}

std::vector<SliceDecision> GroundTruthSliceLabels(const LabelVolume& ground_truth) {
  const Dims& d = ground_truth.size();
  const size_t plane = static_cast<size_t>(d.x * d.y);
  std::vector<SliceDecision> decisions(static_cast<size_t>(std::max<int64_t>(d.z, 0)));
  for (size_t z = 0; z < decisions.size(); ++z) {
    const uint8_t* begin = ground_truth.data() + z * plane;
    const bool tumor = std::any_of(begin, begin + plane, [](uint8_t v) { return v != 0; });
    SliceDecision& s = decisions[z];
    s.z = static_cast<int>(z);
    s.kept = true;
    s.raw_label = s.label = tumor ? kTumorLabel : kNormalLabel;
  }
  return decisions;
}

}  // namespace clisc::method
