#include "common/png_writer.h"

#include <gtest/gtest.h>
#include <zlib.h>

namespace clisc {
namespace {

uint32_t BigEndian(const std::string& s, size_t at) {
  return (uint32_t(uint8_t(s[at])) << 24) | (uint32_t(uint8_t(s[at + 1])) << 16) |
         (uint32_t(uint8_t(s[at + 2])) << 8) | uint32_t(uint8_t(s[at + 3]));
}

TEST(PngWriterTest, WritesChunksWhosePixelsInflateBack) {
  const int w = 5, h = 3;
  std::vector<uint8_t> rgb(w * h * 3);
  for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<uint8_t>(i * 7);
  auto png = EncodePngRgb(w, h, rgb);
  ASSERT_TRUE(png.ok());
  ASSERT_EQ(png->substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  // Walk the chunks, checking each CRC, and collect IDAT.
  size_t at = 8;
  std::string idat;
  std::vector<std::string> types;
  while (at < png->size()) {
    const uint32_t length = BigEndian(*png, at);
    const std::string type = png->substr(at + 4, 4);
    const std::string body = png->substr(at + 4, 4 + length);
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, reinterpret_cast<const Bytef*>(body.data()), body.size());
    EXPECT_EQ(BigEndian(*png, at + 8 + length), uint32_t(crc)) << type;
    if (type == "IHDR") {
      EXPECT_EQ(BigEndian(*png, at + 8), uint32_t(w));
      EXPECT_EQ(BigEndian(*png, at + 12), uint32_t(h));
    }
    if (type == "IDAT") idat += png->substr(at + 8, length);
    types.push_back(type);
    at += 12 + length;
  }
  EXPECT_EQ(types, (std::vector<std::string>{"IHDR", "IDAT", "IEND"}));
  std::vector<uint8_t> raw(h * (w * 3 + 1));
  uLongf raw_size = raw.size();
  ASSERT_EQ(
      uncompress(raw.data(), &raw_size, reinterpret_cast<const Bytef*>(idat.data()), idat.size()),
      Z_OK);
  ASSERT_EQ(raw_size, raw.size());
  for (int y = 0; y < h; ++y) {
    EXPECT_EQ(raw[y * (w * 3 + 1)], 0);  // filter type none
    for (int i = 0; i < w * 3; ++i) EXPECT_EQ(raw[y * (w * 3 + 1) + 1 + i], rgb[y * w * 3 + i]);
  }
}

TEST(PngWriterTest, RefusesAMismatchedBuffer) {
  EXPECT_FALSE(EncodePngRgb(4, 4, std::vector<uint8_t>(10)).ok());
  EXPECT_FALSE(EncodePngRgb(0, 4, {}).ok());
}

}  // namespace
}  // namespace clisc
