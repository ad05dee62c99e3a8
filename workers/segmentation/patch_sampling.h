// The U-Net's training augmentation (REFERENCE.md 7.1, dataloaders/brats2020.py): RandomRotFlip
// then RandomCrop, applied to every channel of a case and to its label alike. A Volume stores x
// fastest, which is the memory layout of the reference's numpy (Z, H, W) array, so numpy's axis 0
// is z and axis 1 is y here; every triple in this file is (z, y, x).
//
// The pieces are pure functions with explicit parameters (rotation count, flip axis, padding,
// crop start) so tests pin the geometry; SamplePatch draws the parameters and ExtractPatchInto
// produces the same voxels without materializing the rotated and padded volume.
//
// Randomness is a pure function of (seed, iteration, index in the batch), and the case order of a
// sample is a pure function of (seed, sample number), so a batch never depends on loader threads
// or on where a run was resumed.
#pragma once

#include <array>
#include <cstdint>
#include <random>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/volume.h"

namespace clisc::segmentation {

using Shape3 = std::array<int64_t, 3>;  // (z, y, x)

Shape3 ShapeOf(const Dims& size);  // (size.z, size.y, size.x)

// What the crop pads with: each channel's minimum (background after z-scoring) or 0 (the
// reference). Labels always pad with 0.
enum class CropPad { kBackground, kZero };
StatusOr<CropPad> ParseCropPad(std::string_view text);  // "background" | "zero"

// One case in memory: channels on one grid and the binary label (0/1) on the same grid.
struct TrainingCase {
  std::vector<FloatVolume> channels;
  LabelVolume label;
  // Each channel's minimum (the background pad value), kept with the case so sampling does not
  // scan whole volumes; computed on demand when empty.
  std::vector<float> channel_minima;
  int64_t bytes() const;
};

// Fills training_case.channel_minima.
void ComputeChannelMinima(TrainingCase& training_case);

// ---- The reference's operations, one at a time (numpy semantics). ----

// np.rot90(v, k, axes=(0, 1)): k quarter turns in the (z, y) plane, k taken modulo 4.
template <typename T>
Volume<T> Rot90ZY(const Volume<T>& volume, int k);

// np.flip(v, axis) with axis 0 = z, 1 = y, 2 = x.
template <typename T>
Volume<T> FlipAxis(const Volume<T>& volume, int axis);

// np.pad(v, [(p, p) for p in per_side], constant_values=value).
template <typename T>
Volume<T> PadSymmetric(const Volume<T>& volume, const Shape3& per_side, T value);

// v[start[0]:start[0]+size[0], ...]; the box must lie inside the volume.
template <typename T>
Volume<T> Crop(const Volume<T>& volume, const Shape3& start, const Shape3& size);

// RandomCrop's padding per side: when any axis is <= the patch, every axis gets
// max((patch - size) // 2 + 3, 0) (floor division); otherwise none.
Shape3 CropPadding(const Shape3& size, const Shape3& patch);

// ---- Randomness. ----

// The generator of sample `index_in_batch` of `iteration` (0-based).
std::mt19937_64 SampleRng(uint64_t seed, int64_t iteration, int64_t index_in_batch);

// Uniform in [0, bound) without modulo bias (std::uniform_int_distribution is not portable).
int64_t UniformBelow(std::mt19937_64& rng, int64_t bound);

// The shuffle of epoch `epoch` (0-based): a permutation of 0..case_count-1 seeded by
// (seed, epoch) alone.
std::vector<int64_t> EpochPermutation(uint64_t seed, int64_t epoch, int64_t case_count);

// The case of global sample `sample` (= iteration * batch + index): epoch permutations laid end
// to end, perm_{sample / n}[sample % n].
int64_t CaseOfSample(uint64_t seed, int64_t sample, int64_t case_count);

// ---- Composed augmentation. ----

struct PatchPlan {
  int rotations = 0;  // k of np.rot90, 0..3
  int flip_axis = 0;  // 0 = z, 1 = y
  Shape3 padding{};   // per side, after the rotation
  Shape3 start{};     // crop start in the rotated, flipped and padded volume
};

// Draws as the reference does, in its order: k = randint(0, 4), axis = randint(0, 2), then the
// crop starts randint(0, s - p) per axis of the padded shape. INVALID_ARGUMENT for a patch < 1.
StatusOr<PatchPlan> DrawPatchPlan(const Shape3& case_shape, const Shape3& patch,
                                  std::mt19937_64& rng);

// The padded shape the plan crops from, for a case of `case_shape`.
Shape3 PlannedShape(const Shape3& case_shape, const PatchPlan& plan);

// Writes the patch of `plan`: channels to `image` as [C, pz, py, px] floats and the label to
// `label` as [pz, py, px] bytes. Equal to Crop(PadSymmetric(FlipAxis(Rot90ZY(v, k), axis)))
// for each volume, but reads only the voxels it keeps.
void ExtractPatchInto(const TrainingCase& training_case, const PatchPlan& plan, const Shape3& patch,
                      CropPad pad, float* image, uint8_t* label);

// A patch as volumes (default geometry): one per channel and the label.
struct TrainingPatch {
  std::vector<FloatVolume> channels;
  LabelVolume label;
};

// DrawPatchPlan + ExtractPatchInto.
StatusOr<TrainingPatch> SamplePatch(const TrainingCase& training_case, const Shape3& patch,
                                    CropPad pad, std::mt19937_64& rng);

}  // namespace clisc::segmentation
