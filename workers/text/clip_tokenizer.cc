#include "workers/text/clip_tokenizer.h"

#include <zlib.h>

#include <array>
#include <climits>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

#include "workers/text/clip_text_clean.h"

namespace clisc::text {
namespace {

constexpr int kMergesUsed = 49152 - 256 - 2;  // simple_tokenizer.py: lines[1:49152-256-2+1]
constexpr std::string_view kEndOfWord = "</w>";

void AppendUtf8(uint32_t c, std::string& out) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

bool IsPrintableByte(int b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174; }

// GPT-2's bytes_to_unicode: printable bytes map to themselves, the other 68 to U+0100 upwards.
// Every code point is below U+0800, so each mapped byte is 1 or 2 UTF-8 bytes.
std::array<std::string, 256> ByteToUnicode() {
  std::array<std::string, 256> table;
  uint32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    AppendUtf8(IsPrintableByte(b) ? static_cast<uint32_t>(b) : next++, table[b]);
  }
  return table;
}

StatusOr<std::vector<std::string>> ReadGzipLines(const std::filesystem::path& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) return NotFoundError("cannot open BPE vocabulary " + path.string());
  std::string content;
  std::array<char, 1 << 16> buf;
  int n = 0;
  while ((n = gzread(f, buf.data(), static_cast<unsigned>(buf.size()))) > 0) {
    content.append(buf.data(), static_cast<size_t>(n));
  }
  const bool not_gzip = gzdirect(f) != 0;
  int errnum = Z_OK;
  const char* msg = gzerror(f, &errnum);
  const std::string zmsg = msg ? msg : "";
  gzclose(f);
  if (not_gzip) return DataLossError("BPE vocabulary " + path.string() + " is not gzip");
  if (n < 0 || (errnum != Z_OK && errnum != Z_STREAM_END)) {
    return DataLossError("corrupt gzip in BPE vocabulary " + path.string() + ": " + zmsg);
  }
  std::vector<std::string> lines;
  size_t start = 0;
  while (start <= content.size()) {
    const size_t end = content.find('\n', start);
    if (end == std::string::npos) {
      lines.push_back(content.substr(start));
      break;
    }
    lines.push_back(content.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

}  // namespace

struct ClipTokenizer::Tables {
  std::array<std::string, 256> byte_encoder;
  std::unordered_map<std::string, uint8_t> byte_decoder;
  std::unordered_map<std::string, int32_t> encoder;
  std::vector<std::string> decoder;
  std::unordered_map<std::string, int> merge_rank;  // key: "first second"
  mutable std::mutex cache_mu;
  mutable std::unordered_map<std::string, std::vector<std::string>> cache;
};

StatusOr<ClipTokenizer> ClipTokenizer::Load(const std::filesystem::path& vocab_gz) {
  ASSIGN_OR_RETURN(std::vector<std::string> lines, ReadGzipLines(vocab_gz));
  if (lines.size() < static_cast<size_t>(kMergesUsed) + 1) {
    return DataLossError("BPE vocabulary " + vocab_gz.string() + " has " +
                         std::to_string(lines.size()) + " lines, expected at least " +
                         std::to_string(kMergesUsed + 1));
  }
  auto t = std::make_shared<Tables>();
  t->byte_encoder = ByteToUnicode();
  for (int b = 0; b < 256; ++b) t->byte_decoder[t->byte_encoder[b]] = static_cast<uint8_t>(b);
  t->decoder.reserve(kVocabSize);
  // Python's dict order of bytes_to_unicode(): the printable bytes, then the remapped ones.
  std::vector<std::string> byte_symbols;
  for (int pass = 0; pass < 2; ++pass) {
    for (int b = 0; b < 256; ++b) {
      if (IsPrintableByte(b) == (pass == 0)) byte_symbols.push_back(t->byte_encoder[b]);
    }
  }
  for (const std::string& s : byte_symbols) t->decoder.push_back(s);
  for (const std::string& s : byte_symbols) t->decoder.push_back(s + std::string(kEndOfWord));
  for (int i = 0; i < kMergesUsed; ++i) {
    const std::string& line = lines[static_cast<size_t>(i) + 1];
    const size_t space = line.find(' ');
    if (space == std::string::npos || space == 0 || space + 1 >= line.size() ||
        line.find(' ', space + 1) != std::string::npos) {
      return DataLossError("BPE vocabulary " + vocab_gz.string() + " line " +
                           std::to_string(i + 2) + " is not a merge pair: '" + line + "'");
    }
    t->merge_rank.emplace(line, i);
    t->decoder.push_back(line.substr(0, space) + line.substr(space + 1));
  }
  t->decoder.push_back("<|startoftext|>");
  t->decoder.push_back("<|endoftext|>");
  for (size_t i = 0; i < t->decoder.size(); ++i) {
    t->encoder[t->decoder[i]] = static_cast<int32_t>(i);
  }
  if (t->decoder.size() != static_cast<size_t>(kVocabSize)) {
    return DataLossError("BPE vocabulary " + vocab_gz.string() + " gives " +
                         std::to_string(t->decoder.size()) + " ids, expected " +
                         std::to_string(kVocabSize));
  }
  t->cache["<|startoftext|>"] = {"<|startoftext|>"};
  t->cache["<|endoftext|>"] = {"<|endoftext|>"};
  return ClipTokenizer(std::move(t));
}

std::vector<std::string> ClipTokenizer::Bpe(std::string_view pretoken) const {
  std::string key;
  for (unsigned char b : pretoken) key += tables_->byte_encoder[b];
  {
    std::lock_guard<std::mutex> lock(tables_->cache_mu);
    auto it = tables_->cache.find(key);
    if (it != tables_->cache.end()) return it->second;
  }
  std::vector<std::string> word;
  for (unsigned char b : pretoken) word.push_back(tables_->byte_encoder[b]);
  if (word.empty()) return {};
  word.back() += kEndOfWord;
  while (word.size() > 1) {
    int best_rank = INT_MAX;
    std::string best_first, best_second;
    for (size_t i = 0; i + 1 < word.size(); ++i) {
      auto it = tables_->merge_rank.find(word[i] + " " + word[i + 1]);
      if (it != tables_->merge_rank.end() && it->second < best_rank) {
        best_rank = it->second;
        best_first = word[i];
        best_second = word[i + 1];
      }
    }
    if (best_rank == INT_MAX) break;
    // Merge every non-overlapping occurrence left to right, as simple_tokenizer.py does.
    std::vector<std::string> merged;
    for (size_t i = 0; i < word.size();) {
      if (i + 1 < word.size() && word[i] == best_first && word[i + 1] == best_second) {
        merged.push_back(best_first + best_second);
        i += 2;
      } else {
        merged.push_back(word[i]);
        ++i;
      }
    }
    word = std::move(merged);
  }
  std::lock_guard<std::mutex> lock(tables_->cache_mu);
  tables_->cache.emplace(key, word);
  return word;
}

StatusOr<std::vector<int32_t>> ClipTokenizer::Encode(std::string_view text) const {
  std::vector<int32_t> ids;
  const std::string cleaned = WhitespaceCleanLower(BasicClean(text));
  for (const std::string& piece : PreTokenize(cleaned)) {
    for (const std::string& symbol : Bpe(piece)) {
      auto it = tables_->encoder.find(symbol);
      if (it == tables_->encoder.end()) {
        return InternalError("BPE symbol '" + symbol + "' of '" + piece +
                             "' is not in the CLIP vocabulary");
      }
      ids.push_back(it->second);
    }
  }
  return ids;
}

StatusOr<std::vector<std::vector<int32_t>>> ClipTokenizer::Tokenize(
    const std::vector<std::string>& texts, int context_length, bool truncate) const {
  if (context_length < 2) {
    return InvalidArgumentError("context_length must be at least 2, got " +
                                std::to_string(context_length));
  }
  std::vector<std::vector<int32_t>> rows;
  rows.reserve(texts.size());
  for (const std::string& text : texts) {
    ASSIGN_OR_RETURN(std::vector<int32_t> ids, Encode(text));
    std::vector<int32_t> tokens;
    tokens.reserve(ids.size() + 2);
    tokens.push_back(kStartOfText);
    tokens.insert(tokens.end(), ids.begin(), ids.end());
    tokens.push_back(kEndOfText);
    if (tokens.size() > static_cast<size_t>(context_length)) {
      if (!truncate) {
        return InvalidArgumentError("Input " + text + " is too long for context length " +
                                    std::to_string(context_length));
      }
      tokens.resize(static_cast<size_t>(context_length));
      tokens.back() = kEndOfText;
    }
    tokens.resize(static_cast<size_t>(context_length), 0);
    rows.push_back(std::move(tokens));
  }
  return rows;
}

std::string ClipTokenizer::Decode(const std::vector<int32_t>& ids) const {
  std::string joined;
  for (int32_t id : ids) {
    if (id >= 0 && static_cast<size_t>(id) < tables_->decoder.size()) {
      joined += tables_->decoder[static_cast<size_t>(id)];
    }
  }
  // Map each symbol character back to its byte; '</w>' becomes a space.
  std::string bytes;
  for (size_t i = 0; i < joined.size();) {
    if (joined.compare(i, kEndOfWord.size(), kEndOfWord) == 0) {
      bytes.push_back(' ');
      i += kEndOfWord.size();
      continue;
    }
    const size_t len = (static_cast<unsigned char>(joined[i]) & 0x80) ? 2 : 1;
    auto it = tables_->byte_decoder.find(joined.substr(i, len));
    if (it != tables_->byte_decoder.end()) bytes.push_back(static_cast<char>(it->second));
    i += len;
  }
  return ReplaceInvalidUtf8(bytes);
}

}  // namespace clisc::text
