#include "workers/models/clip/clip_config.h"

#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <vector>

namespace clisc::models {
namespace {

bool StartsWith(const std::string& text, std::string_view prefix) {
  return text.rfind(prefix, 0) == 0;
}

bool EndsWith(const std::string& text, std::string_view suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Python's k.split(".")[2]: the third dot-separated field, empty when there is none.
std::string ThirdField(const std::string& key) {
  std::vector<std::string> fields;
  std::stringstream stream(key);
  for (std::string field; std::getline(stream, field, '.');) fields.push_back(field);
  return fields.size() > 2 ? fields[2] : std::string();
}

struct Shapes {
  std::map<std::string, std::vector<int64_t>> by_name;

  StatusOr<std::vector<int64_t>> Get(const std::string& key, size_t dims) const {
    auto it = by_name.find(key);
    if (it == by_name.end()) return NotFoundError("CLIP state dict has no '" + key + "'");
    if (it->second.size() != dims)
      return InvalidArgumentError("CLIP state dict: '" + key + "' has " +
                                  std::to_string(it->second.size()) + " dimensions, expected " +
                                  std::to_string(dims));
    return it->second;
  }
};

const ClipConfig& KnownByName(const std::string& name) {
  static const ClipConfig kB32 = ClipConfig::ViTB32();
  static const ClipConfig kB16 = ClipConfig::ViTB16();
  return name == "ViT-B/32" ? kB32 : kB16;
}

}  // namespace

ClipConfig ClipConfig::ViTB32() {
  return ClipConfig{.embed_dim = 512,
                    .image_resolution = 224,
                    .vision_layers = 12,
                    .vision_width = 768,
                    .vision_patch_size = 32,
                    .context_length = 77,
                    .vocab_size = 49408,
                    .transformer_width = 512,
                    .transformer_heads = 8,
                    .transformer_layers = 12};
}

ClipConfig ClipConfig::ViTB16() {
  ClipConfig config = ViTB32();
  config.vision_patch_size = 16;
  return config;
}

Status ClipConfig::Validate() const {
  const std::pair<const char*, int> positive[] = {
      {"embed_dim", embed_dim},
      {"image_resolution", image_resolution},
      {"vision_layers", vision_layers},
      {"vision_width", vision_width},
      {"vision_patch_size", vision_patch_size},
      {"context_length", context_length},
      {"vocab_size", vocab_size},
      {"transformer_width", transformer_width},
      {"transformer_heads", transformer_heads},
      {"transformer_layers", transformer_layers},
  };
  for (const auto& [name, value] : positive) {
    if (value <= 0)
      return InvalidArgumentError("CLIP config: " + std::string(name) + " is " +
                                  std::to_string(value) + ", must be positive");
  }
  if (vision_width % 64 != 0)
    return InvalidArgumentError("CLIP config: vision_width " + std::to_string(vision_width) +
                                " must be a multiple of 64 (CLIP uses vision heads of 64)");
  if (transformer_width % transformer_heads != 0)
    return InvalidArgumentError("CLIP config: transformer_width " +
                                std::to_string(transformer_width) + " is not divisible by " +
                                std::to_string(transformer_heads) + " heads");
  if (image_resolution % vision_patch_size != 0)
    return InvalidArgumentError(
        "CLIP config: image_resolution " + std::to_string(image_resolution) +
        " is not a multiple of the patch size " + std::to_string(vision_patch_size));
  return OkStatus();
}

std::string ClipConfig::Name() const {
  for (const char* name : {"ViT-B/32", "ViT-B/16"}) {
    if (*this == KnownByName(name)) return name;
  }
  std::ostringstream out;
  out << "ViT w" << vision_width << " l" << vision_layers << " p" << vision_patch_size << " r"
      << image_resolution << ", text w" << transformer_width << " l" << transformer_layers << " h"
      << transformer_heads << ", embed " << embed_dim;
  return out.str();
}

StatusOr<ClipConfig> ClipConfig::InferFromStateDict(const StateDict& state) {
  Shapes shapes;
  for (const auto& [name, tensor] : state) shapes.by_name[name] = tensor.sizes().vec();

  if (!shapes.by_name.count("visual.proj")) {
    // build_model's test for a ViT; without it, a ModifiedResNet has visual.layerN / attnpool.
    std::vector<std::string> resnet_keys;
    for (const auto& [name, tensor] : state) {
      if (StartsWith(name, "visual.layer") || StartsWith(name, "visual.attnpool."))
        resnet_keys.push_back(name);
    }
    if (!resnet_keys.empty()) {
      std::string shown;
      for (size_t i = 0; i < resnet_keys.size() && i < 3; ++i)
        shown += (i ? ", " : "") + resnet_keys[i];
      return UnimplementedError(
          "CLIP checkpoint has a ModifiedResNet image tower (no 'visual.proj'; found " +
          std::to_string(resnet_keys.size()) + " keys such as " + shown +
          "); only ViT CLIP models (ViT-B/32, ViT-B/16, ...) are supported");
    }
    return NotFoundError("CLIP state dict has no 'visual.proj' and no ModifiedResNet keys");
  }

  ClipConfig config;
  ASSIGN_OR_RETURN(const std::vector<int64_t> conv1, shapes.Get("visual.conv1.weight", 4));
  config.vision_width = static_cast<int>(conv1[0]);
  config.vision_patch_size = static_cast<int>(conv1[3]);
  for (const auto& [name, tensor] : state) {
    if (StartsWith(name, "visual.") && EndsWith(name, ".attn.in_proj_weight"))
      ++config.vision_layers;
  }
  ASSIGN_OR_RETURN(const std::vector<int64_t> visual_pos,
                   shapes.Get("visual.positional_embedding", 2));
  const int grid = static_cast<int>(std::lround(std::sqrt(static_cast<double>(visual_pos[0] - 1))));
  config.image_resolution = config.vision_patch_size * grid;

  ASSIGN_OR_RETURN(const std::vector<int64_t> text_projection, shapes.Get("text_projection", 2));
  config.embed_dim = static_cast<int>(text_projection[1]);
  ASSIGN_OR_RETURN(const std::vector<int64_t> text_pos, shapes.Get("positional_embedding", 2));
  config.context_length = static_cast<int>(text_pos[0]);
  ASSIGN_OR_RETURN(const std::vector<int64_t> token_embedding,
                   shapes.Get("token_embedding.weight", 2));
  config.vocab_size = static_cast<int>(token_embedding[0]);
  ASSIGN_OR_RETURN(const std::vector<int64_t> ln_final, shapes.Get("ln_final.weight", 1));
  config.transformer_width = static_cast<int>(ln_final[0]);
  config.transformer_heads = config.transformer_width / 64;
  std::set<std::string> text_layers;
  for (const auto& [name, tensor] : state) {
    if (StartsWith(name, "transformer.resblocks")) text_layers.insert(ThirdField(name));
  }
  config.transformer_layers = static_cast<int>(text_layers.size());

  if (grid * grid + 1 != visual_pos[0])
    return InvalidArgumentError("CLIP state dict: visual.positional_embedding has " +
                                std::to_string(visual_pos[0]) +
                                " rows, not 1 + a square number of patches");
  if (config.transformer_heads == 0)
    return InvalidArgumentError(
        "CLIP state dict: text width " + std::to_string(config.transformer_width) +
        " gives 0 heads under build_model's width // 64; give the model's config explicitly");
  Status valid = config.Validate();
  if (!valid.ok()) return valid.WithContext("CLIP config inferred from the state dict");
  return config;
}

StatusOr<ClipConfig> ClipConfig::FromJson(const std::string& json_text) {
  const nlohmann::json root = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object())
    return InvalidArgumentError("CLIP config: not a JSON object");
  ClipConfig config;
  const std::pair<const char*, int*> fields[] = {
      {"embed_dim", &config.embed_dim},
      {"image_resolution", &config.image_resolution},
      {"vision_layers", &config.vision_layers},
      {"vision_width", &config.vision_width},
      {"vision_patch_size", &config.vision_patch_size},
      {"context_length", &config.context_length},
      {"vocab_size", &config.vocab_size},
      {"transformer_width", &config.transformer_width},
      {"transformer_heads", &config.transformer_heads},
      {"transformer_layers", &config.transformer_layers},
  };
  for (const auto& [name, target] : fields) {
    auto it = root.find(name);
    if (it == root.end())
      return InvalidArgumentError("CLIP config: missing '" + std::string(name) + "'");
    if (!it->is_number_integer())
      return InvalidArgumentError("CLIP config: '" + std::string(name) + "' is not an integer");
    *target = it->get<int>();
  }
  RETURN_IF_ERROR(config.Validate());
  return config;
}

StatusOr<ClipConfig> ClipConfig::FromJsonFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return NotFoundError("CLIP config " + path.string() + ": cannot open");
  std::stringstream text;
  text << in.rdbuf();
  StatusOr<ClipConfig> config = FromJson(text.str());
  if (!config.ok()) return config.status().WithContext(path.string());
  return config;
}

}  // namespace clisc::models
