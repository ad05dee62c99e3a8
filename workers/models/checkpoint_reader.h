// Reads PyTorch checkpoints without Python: the zip format of torch.save (>= 1.6), the legacy
// pre-1.6 format (old torchvision weights), and the parameters and buffers of TorchScript
// archives (OpenAI's CLIP .pt files). Plain .pth files go through our own strict unpickler
// (pickle_reader.h) over LibTorch's zip reader, so an OrderedDict state_dict, which
// torch::pickle_load cannot read, works, and a bad file gets an error naming it.
#pragma once

#include <torch/nn/module.h>
#include <torch/types.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace clisc {

// Tensors by name, in file order (state_dict order for torch.save(model.state_dict())).
using StateDict = std::vector<std::pair<std::string, torch::Tensor>>;

struct CheckpointOptions {
  // Keep only the entries under this prefix and strip it, e.g. "state_dict." or "model." for a
  // training checkpoint {"epoch": 3, "model": {...}}. Nested dicts are flattened with dots first.
  // Empty keeps everything, and then every leaf must be a tensor.
  std::string prefix;
};

// Tensors keep their dtype (float32/16, bfloat16, float64, int8..64, uint8, bool) and their
// sharing: two entries viewing one storage still share memory, as after torch.load. Errors name
// the file: NOT_FOUND (no file, no entry under the prefix), DATA_LOSS (truncated or corrupt
// data), UNIMPLEMENTED (pickle opcode or tensor kind we do not read), INVALID_ARGUMENT (not a
// checkpoint, a non-tensor entry where tensors are expected).
StatusOr<StateDict> ReadCheckpoint(const std::filesystem::path& path,
                                   const CheckpointOptions& options = {});

// Copies `dict` into the module's parameters and buffers (named as by named_parameters()),
// converting dtypes (CLIP's float16 weights into a float32 module). Nothing is copied unless all
// checks pass. A shape mismatch is always INVALID_ARGUMENT naming the key and both shapes; with
// `strict`, a module entry missing from `dict` is NOT_FOUND and an entry the module lacks is
// INVALID_ARGUMENT, each naming the keys.
Status LoadStateDict(torch::nn::Module& module, const StateDict& dict, bool strict = true);

}  // namespace clisc
