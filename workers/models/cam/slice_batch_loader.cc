#include "workers/models/cam/slice_batch_loader.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <utility>

#include "workers/models/cam/slice_augmentation.h"

namespace clisc::models {

SliceBatch AssembleSliceBatch(const std::vector<roles::LabelledSlice>& slices,
                              const std::vector<int64_t>& order, size_t first, size_t count,
                              int image_size, bool pin_memory,
                              const SliceBatchAugmentation* augmentation) {
  const bool augment = augmentation != nullptr && augmentation->options.enabled;
  const int64_t plane = static_cast<int64_t>(image_size) * image_size;
  const auto batch = static_cast<int64_t>(count);
  SliceBatch out;
  out.images = torch::empty({batch, 3, image_size, image_size},
                            torch::TensorOptions(torch::kFloat).pinned_memory(pin_memory));
  out.labels = torch::empty({batch}, torch::TensorOptions(torch::kLong).pinned_memory(pin_memory));
  float* images = out.images.data_ptr<float>();
  int64_t* labels = out.labels.data_ptr<int64_t>();
  for (int64_t i = 0; i < batch; ++i) {
    const int64_t index = order[first + i];
    const roles::LabelledSlice& slice = slices[static_cast<size_t>(index)];
    float* channel0 = images + i * 3 * plane;
    if (augment) {
      const SliceAugmentationDraw draw = DrawSliceAugmentation(
          augmentation->options, image_size, augmentation->seed, augmentation->epoch, index);
      ApplySliceAugmentation(slice.pixels.data(), image_size, draw, channel0);
    } else {
      // ToTensor's float32 division by 255 (the same correctly rounded quotient as torch's div).
      for (int64_t p = 0; p < plane; ++p) {
        channel0[p] = static_cast<float>(slice.pixels[p]) / 255.0f;
      }
    }
    std::memcpy(channel0 + plane, channel0, sizeof(float) * plane);
    std::memcpy(channel0 + 2 * plane, channel0, sizeof(float) * plane);
    labels[i] = slice.label;
  }
  return out;
}

SliceBatchLoader::SliceBatchLoader(const std::vector<roles::LabelledSlice>& slices,
                                   std::vector<int64_t> order,
                                   const SliceBatchLoaderOptions& options)
    : slices_(slices),
      order_(std::move(order)),
      options_(options),
      batch_count_(options.batch_size < 1
                       ? 0
                       : (order_.size() + options.batch_size - 1) / options.batch_size) {
  const size_t threads = std::min<size_t>(std::max(options_.threads, 0), batch_count_);
  lanes_.resize(threads);
  workers_.reserve(threads);
  for (size_t lane = 0; lane < threads; ++lane) workers_.emplace_back([this, lane] { Work(lane); });
}

SliceBatchLoader::~SliceBatchLoader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  for (std::thread& worker : workers_) worker.join();
}

SliceBatch SliceBatchLoader::Build(size_t batch) const {
  const size_t first = batch * static_cast<size_t>(options_.batch_size);
  const size_t count = std::min<size_t>(options_.batch_size, order_.size() - first);
  return AssembleSliceBatch(slices_, order_, first, count, options_.image_size, options_.pin_memory,
                            options_.augmentation ? &*options_.augmentation : nullptr);
}

void SliceBatchLoader::Work(size_t lane) {
  const size_t capacity = static_cast<size_t>(std::max(options_.queued_batches_per_thread, 1));
  try {
    for (size_t batch = lane; batch < batch_count_; batch += lanes_.size()) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [&] { return stopping_ || lanes_[lane].ready.size() < capacity; });
        if (stopping_) return;
      }
      SliceBatch built = Build(batch);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        lanes_[lane].ready.push_back(std::move(built));
      }
      changed_.notify_all();
    }
  } catch (...) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!failure_) failure_ = std::current_exception();
    }
    changed_.notify_all();
  }
}

std::optional<SliceBatch> SliceBatchLoader::Next() {
  if (next_batch_ >= batch_count_) return std::nullopt;
  const auto start = std::chrono::steady_clock::now();
  std::optional<SliceBatch> batch;
  if (workers_.empty()) {
    batch = Build(next_batch_);
  } else {
    std::unique_lock<std::mutex> lock(mutex_);
    Lane& lane = lanes_[next_batch_ % lanes_.size()];
    changed_.wait(lock, [&] { return failure_ != nullptr || !lane.ready.empty(); });
    if (failure_) std::rethrow_exception(failure_);
    batch = std::move(lane.ready.front());
    lane.ready.pop_front();
  }
  changed_.notify_all();
  ++next_batch_;
  wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return batch;
}

}  // namespace clisc::models
