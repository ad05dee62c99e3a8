// Makes the U-Net's training batches ahead of the optimizer step. Iteration i's batch is a pure
// function of (seed, i) and the cases (patch_sampling.h), so `threads` workers can each build
// every `threads`-th batch into a small queue of their own while the training thread takes them
// in order; the batches are the same for any number of threads (0: built on the caller's thread).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "common/status.h"
#include "workers/segmentation/patch_sampling.h"
#include "workers/segmentation/training_volume_cache.h"

namespace clisc::segmentation {

struct PatchBatch {
  int64_t iteration = 0;  // 0-based
  int64_t batch_size = 0;
  int64_t channels = 0;
  Shape3 patch{};
  std::vector<float> images;    // [batch_size, channels, pz, py, px]
  std::vector<uint8_t> labels;  // [batch_size, pz, py, px], 0/1
  std::vector<int64_t> cases;   // the case index of each sample
};

struct PatchBatchOptions {
  int batch_size = 2;
  Shape3 patch{128, 128, 128};
  int64_t channels = 1;  // every case must have this many
  CropPad pad = CropPad::kBackground;
  uint64_t seed = 2023;
};

// Iteration `iteration`'s batch: sample b is CaseOfSample(seed, iteration * batch + b) cut by
// SampleRng(seed, iteration, b). Errors: the cache's, or INVALID_ARGUMENT naming a case with
// another channel count.
StatusOr<PatchBatch> MakePatchBatch(TrainingVolumeCache& cache, const PatchBatchOptions& options,
                                    int64_t iteration);

class PatchBatchLoader {
 public:
  struct Loaded {
    PatchBatch batch;
    double waited_seconds = 0;  // time the caller spent in Next() for it
  };

  // The batches of iterations [first, last). The cache must outlive the loader.
  PatchBatchLoader(TrainingVolumeCache& cache, const PatchBatchOptions& options, int64_t first,
                   int64_t last, int threads, int queued_batches_per_thread = 2);
  ~PatchBatchLoader();  // stops and joins the workers, even mid-run
  PatchBatchLoader(const PatchBatchLoader&) = delete;
  PatchBatchLoader& operator=(const PatchBatchLoader&) = delete;

  // The next iteration's batch; OUT_OF_RANGE after the last one; a worker's error in its turn
  // (and again on every later call).
  StatusOr<Loaded> Next();

 private:
  struct Lane {
    std::deque<StatusOr<PatchBatch>> ready;
  };
  void Work(size_t lane);

  TrainingVolumeCache& cache_;
  const PatchBatchOptions options_;
  const int64_t first_, last_;
  const size_t capacity_;
  int64_t next_ = 0;
  Status failure_;

  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Lane> lanes_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace clisc::segmentation
