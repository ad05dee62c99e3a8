// OpenAI CLIP's tokenizer (simple_tokenizer.py + clip.tokenize): text cleaning, the pre-tokenizing
// split, GPT-2 byte-to-unicode mapping and BPE over bpe_simple_vocab_16e6.txt.gz.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace clisc::text {

class ClipTokenizer {
 public:
  static constexpr int32_t kStartOfText = 49406;
  static constexpr int32_t kEndOfText = 49407;
  static constexpr int32_t kVocabSize = 49408;

  // Reads the gzip merges file; lines 2..48895 are the merges CLIP uses.
  static StatusOr<ClipTokenizer> Load(const std::filesystem::path& vocab_gz);

  // SimpleTokenizer.encode: BPE ids without SOT/EOT.
  StatusOr<std::vector<int32_t>> Encode(std::string_view text) const;

  // clip.tokenize: one row of context_length ids per text, [SOT] + ids + [EOT] padded with 0.
  // A row that does not fit is INVALID_ARGUMENT naming the text, unless truncate, which keeps the
  // first context_length ids and makes the last one EOT.
  StatusOr<std::vector<std::vector<int32_t>>> Tokenize(const std::vector<std::string>& texts,
                                                       int context_length = 77,
                                                       bool truncate = false) const;

  // SimpleTokenizer.decode: '</w>' becomes a space, invalid UTF-8 becomes U+FFFD.
  std::string Decode(const std::vector<int32_t>& ids) const;

  // The BPE symbols of one pre-token (byte-mapped, '</w>' on the last), for diagnostics.
  std::vector<std::string> Bpe(std::string_view pretoken) const;

 private:
  struct Tables;
  explicit ClipTokenizer(std::shared_ptr<Tables> tables) : tables_(std::move(tables)) {}

  std::shared_ptr<Tables> tables_;
};

}  // namespace clisc::text
