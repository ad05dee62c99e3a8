#include "common/status.h"

#include <gtest/gtest.h>

namespace clisc {
namespace {

StatusOr<int> Half(int v) {
  if (v % 2 != 0) return InvalidArgumentError("odd value " + std::to_string(v));
  return v / 2;
}

StatusOr<int> Quarter(int v) {
  ASSIGN_OR_RETURN(int h, Half(v));
  ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

TEST(StatusTest, OkAndErrorsFormat) {
  EXPECT_TRUE(OkStatus().ok());
  EXPECT_EQ(OkStatus().ToString(), "OK");
  Status s = NotFoundError("no such case");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.ToString(), "NOT_FOUND: no such case");
  EXPECT_EQ(s.WithContext("case 7").message(), "case 7: no such case");
}

TEST(StatusTest, RetryableFollowsTheCode) {
  EXPECT_TRUE(UnavailableError("x").IsRetryable());
  EXPECT_TRUE(DeadlineExceededError("x").IsRetryable());
  EXPECT_FALSE(InvalidArgumentError("x").IsRetryable());
  EXPECT_FALSE(DataLossError("x").IsRetryable());
}

TEST(StatusTest, AssignOrReturnPropagates) {
  EXPECT_EQ(*Quarter(8), 2);
  auto bad = Quarter(6);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "odd value 3");
}

}  // namespace
}  // namespace clisc
