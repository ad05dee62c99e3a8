#include "workers/segmentation/patch_batch_loader.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <utility>

namespace clisc::segmentation {

StatusOr<PatchBatch> MakePatchBatch(TrainingVolumeCache& cache, const PatchBatchOptions& options,
                                    int64_t iteration) {
  if (cache.case_count() == 0) return InvalidArgumentError("no training cases");
  PatchBatch batch;
  batch.iteration = iteration;
  batch.batch_size = options.batch_size;
  batch.channels = options.channels;
  batch.patch = options.patch;
  const int64_t voxels = options.patch[0] * options.patch[1] * options.patch[2];
  batch.images.resize(static_cast<size_t>(options.batch_size * options.channels * voxels));
  batch.labels.resize(static_cast<size_t>(options.batch_size * voxels));
  const auto case_count = static_cast<int64_t>(cache.case_count());
  for (int64_t b = 0; b < options.batch_size; ++b) {
    const int64_t index =
        CaseOfSample(options.seed, iteration * options.batch_size + b, case_count);
    ASSIGN_OR_RETURN(const TrainingVolumeCache::CasePtr training_case,
                     cache.Get(static_cast<size_t>(index)));
    if (static_cast<int64_t>(training_case->channels.size()) != options.channels) {
      return InvalidArgumentError("case " + cache.files(static_cast<size_t>(index)).id + " has " +
                                  std::to_string(training_case->channels.size()) +
                                  " channels, the network takes " +
                                  std::to_string(options.channels));
    }
    std::mt19937_64 rng = SampleRng(options.seed, iteration, b);
    ASSIGN_OR_RETURN(const PatchPlan plan,
                     DrawPatchPlan(ShapeOf(training_case->label.size()), options.patch, rng));
    ExtractPatchInto(*training_case, plan, options.patch, options.pad,
                     batch.images.data() + b * options.channels * voxels,
                     batch.labels.data() + b * voxels);
    batch.cases.push_back(index);
  }
  return batch;
}

PatchBatchLoader::PatchBatchLoader(TrainingVolumeCache& cache, const PatchBatchOptions& options,
                                   int64_t first, int64_t last, int threads,
                                   int queued_batches_per_thread)
    : cache_(cache),
      options_(options),
      first_(first),
      last_(std::max(first, last)),
      capacity_(static_cast<size_t>(std::max(queued_batches_per_thread, 1))),
      next_(first) {
  const auto lanes = static_cast<size_t>(std::clamp<int64_t>(threads, 0, last_ - first_));
  lanes_.resize(lanes);
  workers_.reserve(lanes);
  for (size_t lane = 0; lane < lanes; ++lane) workers_.emplace_back([this, lane] { Work(lane); });
}

PatchBatchLoader::~PatchBatchLoader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  for (std::thread& worker : workers_) worker.join();
}

void PatchBatchLoader::Work(size_t lane) {
  for (int64_t iteration = first_ + static_cast<int64_t>(lane); iteration < last_;
       iteration += static_cast<int64_t>(lanes_.size())) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] { return stopping_ || lanes_[lane].ready.size() < capacity_; });
      if (stopping_) return;
    }
    StatusOr<PatchBatch> built = MakePatchBatch(cache_, options_, iteration);
    const bool failed = !built.ok();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      lanes_[lane].ready.push_back(std::move(built));
    }
    changed_.notify_all();
    if (failed) return;  // the error takes this iteration's turn; nothing after it is needed
  }
}

StatusOr<PatchBatchLoader::Loaded> PatchBatchLoader::Next() {
  if (!failure_.ok()) return failure_;
  if (next_ >= last_) {
    return OutOfRangeError("no batch after iteration " + std::to_string(last_ - 1));
  }
  const auto start = std::chrono::steady_clock::now();
  StatusOr<PatchBatch> batch = InternalError("unset");
  if (workers_.empty()) {
    batch = MakePatchBatch(cache_, options_, next_);
  } else {
    std::unique_lock<std::mutex> lock(mutex_);
    Lane& lane = lanes_[static_cast<size_t>(next_ - first_) % lanes_.size()];
    changed_.wait(lock, [&] { return !lane.ready.empty(); });
    batch = std::move(lane.ready.front());
    lane.ready.pop_front();
  }
  changed_.notify_all();
  ++next_;
  if (!batch.ok()) {
    failure_ = batch.status();
    return failure_;
  }
  Loaded loaded;
  loaded.batch = std::move(batch).value();
  loaded.waited_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return loaded;
}

}  // namespace clisc::segmentation
