// Hyperparameters of an OpenAI CLIP model with a ViT image tower, as the official
// `CLIP.__init__` takes them, and the ways to obtain them: the released models by name, the
// official `build_model` inference from a state dict, or a JSON file (for models that inference
// cannot describe, such as the tiny test model whose text width is below 64).
#pragma once

#include <filesystem>
#include <string>

#include "common/status.h"
#include "workers/models/checkpoint_reader.h"

namespace clisc::models {

struct ClipConfig {
  int embed_dim = 0;
  int image_resolution = 0;
  int vision_layers = 0;
  int vision_width = 0;
  int vision_patch_size = 0;
  int context_length = 0;
  int vocab_size = 0;
  int transformer_width = 0;
  int transformer_heads = 0;
  int transformer_layers = 0;

  // CLIP.__init__ hard-codes the vision heads as width // 64 (head_dim 64); it is not a parameter.
  int vision_heads() const { return vision_width / 64; }
  int grid() const { return vision_patch_size > 0 ? image_resolution / vision_patch_size : 0; }

  // OK when a model can be built: positive sizes, widths divisible by their head counts, the
  // resolution a multiple of the patch size. INVALID_ARGUMENT naming the first bad field.
  Status Validate() const;

  // "ViT-B/32" or "ViT-B/16" for the released hyperparameters, otherwise a compact summary such
  // as "ViT w128 l2 p16 r64, text w32 l2 h2, embed 32".
  std::string Name() const;

  bool operator==(const ClipConfig&) const = default;

  // The released OpenAI models.
  static ClipConfig ViTB32();
  static ClipConfig ViTB16();

  // The official clip.model.build_model derivation, for ViT checkpoints: vision width and patch
  // size from visual.conv1.weight, layers by counting attn.in_proj_weight keys, grid from
  // visual.positional_embedding, embed_dim from text_projection, context length from
  // positional_embedding, vocab from token_embedding.weight, text width from ln_final.weight,
  // text heads = width // 64, text layers by counting transformer.resblocks indices.
  // UNIMPLEMENTED for a ModifiedResNet (RN50...) checkpoint, naming the keys that show it;
  // NOT_FOUND naming a missing key; INVALID_ARGUMENT when the result cannot be built (e.g. a
  // text width below 64 gives 0 heads, as in build_model: pass an explicit config instead).
  static StatusOr<ClipConfig> InferFromStateDict(const StateDict& state);

  // The hyperparameter fields of a JSON object such as fixtures' tiny_clip_config.json; other
  // fields are ignored. INVALID_ARGUMENT for malformed JSON or a missing or non-integer field.
  static StatusOr<ClipConfig> FromJson(const std::string& json_text);
  static StatusOr<ClipConfig> FromJsonFile(const std::filesystem::path& path);
};

}  // namespace clisc::models
