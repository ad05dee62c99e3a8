// Speed of the networks on this machine with random weights: SAM vit_b's image encoder on a
// 1024x1024 input and its mask decoder batched vs one prompt set at a time, CLIP ViT-B/32's image
// tower, and the 3D U-Net's forward and backward pass on a 128^3 patch.
//
// Usage: models_bench [--threads N] [--repeats N] [--device cpu|cuda:N] [--precision
// fp32|bf16|fp16]
//                     [sam] [clip] [unet]        (no section names: all three)
// Each timing is the median of `repeats` runs after one warm-up run. Peak RSS is the process's
// high-water mark after the section, so run one section per process to attribute memory.
#include <sys/resource.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "workers/models/clip/clip_config.h"
#include "workers/models/clip/clip_model.h"
#include "workers/models/compute_device.h"
#include "workers/models/sam/sam_model.h"
#include "workers/models/sam/sam_predictor.h"
#include "workers/models/unet/unet3d.h"

namespace clisc::models {
namespace {

struct Options {
  int threads = 2;
  int repeats = 3;
  std::string device = "cpu";
  std::string precision = "fp32";
  std::vector<std::string> sections;
};

void Synchronize(const ComputeDevice& compute) {
  if (compute.device.is_cuda()) torch::cuda::synchronize(compute.device.index());
}

// Median seconds of `repeats` calls after one warm-up call.
double MedianSeconds(int repeats, const ComputeDevice& compute, const std::function<void()>& fn) {
  fn();
  Synchronize(compute);
  std::vector<double> seconds;
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    Synchronize(compute);
    seconds.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(seconds.begin(), seconds.end());
  return seconds[seconds.size() / 2];
}

double PeakRssMiB() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;
}

void Row(const char* what, double value, const char* unit, const std::string& note = "") {
  std::printf("| %-46s | %12.3f | %-10s | %s |\n", what, value, unit, note.c_str());
  std::fflush(stdout);
}

// One prompt set as stage 8 makes it: a box, 5 positive points inside, 4 negative corners.
SamPromptSet StagePrompts(int i) {
  const double x0 = 60 + (i % 7) * 4, y0 = 70 + (i % 5) * 3, x1 = x0 + 60, y1 = y0 + 50;
  SamPromptSet set;
  set.box = std::array<double, 4>{x0, y0, x1, y1};
  for (int k = 0; k < 5; ++k) {
    set.point_coords.push_back({x0 + 10 + 8 * k, y0 + 10 + 6 * k});
    set.point_labels.push_back(1);
  }
  for (const auto& corner : {std::array<double, 2>{x0, y0}, {x1, y0}, {x0, y1}, {x1, y1}}) {
    set.point_coords.push_back(corner);
    set.point_labels.push_back(0);
  }
  return set;
}

void BenchSam(const Options& options, const ComputeDevice& compute) {
  torch::NoGradGuard no_grad;
  Sam sam(SamConfig::VitB());
  sam->to(compute.device);
  sam->eval();
  const torch::Tensor input =
      torch::randn({1, 3, 1024, 1024}, torch::TensorOptions(compute.device));
  double encoder = 0;
  {
    InferenceAutocast autocast(compute);
    encoder = MedianSeconds(options.repeats, compute, [&] { sam->image_encoder->forward(input); });
  }
  Row("SAM vit_b image encoder, 1024x1024", encoder, "s/image");

  SamPredictor predictor(sam, compute);
  const torch::Tensor image = torch::randint(0, 256, {240, 240, 3}, torch::kUInt8);
  if (Status s = predictor.SetImage(image); !s.ok()) {
    std::fprintf(stderr, "SetImage: %s\n", s.ToString().c_str());
    std::exit(1);
  }
  constexpr int kPromptSets = 64;
  std::vector<SamPromptSet> sets;
  for (int i = 0; i < kPromptSets; ++i) sets.push_back(StagePrompts(i));
  const double single = MedianSeconds(options.repeats, compute, [&] {
    for (const SamPromptSet& set : sets) (void)predictor.Predict(set, /*multimask_output=*/false);
  });
  predictor.set_max_batch_size(kPromptSets);
  const double batched = MedianSeconds(options.repeats, compute, [&] {
    (void)predictor.PredictBatch(sets, /*multimask_output=*/false);
  });
  Row("SAM vit_b decoder, one prompt set per call", kPromptSets / single, "prompts/s");
  Row("SAM vit_b decoder, 64 prompt sets per call", kPromptSets / batched, "prompts/s",
      "x" + std::to_string(single / batched).substr(0, 4) + " vs one per call");
  Row("peak RSS after SAM", PeakRssMiB(), "MiB");
}

void BenchClip(const Options& options, const ComputeDevice& compute) {
  torch::NoGradGuard no_grad;
  Clip clip(ClipConfig::ViTB32());
  clip->to(compute.device);
  clip->eval();
  InferenceAutocast autocast(compute);
  for (int batch : {1, 32}) {
    const torch::Tensor images =
        torch::randn({batch, 3, 224, 224}, torch::TensorOptions(compute.device));
    const double seconds =
        MedianSeconds(options.repeats, compute, [&] { clip->EncodeImage(images); });
    Row(("CLIP ViT-B/32 image tower, batch " + std::to_string(batch)).c_str(), batch / seconds,
        "images/s");
  }
  Row("peak RSS after CLIP", PeakRssMiB(), "MiB");
}

void BenchUNet(const Options& options, const ComputeDevice& compute) {
  auto made = MakeUNet3d(UNet3dOptions{});
  if (!made.ok()) {
    std::fprintf(stderr, "U-Net: %s\n", made.status().ToString().c_str());
    std::exit(1);
  }
  UNet3d unet = *made;
  unet->to(compute.device);
  const torch::Tensor patch =
      torch::randn({1, 1, 128, 128, 128}, torch::TensorOptions(compute.device));
  const torch::Tensor target = torch::randint(
      0, 2, {1, 128, 128, 128}, torch::TensorOptions(compute.device).dtype(torch::kLong));
  unet->eval();
  double forward = 0;
  {
    torch::NoGradGuard no_grad;
    forward = MedianSeconds(options.repeats, compute, [&] { unet->forward(patch); });
  }
  unet->train();
  const double step = MedianSeconds(options.repeats, compute, [&] {
    unet->zero_grad();
    torch::nn::functional::cross_entropy(unet->forward(patch), target).backward();
  });
  Row("U-Net 3D forward (inference), 128^3 patch", forward, "s/patch");
  Row("U-Net 3D forward + backward (training), 128^3", step, "s/patch");
  Row("peak RSS after U-Net", PeakRssMiB(), "MiB");
}

int Main(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--threads")
      options.threads = std::atoi(value().c_str());
    else if (arg == "--repeats")
      options.repeats = std::max(1, std::atoi(value().c_str()));
    else if (arg == "--device")
      options.device = value();
    else if (arg == "--precision")
      options.precision = value();
    else if (arg == "sam" || arg == "clip" || arg == "unet")
      options.sections.push_back(arg);
    else {
      std::fprintf(stderr,
                   "usage: models_bench [--threads N] [--repeats N] [--device D] "
                   "[--precision P] [sam] [clip] [unet]\n");
      return arg == "--help" ? 0 : 2;
    }
  }
  if (options.sections.empty()) options.sections = {"sam", "clip", "unet"};
  auto compute = ParseComputeDevice(options.device, options.precision);
  if (!compute.ok()) {
    std::fprintf(stderr, "%s\n", compute.status().ToString().c_str());
    return 2;
  }
  torch::set_num_threads(options.threads);
  torch::manual_seed(0);
  std::printf("models_bench: %s, %d threads, median of %d after a warm-up, random weights\n\n",
              compute->ToString().c_str(), options.threads, options.repeats);
  std::printf("| %-46s | %12s | %-10s | %s |\n|---|---:|---|---|\n", "what", "value", "unit",
              "note");
  for (const std::string& section : options.sections) {
    if (section == "sam") BenchSam(options, *compute);
    if (section == "clip") BenchClip(options, *compute);
    if (section == "unet") BenchUNet(options, *compute);
  }
  return 0;
}

}  // namespace
}  // namespace clisc::models

int main(int argc, char** argv) { return clisc::models::Main(argc, argv); }
