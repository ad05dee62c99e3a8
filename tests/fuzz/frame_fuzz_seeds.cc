// Writes one valid frame of every message type into a directory: the fuzzer's seed corpus, so
// that it starts from frames that pass the parser and spends its time on the semantic rules.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/fuzz/sample_envelopes.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTPUT_DIR\n", argv[0]);
    return 2;
  }
  std::filesystem::path dir = argv[1];
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    std::fprintf(stderr, "cannot create %s: %s\n", dir.c_str(), ec.message().c_str());
    return 1;
  }
  int written = 0;
  for (auto body : clisc::testing::AllBodyCases()) {
    std::string frame = clisc::EncodeFrame(clisc::testing::SampleEnvelope(body));
    std::ofstream out(dir / ("body_" + std::to_string(static_cast<int>(body))), std::ios::binary);
    out.write(frame.data(), static_cast<std::streamsize>(frame.size()));
    if (!out) {
      std::fprintf(stderr, "cannot write seed %d\n", static_cast<int>(body));
      return 1;
    }
    ++written;
  }
  std::printf("wrote %d seed frames to %s\n", written, dir.c_str());
  return 0;
}
