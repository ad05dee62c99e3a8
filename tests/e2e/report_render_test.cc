// End to end: `clisc report` over a fake workdir, and the page rendered by headless Chromium.
// The page's inline self-check records on <body> how many images loaded and whether a script or
// resource error happened; --dump-dom shows those attributes. A screenshot must not be blank.
// Chromium comes from deploy/install-deps.sh; without it the test skips visibly, and fails under
// CLISC_REQUIRE_FIXTURES=1 (CI).
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <set>
#include <sstream>

#include "tests/e2e/report_render_workdir.h"

namespace clisc {
namespace {

namespace fs = std::filesystem;

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::optional<std::string> FindChromium() {
  if (const char* env = std::getenv("CLISC_CHROMIUM"); env && *env) return std::string(env);
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    for (const char* name : {"chromium", "chromium-browser", "google-chrome"}) {
      const fs::path candidate = fs::path(dir) / name;
      if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
    }
  }
  return std::nullopt;
}

bool RequireFixtures() {
  const char* v = std::getenv("CLISC_REQUIRE_FIXTURES");
  return v != nullptr && std::string(v) == "1";
}

uint32_t BigEndian(const std::string& s, size_t at) {
  return (uint32_t(uint8_t(s[at])) << 24) | (uint32_t(uint8_t(s[at + 1])) << 16) |
         (uint32_t(uint8_t(s[at + 2])) << 8) | uint32_t(uint8_t(s[at + 3]));
}

struct Image {
  int width = 0, height = 0, channels = 0;
  std::vector<uint8_t> pixels;
};

// Decodes an 8-bit, non-interlaced RGB or RGBA PNG (what Chromium's screenshots are).
std::optional<Image> DecodePng(const std::string& png) {
  if (png.size() < 33 || png.compare(0, 8, std::string("\x89PNG\r\n\x1a\n", 8)) != 0) {
    return std::nullopt;
  }
  Image image;
  std::string idat;
  for (size_t at = 8; at + 8 <= png.size();) {
    const uint32_t length = BigEndian(png, at);
    const std::string type = png.substr(at + 4, 4);
    if (type == "IHDR") {
      image.width = static_cast<int>(BigEndian(png, at + 8));
      image.height = static_cast<int>(BigEndian(png, at + 12));
      const int depth = uint8_t(png[at + 16]), color = uint8_t(png[at + 17]);
      if (depth != 8 || (color != 2 && color != 6) || png[at + 20] != 0) return std::nullopt;
      image.channels = color == 2 ? 3 : 4;
    } else if (type == "IDAT") {
      idat += png.substr(at + 8, length);
    }
    at += 12 + length;
  }
  const size_t stride = size_t(image.width) * image.channels;
  std::vector<uint8_t> raw((stride + 1) * image.height);
  uLongf raw_size = raw.size();
  if (uncompress(raw.data(), &raw_size, reinterpret_cast<const Bytef*>(idat.data()), idat.size()) !=
          Z_OK ||
      raw_size != raw.size()) {
    return std::nullopt;
  }
  image.pixels.assign(stride * image.height, 0);
  const int bpp = image.channels;
  for (int y = 0; y < image.height; ++y) {
    const uint8_t filter = raw[y * (stride + 1)];
    const uint8_t* in = &raw[y * (stride + 1) + 1];
    uint8_t* out = &image.pixels[y * stride];
    const uint8_t* up = y > 0 ? &image.pixels[(y - 1) * stride] : nullptr;
    for (size_t i = 0; i < stride; ++i) {
      const int a = i >= size_t(bpp) ? out[i - bpp] : 0, b = up ? up[i] : 0,
                c = (up && i >= size_t(bpp)) ? up[i - bpp] : 0;
      int predicted = 0;
      switch (filter) {
        case 0:
          predicted = 0;
          break;
        case 1:
          predicted = a;
          break;
        case 2:
          predicted = b;
          break;
        case 3:
          predicted = (a + b) / 2;
          break;
        case 4: {
          const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
          predicted = (pa <= pb && pa <= pc) ? a : (pb <= pc ? b : c);
          break;
        }
        default:
          return std::nullopt;
      }
      out[i] = static_cast<uint8_t>(in[i] + predicted);
    }
  }
  return image;
}

std::string Attribute(const std::string& dom, const std::string& name) {
  std::smatch match;
  if (std::regex_search(dom, match, std::regex(name + "=\"([^\"]*)\""))) return match[1];
  return "";
}

class ReportRenderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("clisc_report_render_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  int Shell(const std::string& command) {
    const int status = std::system(command.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  fs::path dir_;
};

TEST_F(ReportRenderTest, ChromiumLoadsEveryImageWithoutErrors) {
  const std::optional<std::string> chromium = FindChromium();
  if (!chromium) {
    if (RequireFixtures()) FAIL() << "chromium is not installed (deploy/install-deps.sh)";
    GTEST_SKIP() << "chromium is not installed (deploy/install-deps.sh installs it)";
  }
  const fs::path workdir = dir_ / "w";
  testing::BuildFakeWorkdir(workdir);
  if (HasFatalFailure()) return;

  // `clisc report` writes the report and prints the results table.
  ASSERT_EQ(Shell(Quote(CLISC_BINARY) + " report --workdir " + Quote(workdir.string()) + " > " +
                  Quote((dir_ / "report.out").string()) + " 2>&1"),
            0)
      << ReadFile(dir_ / "report.out");
  const std::string printed = ReadFile(dir_ / "report.out");
  EXPECT_NE(printed.find("r1 *"), std::string::npos) << printed;
  EXPECT_NE(printed.find("sam_only"), std::string::npos) << printed;
  const fs::path page = workdir / "report" / "index.html";
  ASSERT_TRUE(fs::exists(page));

  const std::string browser = Quote(*chromium) +
                              " --headless --no-sandbox --disable-gpu --no-first-run "
                              "--disable-dev-shm-usage --user-data-dir=" +
                              Quote((dir_ / "profile").string()) + " --virtual-time-budget=5000 ";
  const std::string url = Quote("file://" + page.string());
  ASSERT_EQ(Shell(browser + "--dump-dom " + url + " > " + Quote((dir_ / "dom.html").string()) +
                  " 2> " + Quote((dir_ / "chromium.log").string())),
            0)
      << ReadFile(dir_ / "chromium.log");
  const std::string dom = ReadFile(dir_ / "dom.html");
  EXPECT_EQ(Attribute(dom, "data-self-check"), "done") << dom.substr(0, 2000);
  EXPECT_EQ(Attribute(dom, "data-images-loaded"), "3");
  EXPECT_EQ(Attribute(dom, "data-images-broken"), "0");
  EXPECT_EQ(Attribute(dom, "data-window-errors"), "0");

  const fs::path shot = dir_ / "shot.png";
  ASSERT_EQ(Shell(browser +
                  "--window-size=1200,1600 --hide-scrollbars --screenshot=" + Quote(shot.string()) +
                  " " + url + " > " + Quote((dir_ / "shot.log").string()) + " 2>&1"),
            0)
      << ReadFile(dir_ / "shot.log");
  const std::optional<Image> image = DecodePng(ReadFile(shot));
  ASSERT_TRUE(image.has_value()) << "the screenshot is not a decodable PNG";
  EXPECT_EQ(image->width, 1200);
  // Not blank: many distinct colours (text, table shading, plots, overlays) and a fair share of
  // pixels that are not the white background.
  std::set<uint32_t> colours;
  size_t not_white = 0;
  const size_t pixels = size_t(image->width) * image->height;
  for (size_t i = 0; i < pixels; ++i) {
    const uint8_t* p = &image->pixels[i * image->channels];
    colours.insert((uint32_t(p[0]) << 16) | (uint32_t(p[1]) << 8) | p[2]);
    not_white += (p[0] < 245 || p[1] < 245 || p[2] < 245);
  }
  EXPECT_GT(colours.size(), 50u);
  EXPECT_GT(not_white, pixels / 50);
}

}  // namespace
}  // namespace clisc
