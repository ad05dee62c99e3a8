// Timings of the metric core on BraTS-sized volumes (240 x 240 x 155): Dice + HD + HD95 for
// tumour-sized blobs and for masks that fill most of the volume (the worst case for the distance
// transform, whose box is then the whole array), plus the morphology the pipeline runs per case.
// Usage: metrics_bench [repeats]   (default 5; the median is reported)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "common/distance_transform.h"
#include "common/metrics.h"
#include "common/morphology.h"

namespace clisc {
namespace {

constexpr Dims kBrats{240, 240, 155};

// A lumpy blob: the union of balls scattered around a centre, the shape of a glioma's whole
// tumour region at BraTS scale (tens of thousands of voxels).
Volume<uint8_t> Blob(double cx, double cy, double cz, double radius, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> jitter(-0.6, 0.6), size(0.45, 0.8);
  Volume<uint8_t> m(kBrats);
  for (int b = 0; b < 7; ++b) {
    const double bx = cx + jitter(rng) * radius, by = cy + jitter(rng) * radius,
                 bz = cz + jitter(rng) * radius, r = size(rng) * radius;
    for (int64_t z = std::max<int64_t>(0, bz - r); z <= std::min<int64_t>(kBrats.z - 1, bz + r);
         ++z)
      for (int64_t y = std::max<int64_t>(0, by - r); y <= std::min<int64_t>(kBrats.y - 1, by + r);
           ++y)
        for (int64_t x = std::max<int64_t>(0, bx - r); x <= std::min<int64_t>(kBrats.x - 1, bx + r);
             ++x) {
          const double dx = x - bx, dy = y - by, dz = z - bz;
          if (dx * dx + dy * dy + dz * dz <= r * r) m.at(x, y, z) = 1;
        }
  }
  return m;
}

// An ellipsoid filling most of the array, with a few voxels of noise on its surface.
Volume<uint8_t> NearFull(double shrink, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> noise(-0.02, 0.02);
  Volume<uint8_t> m(kBrats);
  const double ax = kBrats.x / 2.0, ay = kBrats.y / 2.0, az = kBrats.z / 2.0;
  for (int64_t z = 0; z < kBrats.z; ++z)
    for (int64_t y = 0; y < kBrats.y; ++y)
      for (int64_t x = 0; x < kBrats.x; ++x) {
        const double u = (x + 0.5 - ax) / ax, v = (y + 0.5 - ay) / ay, w = (z + 0.5 - az) / az;
        m.at(x, y, z) = u * u + v * v + w * w <= shrink + noise(rng);
      }
  return m;
}

Volume<uint8_t> WithSpacing(Volume<uint8_t> m, Spacing3 spacing) {
  m.mutable_geometry().spacing = spacing;
  return m;
}

// Wall time is what a user waits; CPU time of this thread is what the code costs, and stays
// meaningful on a machine shared with other jobs (where wall time can be several times larger).
struct Timing {
  double wall_ms = 0, cpu_ms = 0;
};

double ThreadCpuMs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

// Medians of each clock over `repeats` runs.
Timing Measure(int repeats, const std::function<void()>& fn) {
  std::vector<double> wall, cpu;
  for (int i = 0; i < repeats; ++i) {
    const double c0 = ThreadCpuMs();
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    wall.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    cpu.push_back(ThreadCpuMs() - c0);
  }
  std::sort(wall.begin(), wall.end());
  std::sort(cpu.begin(), cpu.end());
  return {wall[wall.size() / 2], cpu[cpu.size() / 2]};
}

void BenchPair(const char* name, const Volume<uint8_t>& pred, const Volume<uint8_t>& gt,
               int repeats) {
  MetricOptions mm_only;
  mm_only.voxel_distances = false;
  MaskMetrics last;
  const Timing all = Measure(repeats, [&] { last = *ComputeMaskMetrics(pred, gt); });
  const Timing mm = Measure(repeats, [&] { (void)ComputeMaskMetrics(pred, gt, mm_only); });
  std::printf("%-36s %8lld %8lld %8.0f %8.0f %8.0f %8.0f  dice %.4f hd95 %.3f (monai %.3f)\n", name,
              static_cast<long long>(last.pred_voxels), static_cast<long long>(last.gt_voxels),
              mm.cpu_ms, mm.wall_ms, all.cpu_ms, all.wall_ms, last.medpy.dice.value,
              last.medpy.hd95.value, last.monai.hd95.value);
}

void BenchBlock(const char* name, int repeats, const std::function<void()>& fn) {
  const Timing t = Measure(repeats, fn);
  std::printf("%-36s %8.0f %8.0f\n", name, t.cpu_ms, t.wall_ms);
}

int Run(int repeats) {
  std::printf("metrics on %lldx%lldx%lld, median of %d runs (ms)\n",
              static_cast<long long>(kBrats.x), static_cast<long long>(kBrats.y),
              static_cast<long long>(kBrats.z), repeats);
  std::printf(
      "'mm' = Dice + HD + HD95 in mm (medpy and MONAI); 'all' adds the voxel-unit variants\n"
      "(the reference HD95), free when the spacing is 1 mm\n");
  std::printf("%-36s %8s %8s %8s %8s %8s %8s\n", "pair", "pred vox", "gt vox", "mm cpu", "mm wall",
              "all cpu", "all wall");

  const Volume<uint8_t> tumour = Blob(120, 130, 80, 28, 1);
  const Volume<uint8_t> tumour_pred = Blob(123, 128, 82, 27, 2);
  BenchPair("tumour blobs, 1 mm", tumour, tumour_pred, repeats);
  BenchPair("tumour blobs, 0.94x0.94x1.5 mm", WithSpacing(tumour, {0.9375, 0.9375, 1.5}),
            WithSpacing(tumour_pred, {0.9375, 0.9375, 1.5}), repeats);
  const Volume<uint8_t> small = Blob(60, 70, 40, 8, 3);
  BenchPair("small tumour vs far false positive", small, Blob(190, 180, 120, 10, 4), repeats);
  const Volume<uint8_t> full = NearFull(0.95, 5);
  const Volume<uint8_t> full_pred = NearFull(0.9, 6);
  BenchPair("near-full volume, 1 mm", full, full_pred, repeats);
  BenchPair("near-full volume, 0.94x0.94x1.5 mm", WithSpacing(full, {0.9375, 0.9375, 1.5}),
            WithSpacing(full_pred, {0.9375, 0.9375, 1.5}), repeats);
  const Volume<uint8_t> filled(kBrats, 1);
  BenchPair("whole array vs near-full", filled, full, repeats);

  std::printf("\nbuilding blocks on the whole array (ms)\n%-36s %8s %8s\n", "", "cpu", "wall");
  const Volume<uint8_t> border = ExtractBorder(full);
  BenchBlock("squared EDT (anisotropic)", repeats, [&] {
    (void)SquaredDistanceTransform(border.data(), border.size(), {0.9375, 0.9375, 1.5});
  });
  BenchBlock("border extraction", repeats, [&] { (void)ExtractBorder(full); });
  BenchBlock("opening, 3x3x3 cube", repeats, [&] { (void)OpenCube(full); });
  BenchBlock("components, 26-connected", repeats,
             [&] { (void)LabelComponents(full, Connectivity::k26); });
  BenchBlock("remove small components (1/3)", repeats,
             [&] { (void)RemoveSmallComponents(full, 1.0 / 3.0); });
  return 0;
}

}  // namespace
}  // namespace clisc

int main(int argc, char** argv) {
  const int repeats = argc > 1 ? std::max(1, std::atoi(argv[1])) : 5;
  return clisc::Run(repeats);
}
