// Speed of the 3D U-Net stages (METHOD.md stages 9-10) with the default network (channels
// 16..256) and random weights, to set beside bench/unet/unet_step.py (the same network in
// Debian's python3-torch):
//   step       one SGD step (CE, lr 0.01, momentum 0.9, wd 1e-4) of UNet3d on a random
//              [batch, 1, 128, 128, 128] batch: median of --steps after --warmup steps;
//   train      MakeTorchUNetEngine()->Train for --steps iterations on
//              two synthetic volumes written to a temp dir (after a one-iteration warm-up run
//              with --train-warmup): the report's mean_step_seconds and mean_loader_wait_seconds;
//   inference  PredictUNetLabels on one random 240x240x155 volume with the default inference
//              options (sliding window, patch 128^3, overlap 0.5, batch 2): median of --repeats.
// Usage: unet_bench [--threads N] [--steps N] [--warmup N] [--repeats N] [--batch N]
//                   [--patch N] [--train-warmup] [step] [train] [inference]   (none: all three)
// Prints one JSON object per section on stdout, one line each.
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/volume.h"
#include "common/volume_io.h"
#include "workers/models/unet/torch_unet_engine.h"
#include "workers/models/unet/unet3d.h"
#include "workers/models/unet/unet_inference.h"
#include "workers/roles/unet_engine.h"

namespace clisc::models {
namespace {

namespace fs = std::filesystem;

struct Options {
  int threads = 2;
  int steps = 3;
  int warmup = 1;
  int repeats = 1;
  int batch = 2;
  int64_t patch = 128;
  bool train_warmup = false;
  std::vector<std::string> sections;
};

double Seconds(const std::function<void()>& fn) {
  const auto start = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

std::string JsonList(const std::vector<double>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    out += (i ? ", " : "") + std::to_string(values[i]);
  }
  return out + "]";
}

void BenchStep(const Options& options) {
  torch::manual_seed(2023);
  UNet3d model = UNet3d(UNet3dOptions{});
  model->train();
  torch::optim::SGD optimizer(model->parameters(),
                              torch::optim::SGDOptions(0.01).momentum(0.9).weight_decay(1e-4));
  const int64_t p = options.patch;
  const torch::Tensor x = torch::randn({options.batch, 1, p, p, p});
  const torch::Tensor y = torch::randint(0, 2, {options.batch, p, p, p}, torch::kLong);
  auto step = [&] {
    optimizer.zero_grad();
    torch::Tensor loss = torch::nn::functional::cross_entropy(model->forward(x), y);
    loss.backward();
    optimizer.step();
  };
  for (int i = 0; i < options.warmup; ++i) step();
  std::vector<double> times;
  for (int i = 0; i < options.steps; ++i) times.push_back(Seconds(step));
  std::printf("{\"section\": \"step\", \"step_seconds_median\": %.4f, \"step_seconds\": %s}\n",
              Median(times), JsonList(times).c_str());
  std::fflush(stdout);
}

// Two cases of (x, y, z) = (160, 150, 140): a smooth random image and a ball of label 1.
std::vector<roles::UNetCaseFiles> WriteSyntheticCases(const fs::path& dir) {
  std::vector<roles::UNetCaseFiles> cases;
  const Dims size{160, 150, 140};
  for (int c = 0; c < 2; ++c) {
    FloatVolume image(size);
    LabelVolume label(size);
    const torch::Tensor noise = torch::randn({size.z, size.y, size.x});
    std::copy_n(noise.data_ptr<float>(), size.count(), image.data());
    for (int64_t z = 0; z < size.z; ++z) {
      for (int64_t yy = 0; yy < size.y; ++yy) {
        for (int64_t xx = 0; xx < size.x; ++xx) {
          const double d2 = (xx - 80.0 - 10 * c) * (xx - 80.0 - 10 * c) +
                            (yy - 75.0) * (yy - 75.0) + (z - 70.0) * (z - 70.0);
          if (d2 < 30.0 * 30.0) {
            label.at(xx, yy, z) = 1;
            image.at(xx, yy, z) += 2.0f;
          }
        }
      }
    }
    roles::UNetCaseFiles files;
    files.id = "case" + std::to_string(c);
    files.channels = {dir / (files.id + "_flair.nii")};
    files.label = dir / (files.id + "_label.nii");
    if (!WriteVolume(image, files.channels[0]).ok() || !WriteVolume(label, files.label).ok()) {
      std::fprintf(stderr, "cannot write the synthetic cases under %s\n", dir.c_str());
      std::exit(1);
    }
    cases.push_back(files);
  }
  return cases;
}

void BenchTrain(const Options& options) {
  const fs::path dir = fs::temp_directory_path() / ("unet_bench_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::vector<roles::UNetCaseFiles> cases = WriteSyntheticCases(dir);
  roles::UNetTrainingOptions training;
  training.batch_size = options.batch;
  training.patch_size = {options.patch, options.patch, options.patch};
  training.loader_threads = 1;
  training.checkpoint_every = 1 << 30;
  // With --warmup > 0 a one-iteration run comes first, so the timed run does not pay for
  // first-touch allocations; without it the report's mean includes the first step.
  const std::unique_ptr<roles::UNetEngine> engine = MakeTorchUNetEngine();
  if (options.train_warmup) {
    training.max_iterations = 1;
    StatusOr<roles::UNetTrainingReport> warm = engine->Train(cases, training, dir / "warm.pth", {});
    if (!warm.ok()) {
      std::fprintf(stderr, "training failed: %s\n", warm.status().message().c_str());
      std::exit(1);
    }
  }
  training.max_iterations = options.steps;
  StatusOr<roles::UNetTrainingReport> report =
      engine->Train(cases, training, dir / "model.pth", {});
  fs::remove_all(dir);
  if (!report.ok()) {
    std::fprintf(stderr, "training failed: %s\n", report.status().message().c_str());
    std::exit(1);
  }
  std::printf(
      "{\"section\": \"train\", \"iterations\": %lld, \"mean_step_seconds\": %.4f, "
      "\"mean_loader_wait_seconds\": %.4f, \"seconds\": %.3f}\n",
      static_cast<long long>(report->iterations), report->mean_step_seconds,
      report->mean_loader_wait_seconds, report->seconds);
  std::fflush(stdout);
}

void BenchInference(const Options& options) {
  torch::manual_seed(2023);
  UNet3d model = UNet3d(UNet3dOptions{});
  model->eval();
  const Dims size{240, 240, 155};
  FloatVolume image(size);
  const torch::Tensor noise = torch::randn({size.z, size.y, size.x});
  std::copy_n(noise.data_ptr<float>(), size.count(), image.data());
  roles::UNetInferenceOptions inference;
  inference.patch_size = {options.patch, options.patch, options.patch};
  std::vector<double> times;
  for (int i = 0; i < options.repeats; ++i) {
    times.push_back(Seconds([&] {
      StatusOr<LabelVolume> labels = PredictUNetLabels(model, {image}, inference);
      if (!labels.ok()) {
        std::fprintf(stderr, "inference failed: %s\n", labels.status().message().c_str());
        std::exit(1);
      }
    }));
  }
  std::printf(
      "{\"section\": \"inference\", \"inference_seconds_median\": %.4f, \"inference_seconds\": "
      "%s}\n",
      Median(times), JsonList(times).c_str());
  std::fflush(stdout);
}

int Main(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto next = [&]() -> int {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return std::atoi(argv[++i]);
    };
    if (arg == "--threads") {
      options.threads = next();
    } else if (arg == "--steps") {
      options.steps = next();
    } else if (arg == "--warmup") {
      options.warmup = next();
    } else if (arg == "--repeats") {
      options.repeats = next();
    } else if (arg == "--batch") {
      options.batch = next();
    } else if (arg == "--patch") {
      options.patch = next();
    } else if (arg == "--train-warmup") {
      options.train_warmup = true;
    } else if (arg == "step" || arg == "train" || arg == "inference") {
      options.sections.push_back(arg);
    } else {
      std::fprintf(stderr,
                   "usage: unet_bench [--threads N] [--steps N] [--warmup N] [--repeats N] "
                   "[--batch N] [--patch N] [--train-warmup] [step] [train] [inference]\n");
      return 2;
    }
  }
  if (options.sections.empty()) options.sections = {"step", "train", "inference"};
  torch::set_num_threads(options.threads);
  std::fprintf(stderr, "unet_bench: torch %s threads %d\n", TORCH_VERSION,
               torch::get_num_threads());
  for (const std::string& section : options.sections) {
    if (section == "step") BenchStep(options);
    if (section == "train") BenchTrain(options);
    if (section == "inference") BenchInference(options);
  }
  return 0;
}

}  // namespace
}  // namespace clisc::models

int main(int argc, char** argv) { return clisc::models::Main(argc, argv); }
