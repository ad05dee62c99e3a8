#include "workers/segmentation/patch_sampling.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <string>

namespace clisc::segmentation {
namespace {

// Domain tags keep the per-sample and per-epoch streams apart for the same seed.
constexpr uint32_t kSampleStream = 0x5A3C0001u;
constexpr uint32_t kEpochStream = 0x5A3C0002u;

uint32_t Low(uint64_t v) { return static_cast<uint32_t>(v); }
uint32_t High(uint64_t v) { return static_cast<uint32_t>(v >> 32); }

int64_t FloorDiv2(int64_t v) { return v >= 0 ? v / 2 : -((-v + 1) / 2); }

Dims DimsOf(const Shape3& zyx) { return Dims{zyx[2], zyx[1], zyx[0]}; }

// The rotated shape of (nz, ny): odd turns swap the two.
Shape3 RotatedShape(const Shape3& shape, int k) {
  return (k % 2 == 1) ? Shape3{shape[1], shape[0], shape[2]} : shape;
}

// np.rot90(m, k, axes=(0, 1)) reads out[i, j] from m[SourceZY(i, j)] for a source of (n0, n1):
// k=1 transpose(flip(m, 1)), k=2 flip(flip(m, 0), 1), k=3 flip(transpose(m), 1).
inline void SourceZY(int k, int64_t n0, int64_t n1, int64_t i, int64_t j, int64_t& z, int64_t& y) {
  switch (k) {
    case 1:
      z = j;
      y = n1 - 1 - i;
      break;
    case 2:
      z = n0 - 1 - i;
      y = n1 - 1 - j;
      break;
    case 3:
      z = n0 - 1 - j;
      y = i;
      break;
    default:
      z = i;
      y = j;
      break;
  }
}

float ChannelMinimum(const FloatVolume& volume) {
  if (volume.empty()) return 0.0f;
  return *std::min_element(volume.voxels().begin(), volume.voxels().end());
}

// Copies one x-row of the patch: source row `row` (or nothing: all padding when null) starting at
// source x `x_first` for `count` voxels, padding where the source has none.
template <typename T>
void CopyRow(const T* row, int64_t source_width, int64_t x_first, int64_t count, T pad, T* out) {
  if (row == nullptr) {
    std::fill(out, out + count, pad);
    return;
  }
  const int64_t begin = std::clamp<int64_t>(-x_first, 0, count);
  const int64_t end = std::clamp<int64_t>(source_width - x_first, begin, count);
  std::fill(out, out + begin, pad);
  if (end > begin) std::memcpy(out + begin, row + x_first + begin, sizeof(T) * (end - begin));
  std::fill(out + end, out + count, pad);
}

}  // namespace

Shape3 ShapeOf(const Dims& size) { return {size.z, size.y, size.x}; }

StatusOr<CropPad> ParseCropPad(std::string_view text) {
  if (text == "background") return CropPad::kBackground;
  if (text == "zero") return CropPad::kZero;
  return InvalidArgumentError("crop_pad must be background or zero, got '" + std::string(text) +
                              "'");
}

void ComputeChannelMinima(TrainingCase& training_case) {
  training_case.channel_minima.clear();
  for (const FloatVolume& channel : training_case.channels) {
    training_case.channel_minima.push_back(ChannelMinimum(channel));
  }
}

int64_t TrainingCase::bytes() const {
  int64_t total = label.count() * static_cast<int64_t>(sizeof(uint8_t));
  for (const FloatVolume& channel : channels) {
    total += channel.count() * static_cast<int64_t>(sizeof(float));
  }
  return total;
}

template <typename T>
Volume<T> Rot90ZY(const Volume<T>& volume, int k) {
  k = ((k % 4) + 4) % 4;
  const Shape3 in = ShapeOf(volume.size());
  const Shape3 out_shape = RotatedShape(in, k);
  Volume<T> out(DimsOf(out_shape));
  for (int64_t i = 0; i < out_shape[0]; ++i) {
    for (int64_t j = 0; j < out_shape[1]; ++j) {
      int64_t z = 0, y = 0;
      SourceZY(k, in[0], in[1], i, j, z, y);
      std::memcpy(&out.at(0, j, i), &volume.at(0, y, z), sizeof(T) * in[2]);
    }
  }
  return out;
}

template <typename T>
Volume<T> FlipAxis(const Volume<T>& volume, int axis) {
  const Dims size = volume.size();
  Volume<T> out(size);
  for (int64_t z = 0; z < size.z; ++z) {
    for (int64_t y = 0; y < size.y; ++y) {
      for (int64_t x = 0; x < size.x; ++x) {
        const int64_t sz = axis == 0 ? size.z - 1 - z : z;
        const int64_t sy = axis == 1 ? size.y - 1 - y : y;
        const int64_t sx = axis == 2 ? size.x - 1 - x : x;
        out.at(x, y, z) = volume.at(sx, sy, sz);
      }
    }
  }
  return out;
}

template <typename T>
Volume<T> PadSymmetric(const Volume<T>& volume, const Shape3& per_side, T value) {
  const Shape3 in = ShapeOf(volume.size());
  Volume<T> out(DimsOf({in[0] + 2 * per_side[0], in[1] + 2 * per_side[1], in[2] + 2 * per_side[2]}),
                value);
  for (int64_t z = 0; z < in[0]; ++z) {
    for (int64_t y = 0; y < in[1]; ++y) {
      std::memcpy(&out.at(per_side[2], y + per_side[1], z + per_side[0]), &volume.at(0, y, z),
                  sizeof(T) * in[2]);
    }
  }
  return out;
}

template <typename T>
Volume<T> Crop(const Volume<T>& volume, const Shape3& start, const Shape3& size) {
  Volume<T> out(DimsOf(size));
  for (int64_t z = 0; z < size[0]; ++z) {
    for (int64_t y = 0; y < size[1]; ++y) {
      std::memcpy(&out.at(0, y, z), &volume.at(start[2], y + start[1], z + start[0]),
                  sizeof(T) * size[2]);
    }
  }
  return out;
}

template Volume<float> Rot90ZY(const Volume<float>&, int);
template Volume<uint8_t> Rot90ZY(const Volume<uint8_t>&, int);
template Volume<float> FlipAxis(const Volume<float>&, int);
template Volume<uint8_t> FlipAxis(const Volume<uint8_t>&, int);
template Volume<float> PadSymmetric(const Volume<float>&, const Shape3&, float);
template Volume<uint8_t> PadSymmetric(const Volume<uint8_t>&, const Shape3&, uint8_t);
template Volume<float> Crop(const Volume<float>&, const Shape3&, const Shape3&);
template Volume<uint8_t> Crop(const Volume<uint8_t>&, const Shape3&, const Shape3&);

Shape3 CropPadding(const Shape3& size, const Shape3& patch) {
  bool any_small = false;
  for (int a = 0; a < 3; ++a) any_small = any_small || size[a] <= patch[a];
  Shape3 padding{0, 0, 0};
  if (!any_small) return padding;
  for (int a = 0; a < 3; ++a) {
    padding[a] = std::max<int64_t>(FloorDiv2(patch[a] - size[a]) + 3, 0);
  }
  return padding;
}

std::mt19937_64 SampleRng(uint64_t seed, int64_t iteration, int64_t index_in_batch) {
  const auto it = static_cast<uint64_t>(iteration);
  const auto index = static_cast<uint64_t>(index_in_batch);
  std::seed_seq sequence{kSampleStream, Low(seed),  High(seed), Low(it),
                         High(it),      Low(index), High(index)};
  return std::mt19937_64(sequence);
}

int64_t UniformBelow(std::mt19937_64& rng, int64_t bound) {
  if (bound <= 1) return 0;
  const auto range = static_cast<uint64_t>(bound);
  // Reject the top partial block of the 64-bit range so every residue is equally likely.
  const uint64_t limit =
      std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % range;
  uint64_t draw = rng();
  while (draw >= limit) draw = rng();
  return static_cast<int64_t>(draw % range);
}

std::vector<int64_t> EpochPermutation(uint64_t seed, int64_t epoch, int64_t case_count) {
  std::vector<int64_t> order(static_cast<size_t>(std::max<int64_t>(case_count, 0)));
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  const auto e = static_cast<uint64_t>(epoch);
  std::seed_seq sequence{kEpochStream, Low(seed), High(seed), Low(e), High(e)};
  std::mt19937_64 rng(sequence);
  for (size_t i = order.size(); i > 1; --i) {
    std::swap(order[i - 1], order[static_cast<size_t>(UniformBelow(rng, static_cast<int64_t>(i)))]);
  }
  return order;
}

int64_t CaseOfSample(uint64_t seed, int64_t sample, int64_t case_count) {
  if (case_count <= 0) return 0;
  return EpochPermutation(seed, sample / case_count, case_count)[sample % case_count];
}

StatusOr<PatchPlan> DrawPatchPlan(const Shape3& case_shape, const Shape3& patch,
                                  std::mt19937_64& rng) {
  for (int a = 0; a < 3; ++a) {
    if (patch[a] < 1 || case_shape[a] < 1) {
      return InvalidArgumentError("patch and case sizes must be >= 1 on every axis");
    }
  }
  PatchPlan plan;
  plan.rotations = static_cast<int>(UniformBelow(rng, 4));
  plan.flip_axis = static_cast<int>(UniformBelow(rng, 2));
  plan.padding = CropPadding(RotatedShape(case_shape, plan.rotations), patch);
  const Shape3 padded = PlannedShape(case_shape, plan);
  for (int a = 0; a < 3; ++a) plan.start[a] = UniformBelow(rng, padded[a] - patch[a]);
  return plan;
}

Shape3 PlannedShape(const Shape3& case_shape, const PatchPlan& plan) {
  Shape3 shape = RotatedShape(case_shape, plan.rotations);
  for (int a = 0; a < 3; ++a) shape[a] += 2 * plan.padding[a];
  return shape;
}

void ExtractPatchInto(const TrainingCase& training_case, const PatchPlan& plan, const Shape3& patch,
                      CropPad pad, float* image, uint8_t* label) {
  const Shape3 source = ShapeOf(training_case.label.size());
  const Shape3 rotated = RotatedShape(source, plan.rotations);
  std::vector<float> pad_values(training_case.channels.size(), 0.0f);
  const bool pads = plan.padding[0] > 0 || plan.padding[1] > 0 || plan.padding[2] > 0;
  if (pad == CropPad::kBackground && pads) {
    for (size_t c = 0; c < pad_values.size(); ++c) {
      pad_values[c] = training_case.channel_minima.size() == pad_values.size()
                          ? training_case.channel_minima[c]
                          : ChannelMinimum(training_case.channels[c]);
    }
  }
  const int64_t plane = patch[0] * patch[1] * patch[2];
  const int64_t x_first = plan.start[2] - plan.padding[2];
  for (int64_t pz = 0; pz < patch[0]; ++pz) {
    for (int64_t py = 0; py < patch[1]; ++py) {
      // The voxel's place in the rotated and flipped volume, before padding.
      int64_t r[2] = {plan.start[0] + pz - plan.padding[0], plan.start[1] + py - plan.padding[1]};
      const bool inside = r[0] >= 0 && r[0] < rotated[0] && r[1] >= 0 && r[1] < rotated[1];
      int64_t z = 0, y = 0;
      if (inside) {
        r[plan.flip_axis] = rotated[plan.flip_axis] - 1 - r[plan.flip_axis];
        SourceZY(plan.rotations, source[0], source[1], r[0], r[1], z, y);
      }
      const int64_t offset = (pz * patch[1] + py) * patch[2];
      for (size_t c = 0; c < training_case.channels.size(); ++c) {
        const float* row = inside ? &training_case.channels[c].at(0, y, z) : nullptr;
        CopyRow(row, source[2], x_first, patch[2], pad_values[c],
                image + static_cast<int64_t>(c) * plane + offset);
      }
      const uint8_t* label_row = inside ? &training_case.label.at(0, y, z) : nullptr;
      CopyRow(label_row, source[2], x_first, patch[2], uint8_t{0}, label + offset);
    }
  }
}

StatusOr<TrainingPatch> SamplePatch(const TrainingCase& training_case, const Shape3& patch,
                                    CropPad pad, std::mt19937_64& rng) {
  ASSIGN_OR_RETURN(const PatchPlan plan,
                   DrawPatchPlan(ShapeOf(training_case.label.size()), patch, rng));
  const Dims size = DimsOf(patch);
  std::vector<float> image(static_cast<size_t>(size.count() * training_case.channels.size()));
  TrainingPatch out;
  out.label = LabelVolume(size);
  ExtractPatchInto(training_case, plan, patch, pad, image.data(), out.label.data());
  for (size_t c = 0; c < training_case.channels.size(); ++c) {
    FloatVolume channel(size);
    std::memcpy(channel.data(), image.data() + c * size.count(), sizeof(float) * size.count());
    out.channels.push_back(std::move(channel));
  }
  return out;
}

}  // namespace clisc::segmentation
