// Config::ValidateCrossKey: the rules that no single key's schema entry can express. Each rule
// names the key to fix and the key that makes it necessary.
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "common/config.h"

namespace clisc {
namespace {

bool AllDigits(std::string_view s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
}

bool ValidDevice(const std::string& device) {
  if (device == "cpu" || device == "cuda") return true;
  return device.rfind("cuda:", 0) == 0 && AllDigits(std::string_view(device).substr(5));
}

bool ValidHostPort(const std::string& bind) {
  size_t colon = bind.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  std::string_view port = std::string_view(bind).substr(colon + 1);
  return AllDigits(port) && port.size() <= 5 && std::stoi(std::string(port)) <= 65535;
}

class Checker {
 public:
  explicit Checker(const Config& config) : c_(config) {}

  void Require(bool ok, const std::string& path, const std::string& message) {
    if (!ok) errors_.push_back(c_.source() + ": " + path + ": " + message);
  }

  Status ToStatus() const {
    if (errors_.empty()) return OkStatus();
    std::string all;
    for (const auto& e : errors_) all += (all.empty() ? "" : "\n") + e;
    return InvalidArgumentError(all);
  }

  void CheckSplits() {
    const bool reference = c_.GetString("mode") == "reference";
    if (c_.GetString("data.splits.source") == "csv") {
      for (const char* key : {"data.splits.train_csv", "data.splits.test_csv"}) {
        Require(!c_.IsNull(key), key, "required when data.splits.source is csv");
      }
      Require(!reference || !c_.IsNull("data.splits.valid_csv"), "data.splits.valid_csv",
              "required when data.splits.source is csv and mode is reference (selection uses "
              "the validation split)");
      return;
    }
    const double train = c_.GetDouble("data.splits.train_fraction");
    const double valid = c_.GetDouble("data.splits.valid_fraction");
    const double test = c_.GetDouble("data.splits.test_fraction");
    Require(std::fabs(train + valid + test - 1.0) <= 1e-6, "data.splits.test_fraction",
            "train_fraction + valid_fraction + test_fraction must be 1, found " +
                FormatConfigDouble(train + valid + test));
    Require(train > 0, "data.splits.train_fraction", "must be above 0");
    Require(!reference || valid > 0, "data.splits.valid_fraction",
            "must be above 0 when mode is reference (selection uses the validation split)");
  }

  void CheckModalities() {
    auto modalities = c_.GetStringList("data.modalities");
    std::set<std::string> unique(modalities.begin(), modalities.end());
    Require(unique.size() == modalities.size(), "data.modalities", "lists a modality twice");
  }

  void CheckBackends() {
    if (c_.GetString("clip.backend") == "model") {
      for (const char* key : {"clip.checkpoint", "clip.vocab"}) {
        Require(!c_.IsNull(key), key, "required when clip.backend is model");
      }
    }
    Require(c_.GetString("sam.backend") != "model" || !c_.IsNull("sam.checkpoint"),
            "sam.checkpoint", "required when sam.backend is model");
  }

  void CheckCam() {
    Require(c_.GetDouble("cam.threshold_search.min") <= c_.GetDouble("cam.threshold_search.max"),
            "cam.threshold_search.max", "must not be below cam.threshold_search.min");
  }

  // Every U-Net level halves the patch, so each side must divide by 2^(levels - 1).
  void CheckPatchSizes() {
    const size_t levels = c_.GetIntList("unet.feature_channels").size();
    const int64_t factor = int64_t{1} << (levels - 1);
    for (const char* key : {"train.patch_size", "inference.patch_size"}) {
      for (int64_t side : c_.GetIntList(key)) {
        if (side % factor != 0) {
          Require(false, key,
                  "side " + std::to_string(side) + " does not divide by " + std::to_string(factor) +
                      " (2^(levels-1) for the " + std::to_string(levels) +
                      " levels of unet.feature_channels)");
          break;
        }
      }
    }
  }

  void CheckRuntime() {
    const std::string device = c_.GetString("device");
    Require(ValidDevice(device), "device", "expected cpu, cuda or cuda:N, found '" + device + "'");
    Require(c_.GetString("precision") == "fp32" || device.rfind("cuda", 0) == 0, "precision",
            c_.GetString("precision") + " needs a CUDA device (device is " + device + ")");
    Require(c_.GetDouble("s3f.keep_ratio") > 0, "s3f.keep_ratio",
            "must be in (0, 1]: keeping no case leaves nothing to train on");
    const std::string bind = c_.GetString("runtime.http_bind");
    Require(ValidHostPort(bind), "runtime.http_bind",
            "expected host:port with a port up to 65535, found '" + bind + "'");
    if (auto url = c_.GetOptionalString("runtime.redis_url")) {
      bool ok = url->rfind("redis://", 0) == 0 || url->rfind("rediss://", 0) == 0 ||
                url->rfind("unix://", 0) == 0;
      Require(ok, "runtime.redis_url",
              "expected redis://, rediss:// or unix:// URL, found '" + *url + "'");
    }
  }

 private:
  const Config& c_;
  std::vector<std::string> errors_;
};

}  // namespace

Status Config::ValidateCrossKey() const {
  Checker checker(*this);
  checker.CheckSplits();
  checker.CheckModalities();
  checker.CheckBackends();
  checker.CheckCam();
  checker.CheckPatchSizes();
  checker.CheckRuntime();
  return checker.ToStatus();
}

}  // namespace clisc
