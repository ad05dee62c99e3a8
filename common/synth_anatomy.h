// Anatomy for the semi-synthetic BraTS dataset: a real brain template (Colin27, `ch2bet` from
// mricron-data), its soft tissue classes, and a per-case random deformation (affine + smooth
// elastic warp) that carries it onto the BraTS grid.
//
// Also holds SynthRandom, the one random source of the synth stack: every synth module draws
// from it, so a seed gives byte-identical volumes whatever the standard library's random
// distributions do (only the engine's bit sequence, which the standard fixes, is used).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <random>

#include "common/resample.h"
#include "common/status.h"
#include "common/volume.h"

namespace clisc {

inline constexpr char kDefaultBrainTemplatePath[] = "/usr/share/mricron/templates/ch2bet.nii.gz";

// std::mt19937_64's output sequence is fixed by the standard but its distributions are not, so
// the mappings to uniform and normal numbers are our own.
class SynthRandom {
 public:
  explicit SynthRandom(uint64_t seed) : engine_(seed) {}

  uint64_t Next() { return engine_(); }
  // Uniform in [0, 1) with 53 random bits.
  double Uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }
  double Uniform(double lo, double hi) { return lo + (hi - lo) * Uniform(); }
  // Uniform in [0, bound), exact (rejection sampling); bound > 0.
  uint64_t UniformBelow(uint64_t bound);
  // Standard normal by Box-Muller (both outputs used).
  double Normal();
  // exp(Uniform(log lo, log hi)): for sizes, where a factor matters more than a difference.
  double LogUniform(double lo, double hi);

  // A well-mixed seed from a parent seed and a stream number (SplitMix64 finaliser), so that
  // derived streams are independent and each depends only on its own inputs.
  static uint64_t Derive(uint64_t seed, uint64_t stream);

 private:
  std::mt19937_64 engine_;
  bool has_spare_ = false;
  double spare_ = 0.0;
};

// Gaussian noise smoothed with `sigma_mm` on the given grid, then shifted and scaled to mean 0
// and standard deviation 1: the building block of every smooth random field (elastic warp, bias
// field, tumor shape and texture).
FloatVolume SmoothRandomField(const Dims& dims, const Geometry& geometry, double sigma_mm,
                              SynthRandom& rng);

enum TissueClass { kCsf = 0, kGrayMatter = 1, kWhiteMatter = 2 };

// The template, prepared for sampling at one output resolution.
struct BrainTemplate {
  FloatVolume intensity;  // T1-weighted, 0 outside the brain
  FloatVolume brain;      // brain mask as 0/1 floats, so it interpolates to a partial volume
  FloatVolume depth_mm;   // distance to the outside of the brain (0 outside)
  std::array<double, 3> class_means{};  // template intensity of pure CSF, GM, WM
  Point3 bbox_min{}, bbox_max{};        // physical bounding box of the brain (LPS mm)
  Point3 center() const;
};

// Reads the template and prepares it for output voxels of `output_spacing_mm`: it is smoothed
// just enough to avoid aliasing when sampled coarser than its own 1 mm. Results are cached per
// (path, spacing) for the life of the process and shared read-only between threads.
// NOT_FOUND names the path and the Debian package that ships it.
StatusOr<std::shared_ptr<const BrainTemplate>> LoadBrainTemplate(const std::filesystem::path& path,
                                                                 double output_spacing_mm);

// Class centres of a T1 brain by 1D k-means (k = 3) over the voxels with `mask` > 0.5.
std::array<double, 3> TissueClassMeans(const FloatVolume& intensity, const FloatVolume& mask);

// Partial-volume fractions of CSF, GM and WM for a T1 intensity: linear between neighbouring
// class centres, pure beyond the outer ones. Fractions sum to 1.
std::array<float, 3> TissueFractions(double intensity, const std::array<double, 3>& class_means);

// The anatomy of one case on the output grid.
struct CaseAnatomy {
  LabelVolume brain;                  // 1 inside the brain
  std::array<FloatVolume, 3> tissue;  // CSF, GM, WM fractions (0 outside the brain)
};

// Per-case random placement of the template on the output grid: output physical point ->
// template physical point, as an affine (rotation, scale, translation) after a smooth elastic
// displacement in output space.
struct AnatomyWarp {
  AffineTransform affine;
  DisplacementField elastic;
  Point3 operator()(const Point3& p) const {
    const Point3 d = elastic.At(p);
    return affine.Apply({p[0] + d[0], p[1] + d[1], p[2] + d[2]});
  }
};

struct AnatomyWarpOptions {
  double base_scale = 0.93;         // Colin27 (MNI size) is larger than a typical BraTS brain
  double scale_jitter = 0.08;       // +-8 % per axis
  double max_rotation_deg = 10.0;   // about each axis
  double max_translation_mm = 6.0;  // in x and y; half of it in z
  double elastic_rms_mm = 2.0;      // typical size of the elastic displacement
  double elastic_sigma_mm = 16.0;   // its smoothness
};

AnatomyWarp RandomAnatomyWarp(const BrainTemplate& tpl, const Dims& dims, const Geometry& geometry,
                              SynthRandom& rng, const AnatomyWarpOptions& options = {});

// Samples the template through `output_to_template` onto the output grid.
CaseAnatomy WarpAnatomy(const BrainTemplate& tpl, const Dims& dims, const Geometry& geometry,
                        const PointMap& output_to_template);

// What the template holds at one physical point (for choosing where a tumor may grow).
struct TemplateSample {
  float brain = 0;  // interpolated mask
  float depth_mm = 0;
  std::array<float, 3> tissue{};
};
TemplateSample SampleTemplate(const BrainTemplate& tpl, const Point3& template_point);

}  // namespace clisc
