// Writes checkpoints Python reads with torch.load: the zip format of torch.save with the pickle
// Python's own pickler emits for torch.save(model.state_dict()) (protocol 2, an OrderedDict of
// _rebuild_tensor_v2 calls, one storage per tensor, memoized strings). A U-Net or classifier
// trained here then loads into the reference's Python code, and ReadCheckpoint reads it back.
// LibTorch's own torch::pickle_save is no substitute: it tags dicts with
// torch.jit._pickle.restore_type_tag, which torch.save never writes.
#pragma once

#include <torch/serialize/archive.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "workers/models/checkpoint_reader.h"

namespace clisc {

struct CheckpointWriteOptions {
  // Non-empty: save {"epoch": epoch, wrap_in: state_dict}, the shape of a training checkpoint,
  // instead of the bare state dict.
  std::string wrap_in;
  int64_t epoch = 0;
  // The state dict's _metadata (module name -> version), as module.state_dict() attaches it;
  // empty writes none, which load_state_dict accepts.
  std::vector<std::pair<std::string, int>> module_versions;
};

// The state dict of `module` in the order Python lists it for modules whose parameters come
// before their buffers within each module (named_parameters, then named_buffers).
StateDict StateDictOf(const torch::nn::Module& module);

// Tensors may be float32/64/16, bfloat16, int64/32/16/8, uint8 or bool, on any device, any
// strides (saved contiguous). The file is written atomically (temporary, fsync, rename).
// INVALID_ARGUMENT for another dtype; the write's error otherwise.
Status WriteCheckpoint(const std::filesystem::path& path, const StateDict& dict,
                       const CheckpointWriteOptions& options = {});

// A state dict as two entries of a training-state archive (torch::save's format), `<key>_names`
// and `<key>_tensors`, saved from the CPU: the weights inside the resumable checkpoints of the
// classifier and U-Net trainings. Reading throws c10::Error for missing or inconsistent entries
// (the callers catch it where they read the archive).
void WriteArchiveStateDict(torch::serialize::OutputArchive& archive, const std::string& key,
                           const StateDict& dict);
StateDict ReadArchiveStateDict(torch::serialize::InputArchive& archive, const std::string& key);

}  // namespace clisc
