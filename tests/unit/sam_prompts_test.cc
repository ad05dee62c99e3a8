// SAM prompts per slice (REFERENCE.md section 6) on constructed slices whose candidate pixels,
// point positions and boxes are worked out by hand in the comments.
#include "workers/method/sam_prompts.h"

#include <gtest/gtest.h>

#include <utility>
#include <vector>

namespace clisc::method {
namespace {

using backends::BinaryMask;
using backends::BoxPrompt;
using backends::FloatSlice;
using backends::PointPrompt;
using backends::Prompts;

constexpr int kW = 20, kH = 16;

// A 20x16 slice of zeros with one pixel of 10 outside the mask (so min 0, max 10 and m = value /
// 10), and a mask on rows 5..7, columns 4..8 holding 2 except at the bright pixels.
struct Scene {
  FloatSlice slice{kW, kH, std::vector<float>(kW* kH, 0.0f)};
  BinaryMask mask{kW, kH, std::vector<uint8_t>(kW* kH, 0)};
  void Set(int x, int y, float v) { slice.values[y * kW + x] = v; }
};

Scene MainScene() {
  Scene s;
  s.Set(19, 15, 10);
  for (int y = 5; y <= 7; ++y) {
    for (int x = 4; x <= 8; ++x) {
      s.mask.pixels[y * kW + x] = 1;
      s.Set(x, y, 2);
    }
  }
  // m >= numpy's edge 6 = 6 * (1.0 / 10) = 0.6000000000000001: values 7..10 pass, and 6
  // (m = 0.6 exactly) does not.
  s.Set(5, 5, 9), s.Set(7, 5, 7), s.Set(8, 5, 10);
  s.Set(4, 6, 8), s.Set(6, 6, 6), s.Set(7, 6, 7);
  s.Set(4, 7, 9), s.Set(5, 7, 10), s.Set(8, 7, 7);
  return s;
}

std::vector<std::pair<float, float>> PositivePoints(const Prompts& p) {
  std::vector<std::pair<float, float>> out;
  for (const PointPrompt& q : p.points)
    if (q.positive) out.emplace_back(q.x, q.y);
  return out;
}

void ExpectBox(const std::optional<BoxPrompt>& box, float x0, float y0, float x1, float y1) {
  ASSERT_TRUE(box.has_value());
  EXPECT_EQ(box->x0, x0);
  EXPECT_EQ(box->y0, y0);
  EXPECT_EQ(box->x1, x1);
  EXPECT_EQ(box->y1, y1);
}

TEST(SamPromptsTest, PointsAtTheReferencePositionsOfTheCandidates) {
  const Scene s = MainScene();
  auto result = PromptsForSlice(s.slice, s.mask, PromptOptions{});
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_TRUE(result->prompts.has_value()) << result->skipped_reason;
  // Candidates in row-major order: (5,5) (7,5) (8,5) (4,6) (7,6) (4,7) (5,7) (8,7), N = 8.
  // Positions 0, N-1 = 7, N/2 = 4, N/3 = 2, 2N/3 = 5.
  EXPECT_EQ(PositivePoints(*result->prompts),
            (std::vector<std::pair<float, float>>{{5, 5}, {8, 7}, {7, 6}, {8, 5}, {4, 7}}));
}

TEST(SamPromptsTest, BoxGrowsByTheMarginAndClipsAtZeroAndAtWidthHeight) {
  const Scene s = MainScene();
  // Tight box columns 4..8, rows 5..7. Margin 10: x0 = max(0, -6), y0 = max(0, -5),
  // x1 = min(20, 18), y1 = min(16, 17) = 16 (H, not H - 1).
  auto wide = PromptsForSlice(s.slice, s.mask, PromptOptions{});
  ASSERT_TRUE(wide.ok() && wide->prompts);
  ExpectBox(wide->prompts->box, 0, 0, 18, 16);
  // Negatives follow the 5 positives at (x0,y0), (x0,y1), (x1,y0), (x1,y1).
  const std::vector<PointPrompt>& pts = wide->prompts->points;
  ASSERT_EQ(pts.size(), 9u);
  const std::vector<std::pair<float, float>> corners = {{0, 0}, {0, 16}, {18, 0}, {18, 16}};
  for (int i = 0; i < 4; ++i) {
    EXPECT_FALSE(pts[5 + i].positive);
    EXPECT_EQ(pts[5 + i].x, corners[i].first);
    EXPECT_EQ(pts[5 + i].y, corners[i].second);
  }
  PromptOptions narrow;
  narrow.box_margin = 2;
  ExpectBox(PromptsForSlice(s.slice, s.mask, narrow)->prompts->box, 2, 3, 10, 9);
  PromptOptions s3f;  // S3F: no margin, the tight box itself
  s3f.box_margin = 0;
  s3f.normalize_eps = 1e-6;
  ExpectBox(PromptsForSlice(s.slice, s.mask, s3f)->prompts->box, 4, 5, 8, 7);
}

TEST(SamPromptsTest, MaskTouchingTheBorderClipsTheBox) {
  Scene s;
  for (int y = 0; y <= 2; ++y) {
    for (int x = 17; x <= 19; ++x) {
      s.mask.pixels[y * kW + x] = 1;
      s.Set(x, y, 1.0f + x + y);
    }
  }
  const std::optional<BoxPrompt> box = MaskBox(s.mask, 10);
  ExpectBox(box, 7, 0, 20, 12);
  auto result = PromptsForSlice(s.slice, s.mask);
  ASSERT_TRUE(result.ok() && result->prompts);
  ExpectBox(result->prompts->box, 7, 0, 20, 12);
  EXPECT_FALSE(MaskBox(BinaryMask{3, 3, std::vector<uint8_t>(9, 0)}, 10).has_value());
}

TEST(SamPromptsTest, OneOrTwoCandidatesRepeatPoints) {
  Scene one = MainScene();
  for (float& v : one.slice.values) v = v > 0 ? 1.0f : 0.0f;
  one.Set(6, 6, 5);  // max 5: the other mask pixels have m = 0.2, this one m = 1, the only one
                     // at or above the edge 0.6000000000000001
  auto r1 = PromptsForSlice(one.slice, one.mask);
  ASSERT_TRUE(r1.ok() && r1->prompts);
  EXPECT_EQ(PositivePoints(*r1->prompts), (std::vector<std::pair<float, float>>(5, {6, 6})));

  Scene two = one;
  two.Set(4, 7, 5);  // N = 2: positions 0, 1, 1, 0, 1
  auto r2 = PromptsForSlice(two.slice, two.mask);
  ASSERT_TRUE(r2.ok() && r2->prompts);
  EXPECT_EQ(PositivePoints(*r2->prompts),
            (std::vector<std::pair<float, float>>{{6, 6}, {4, 7}, {4, 7}, {6, 6}, {4, 7}}));
}

TEST(SamPromptsTest, FewerPointsAndNoNegativesOnRequest) {
  const Scene s = MainScene();
  PromptOptions options;
  options.num_positive_points = 2;
  options.corner_negatives = false;
  auto result = PromptsForSlice(s.slice, s.mask, options);
  ASSERT_TRUE(result.ok() && result->prompts);
  ASSERT_EQ(result->prompts->points.size(), 2u);
  EXPECT_EQ(PositivePoints(*result->prompts),
            (std::vector<std::pair<float, float>>{{5, 5}, {8, 7}}));
  EXPECT_TRUE(result->prompts->box.has_value());
}

TEST(SamPromptsTest, NoPromptsWithAReasonWhenTheMaskedSliceIsZero) {
  Scene s = MainScene();
  for (int y = 5; y <= 7; ++y)
    for (int x = 4; x <= 8; ++x) s.Set(x, y, 0);  // the mask now covers slice-minimum pixels
  auto zero = PromptsForSlice(s.slice, s.mask);
  ASSERT_TRUE(zero.ok());
  EXPECT_FALSE(zero->prompts.has_value());
  EXPECT_NE(zero->skipped_reason.find("sum of m is 0"), std::string::npos);

  Scene empty = MainScene();
  empty.mask.pixels.assign(kW * kH, 0);
  auto no_mask = PromptsForSlice(empty.slice, empty.mask);
  ASSERT_TRUE(no_mask.ok());
  EXPECT_FALSE(no_mask->prompts.has_value());
  EXPECT_FALSE(no_mask->skipped_reason.empty());

  Scene flat = MainScene();
  flat.slice.values.assign(kW * kH, 3.0f);
  auto constant = PromptsForSlice(flat.slice, flat.mask);
  ASSERT_TRUE(constant.ok());
  EXPECT_FALSE(constant->prompts.has_value());
  EXPECT_NE(constant->skipped_reason.find("constant"), std::string::npos);
  PromptOptions s3f;
  s3f.normalize_eps = 1e-6;  // defined normalization, but every n is 0
  auto constant_eps = PromptsForSlice(flat.slice, flat.mask, s3f);
  ASSERT_TRUE(constant_eps.ok());
  EXPECT_FALSE(constant_eps->prompts.has_value());
}

TEST(SamPromptsTest, RejectsMismatchedSizesAndBadOptions) {
  const Scene s = MainScene();
  BinaryMask small{kW - 1, kH, std::vector<uint8_t>((kW - 1) * kH, 1)};
  EXPECT_EQ(PromptsForSlice(s.slice, small).status().code(), StatusCode::kInvalidArgument);
  PromptOptions too_many;
  too_many.num_positive_points = 6;
  EXPECT_EQ(PromptsForSlice(s.slice, s.mask, too_many).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace clisc::method
