// The slice classifier as the cam role sees it (METHOD.md stages 2-7): train it on labelled
// slices, then compute LayerCAMs of its tumor logit. The implementation lives with the networks
// (workers/models/cam, LibTorch); this header stays torch-free so the role's logic (which slices,
// which labels, what is written where) builds and is tested without LibTorch.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "workers/backends/slice_image.h"

namespace clisc::roles {

// One training image: a square 8-bit gray slice of side `image_size` (row-major), already made the
// way the reference makes its training PNGs (min-max to uint8, resized), and its label
// (0 = normal/negative, 1 = tumor/positive, ImageFolder's sorted classes).
struct LabelledSlice {
  std::vector<uint8_t> pixels;
  int label = 0;
};

// Random transforms of each training image (classifier.augment), drawn per image from (seed,
// epoch, slice index) so a run and its resume see the same images. Off by default: the reference
// trains on the plain images. Per-slice min-max scaling lets a classifier tell tumor slices by
// the gray level of normal tissue alone; intensity jitter takes that shortcut away, and flips,
// zoom and shift take away the brain's size and position.
struct ClassifierAugmentation {
  bool enabled = false;
  bool flip = true;       // left-right and up-down, each with probability 1/2
  double zoom_min = 0.7;  // scale factor, log-uniform in [zoom_min, zoom_max]
  double zoom_max = 1.3;
  double shift = 0.12;        // translation per axis, uniform in +-shift of the image side
  double gamma = 0.7;         // intensity v^exp(U(-gamma, gamma)) on v in [0, 1] ...
  double contrast_min = 0.5;  // ... times U(contrast_min, contrast_max), clipped to [0, 1]
  double contrast_max = 1.5;
};

struct ClassifierTrainingOptions {
  std::string arch = "resnet50";  // classifier.arch: resnet50 | resnet18 | small
  int image_size = 224;
  int head_units = 256;
  double head_dropout = 0.5;
  std::string global_pool = "avg";  // classifier.global_pool: avg (torchvision) | max
  double lr = 1e-4;                 // Adam
  int lr_step_size = 7;
  double lr_gamma = 0.1;  // StepLR, stepped once per epoch
  int batch_size = 8;
  int epochs = 30;
  uint64_t seed = 42;
  int loader_threads = 4;          // 0: batches are prepared on the training thread
  int checkpoint_every = 1;        // epochs between resumable checkpoints
  ClassifierAugmentation augment;  // training images only, not validation
  std::optional<std::filesystem::path> pretrained;  // ImageNet backbone weights (.pth)
  std::string device = "cpu";                       // cpu | cuda:N
  std::string precision = "fp32";                   // fp32 | bf16 | fp16
  // Resumable training state (model, optimizer, scheduler, epoch, RNG). When it exists at the
  // start, training continues from it; it is rewritten every `checkpoint_every` epochs.
  std::filesystem::path checkpoint_path;
  // With a non-empty validation set the model of the epoch with the best validation accuracy is
  // the result (mode: reference, first best wins); otherwise the last epoch's model is.
};

struct EpochReport {
  int epoch = 0;  // 1-based
  double loss = 0;
  double train_accuracy = 0;
  std::optional<double> valid_accuracy;
  double lr = 0;  // the rate the epoch trained at
  double seconds = 0;
};

struct TrainingReport {
  std::vector<EpochReport> epochs;  // every epoch, including those before a resume
  int resumed_after_epoch = 0;      // 0 when training started from scratch
  int selected_epoch = 0;           // whose weights were written as the model
  int64_t train_slices = 0;
  int64_t valid_slices = 0;
};

// Called after every step (fraction of the whole training done, a short message); returning
// false stops training early (the task was cancelled): the last checkpoint stays for a retry.
using TrainingProgress = std::function<bool(double fraction, const std::string& message)>;

struct CamOptions {
  std::string arch = "resnet50";
  int image_size = 224;
  int head_units = 256;
  double head_dropout = 0.5;
  std::string global_pool = "avg";
  std::string layer = "layer3";  // cam.layer
  std::string device = "cpu";
  std::string precision = "fp32";
  int batch_size = 16;  // slices per LayerCAM pass
};

// One slice's classifier output and CAM.
struct SliceCam {
  float tumor_probability = 0;   // softmax of the two logits, class 1
  bool predicted_tumor = false;  // argmax == 1
  std::vector<float> cam;        // width x height of the input slice, values in [0, 1]
};

class ClassifierEngine {
 public:
  virtual ~ClassifierEngine() = default;
  virtual std::string Describe() const = 0;

  // Trains from scratch (or from options.checkpoint_path) and writes the selected weights as a
  // state_dict .pth (torch.save format, loadable by Python) at `model_out`. CANCELLED when
  // progress returned false; INVALID_ARGUMENT for an empty set or a pixel count that is not
  // image_size^2; UNAVAILABLE for a device that is not there.
  virtual StatusOr<TrainingReport> Train(const std::vector<LabelledSlice>& train,
                                         const std::vector<LabelledSlice>& valid,
                                         const ClassifierTrainingOptions& options,
                                         const std::filesystem::path& model_out,
                                         const TrainingProgress& progress) = 0;

  // LayerCAM of the tumor logit for each slice (z-scored float slices at native size): the
  // classifier input is made as the reference makes it (min-max uint8, bilinear to image_size),
  // the CAM is resized back to the slice's size. Every slice gets a CAM; the role decides which
  // ones to keep.
  virtual StatusOr<std::vector<SliceCam>> ComputeCams(
      const std::filesystem::path& model, const std::vector<backends::FloatSlice>& slices,
      const CamOptions& options) = 0;
};

}  // namespace clisc::roles
