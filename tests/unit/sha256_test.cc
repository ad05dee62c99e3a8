#include "common/sha256.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>

namespace clisc {
namespace {

// Test vectors from NIST's "Cryptographic Algorithm Validation / Examples with intermediate
// values" for SHA-256 (FIPS 180-4) and the classic one-million-'a' message.
TEST(Sha256Test, NistShortMessages) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Sha256Test, NistTwoBlockMessage) {
  // 448 bits: the padding no longer fits in the first block.
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256Test, Nist896BitMessage) {
  EXPECT_EQ(Sha256Hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
                      "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"),
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

TEST(Sha256Test, NistMillionA) {
  EXPECT_EQ(Sha256Hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256Test, PaddingBoundaries) {
  // Lengths around the 55/56/64-byte edges exercise both padding branches; the values were
  // computed with coreutils sha256sum.
  EXPECT_EQ(Sha256Hex(std::string(55, 'a')),
            "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
  EXPECT_EQ(Sha256Hex(std::string(56, 'a')),
            "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
  EXPECT_EQ(Sha256Hex(std::string(64, 'a')),
            "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
}

TEST(Sha256Test, StreamingInRandomPiecesMatchesOneShot) {
  std::mt19937 rng(7);
  std::string data(100000, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  const std::string expected = Sha256Hex(data);
  for (int trial = 0; trial < 20; ++trial) {
    Sha256 hasher;
    size_t pos = 0;
    while (pos < data.size()) {
      size_t n = std::min<size_t>(rng() % 200, data.size() - pos);
      hasher.Update(data.data() + pos, n);
      pos += n;
    }
    EXPECT_EQ(hasher.FinishHex(), expected);
  }
}

TEST(Sha256Test, FinishResetsForReuse) {
  Sha256 hasher;
  hasher.Update("abc");
  EXPECT_EQ(hasher.FinishHex(), Sha256Hex("abc"));
  hasher.Update("abc");
  EXPECT_EQ(hasher.FinishHex(), Sha256Hex("abc"));
}

TEST(Sha256Test, FileMatchesMemory) {
  auto dir =
      std::filesystem::path(::testing::TempDir()) / ("sha256_test." + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto file = dir / "blob.bin";
  std::string data(3 * (1 << 20) + 17, 'x');  // spans several read buffers
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 31);
  std::ofstream(file, std::ios::binary)
      .write(data.data(), static_cast<std::streamsize>(data.size()));
  auto hex = Sha256FileHex(file);
  ASSERT_TRUE(hex.ok()) << hex.status().ToString();
  EXPECT_EQ(*hex, Sha256Hex(data));
  EXPECT_EQ(Sha256FileHex(dir / "missing").status().code(), StatusCode::kNotFound);
  std::filesystem::remove_all(dir);
}

TEST(Sha256Test, RecognizesDigestShape) {
  EXPECT_TRUE(IsSha256Hex(Sha256Hex("x")));
  EXPECT_FALSE(IsSha256Hex(""));
  EXPECT_FALSE(IsSha256Hex(std::string(63, 'a')));
  EXPECT_FALSE(IsSha256Hex(std::string(64, 'A')));  // uppercase is not how we write digests
  EXPECT_FALSE(IsSha256Hex(std::string(64, 'g')));
}

}  // namespace
}  // namespace clisc
