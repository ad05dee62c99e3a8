// PilResize against images Pillow 9.4 resized for the golden fixtures: CLIP's bicubic resize of
// uint8 and float32 slices, the classifier's bilinear 224x224 downscale, and SAM's bilinear
// RGB upscale to 1024. All must be bit-exact, since Pillow's own arithmetic is reproduced.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "common/pil_resample.h"
#include "tests/support/torch_fixtures.h"

namespace clisc {
namespace {

using ::clisc::testing::Fixture;
using ::clisc::testing::LoadGoldens;

torch::Tensor ResizeU8(const torch::Tensor& image, int out_w, int out_h, PilFilter filter) {
  const torch::Tensor in = image.contiguous();
  const int h = static_cast<int>(in.size(0)), w = static_cast<int>(in.size(1));
  const int channels = in.dim() == 3 ? static_cast<int>(in.size(2)) : 1;
  std::vector<uint8_t> out = PilResize(in.data_ptr<uint8_t>(), w, h, channels, out_w, out_h, filter);
  std::vector<int64_t> shape = {out_h, out_w};
  if (in.dim() == 3) shape.push_back(channels);
  return torch::from_blob(out.data(), shape, torch::kUInt8).clone();
}

TEST(PilResampleGoldenTest, ClipBicubicMatchesPillowExactly) {
  const auto path = Fixture("clip/preprocess_cases.pth");
  CLISC_REQUIRE_FIXTURE(path);
  const auto goldens = LoadGoldens(path);
  int cases = 0;
  for (const auto& [key, input] : goldens) {
    const auto slash = key.find("/input");
    if (slash == std::string::npos) continue;
    const std::string id = key.substr(0, slash);
    const torch::Tensor expected = goldens.at(id + "/resized");
    const int out_h = static_cast<int>(expected.size(0)), out_w = static_cast<int>(expected.size(1));
    SCOPED_TRACE(id);
    if (input.scalar_type() == torch::kUInt8) {
      EXPECT_TRUE(torch::equal(ResizeU8(input, out_w, out_h, PilFilter::kBicubic), expected));
    } else {
      const torch::Tensor in = input.contiguous();
      std::vector<float> out = PilResize(in.data_ptr<float>(), static_cast<int>(in.size(1)),
                                         static_cast<int>(in.size(0)), out_w, out_h,
                                         PilFilter::kBicubic);
      const torch::Tensor ours = torch::from_blob(out.data(), {out_h, out_w}, torch::kFloat);
      EXPECT_TRUE(torch::equal(ours, expected))
          << "max diff " << (ours - expected).abs().max().item<float>();
    }
    ++cases;
  }
  EXPECT_EQ(cases, 10);
}

TEST(PilResampleGoldenTest, ClassifierBilinearDownscaleMatchesPillowExactly) {
  const auto path = Fixture("cam/cam_io.pth");
  CLISC_REQUIRE_FIXTURE(path);
  const auto goldens = LoadGoldens(path);
  const torch::Tensor inputs = goldens.at("inputs");  // [4,3,224,224], ToTensor of the resize
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    const torch::Tensor slice = goldens.at("slice_" + std::to_string(i) + "_u8");
    const torch::Tensor ours = ResizeU8(slice, 224, 224, PilFilter::kBilinear);
    const torch::Tensor expected = (inputs[i][0] * 255).round().to(torch::kUInt8);
    EXPECT_TRUE(torch::equal(ours, expected))
        << (ours.to(torch::kInt) - expected.to(torch::kInt)).abs().max().item<int>();
  }
}

TEST(PilResampleGoldenTest, SamRgbUpscaleMatchesPillowExactly) {
  const auto path = Fixture("sam/transforms_io.pth");
  CLISC_REQUIRE_FIXTURE(path);
  const auto goldens = LoadGoldens(path);
  for (const char* name : {"gray181x131", "rgb100x80", "rgb57x131"}) {
    SCOPED_TRACE(name);
    const torch::Tensor image = goldens.at(std::string(name) + ".image");
    const torch::Tensor expected = goldens.at(std::string(name) + ".resized1024");
    const torch::Tensor ours = ResizeU8(image, static_cast<int>(expected.size(1)),
                                        static_cast<int>(expected.size(0)), PilFilter::kBilinear);
    EXPECT_TRUE(torch::equal(ours, expected))
        << (ours.to(torch::kInt) - expected.to(torch::kInt)).abs().max().item<int>();
  }
}

}  // namespace
}  // namespace clisc
