// Assembles the classifier's training batches ahead of the optimizer step: `threads` workers each
// build every `threads`-th batch of a fixed order into a bounded queue of their own, and the
// training thread takes the batches in order. The order is given, so the batches (and the training
// result) do not depend on the number of threads; with 0 threads each batch is built inline.
#pragma once

#include <torch/types.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "workers/roles/classifier_engine.h"

namespace clisc::models {

struct SliceBatch {
  torch::Tensor images;  // [B, 3, size, size] float32, pixel / 255 (ToTensor of an RGB copy)
  torch::Tensor labels;  // [B] int64
};

// Random transforms of the training images (slice_augmentation.h): slice i of the slices vector
// gets DrawSliceAugmentation(options, image_size, seed, epoch, i), wherever it lands in the order.
struct SliceBatchAugmentation {
  roles::ClassifierAugmentation options;
  uint64_t seed = 0;
  int epoch = 0;
};

struct SliceBatchLoaderOptions {
  int image_size = 224;
  int batch_size = 8;  // the last batch may be smaller (drop_last = false)
  int threads = 0;
  int queued_batches_per_thread = 2;
  bool pin_memory = false;  // page-locked host tensors for asynchronous copies to a GPU
  std::optional<SliceBatchAugmentation> augmentation;  // none (or disabled): plain images
};

// The batch of slices[order[first]] .. slices[order[first + count - 1]], augmented when
// `augmentation` is given and enabled.
SliceBatch AssembleSliceBatch(const std::vector<roles::LabelledSlice>& slices,
                              const std::vector<int64_t>& order, size_t first, size_t count,
                              int image_size, bool pin_memory = false,
                              const SliceBatchAugmentation* augmentation = nullptr);

// One pass over `order`. The slices must outlive the loader and have image_size^2 pixels each.
class SliceBatchLoader {
 public:
  SliceBatchLoader(const std::vector<roles::LabelledSlice>& slices, std::vector<int64_t> order,
                   const SliceBatchLoaderOptions& options);
  ~SliceBatchLoader();  // stops and joins the workers, even mid-pass
  SliceBatchLoader(const SliceBatchLoader&) = delete;
  SliceBatchLoader& operator=(const SliceBatchLoader&) = delete;

  size_t batch_count() const { return batch_count_; }
  // The next batch in order, nullopt after the last. Rethrows a worker's exception.
  std::optional<SliceBatch> Next();
  // Seconds Next() spent waiting for (or, inline, building) batches so far.
  double wait_seconds() const { return wait_seconds_; }

 private:
  struct Lane {
    std::deque<SliceBatch> ready;
  };
  SliceBatch Build(size_t batch) const;
  void Work(size_t lane);

  const std::vector<roles::LabelledSlice>& slices_;
  const std::vector<int64_t> order_;
  const SliceBatchLoaderOptions options_;
  const size_t batch_count_;
  size_t next_batch_ = 0;
  double wait_seconds_ = 0;

  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Lane> lanes_;
  bool stopping_ = false;
  std::exception_ptr failure_;
  std::vector<std::thread> workers_;
};

}  // namespace clisc::models
