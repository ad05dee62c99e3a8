#include "common/splits.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <system_error>

#include "common/atomic_file.h"

namespace clisc {
namespace fs = std::filesystem;

namespace {

struct CsvRecord {
  int line = 0;  // 1-based line where the record starts
  std::vector<std::string> fields;
};

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// RFC 4180 with the usual leniencies: CRLF or LF, quotes may open a field only at its start,
// fields are trimmed of spaces and tabs. A record whose fields are all empty (a blank line) is
// dropped.
StatusOr<std::vector<CsvRecord>> SplitCsvRecords(std::string_view text) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  std::vector<CsvRecord> records;
  CsvRecord current{1, {}};
  std::string field;
  bool in_quotes = false;
  int line = 1;
  auto end_field = [&] {
    current.fields.push_back(std::string(Trim(field)));
    field.clear();
  };
  auto end_record = [&] {
    end_field();
    bool blank = std::all_of(current.fields.begin(), current.fields.end(),
                             [](const std::string& f) { return f.empty(); });
    if (!blank) records.push_back(std::move(current));
    current = CsvRecord{line, {}};
  };
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_quotes) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          in_quotes = false;
        }
      } else {
        if (c == '\n') ++line;
        field += c;
      }
      continue;
    }
    if (c == '"' && Trim(field).empty()) {
      field.clear();
      in_quotes = true;
    } else if (c == ',') {
      end_field();
    } else if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
      // CR of a CRLF: the LF ends the record.
    } else if (c == '\n') {
      ++line;
      end_record();
    } else {
      field += c;
    }
  }
  if (in_quotes) {
    return InvalidArgumentError("unterminated quoted field starting on line " +
                                std::to_string(current.line));
  }
  end_record();
  return records;
}

std::string JoinIds(const std::vector<std::string>& ids, size_t limit = 10) {
  std::string out;
  for (size_t i = 0; i < ids.size() && i < limit; ++i) out += (i ? ", " : "") + ids[i];
  if (ids.size() > limit) out += ", ... (" + std::to_string(ids.size()) + " in all)";
  return out;
}

}  // namespace

std::string CaseIdFromImagePath(std::string_view image_path) {
  std::string_view s = Trim(image_path);
  size_t slash = s.find_last_of("/\\");
  if (slash != std::string_view::npos) s = s.substr(slash + 1);
  if (EndsWith(s, ".gz")) s.remove_suffix(3);
  while (EndsWith(s, ".nii")) s.remove_suffix(4);
  // Raw-layout paths name a modality file (BraTS20_Training_001_flair, BraTS-GLI-00000-000-t2f);
  // the case id is the stem without that suffix. Preprocessed paths are the bare id already.
  for (std::string_view suffix : {"_flair", "_t1ce", "_t1", "_t2", "-t2f", "-t1c", "-t1n", "-t2w"}) {
    if (EndsWith(s, suffix)) {
      s.remove_suffix(suffix.size());
      break;
    }
  }
  return std::string(s);
}

StatusOr<std::vector<std::string>> ParseSplitCsv(std::string_view text) {
  ASSIGN_OR_RETURN(std::vector<CsvRecord> records, SplitCsvRecords(text));
  if (records.empty()) return InvalidArgumentError("empty split CSV (no header)");
  const CsvRecord& header = records.front();
  size_t image_column = header.fields.size();
  for (size_t i = 0; i < header.fields.size(); ++i) {
    std::string name = header.fields[i];
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (name == "image_pth") image_column = i;
  }
  if (image_column == header.fields.size()) {
    return InvalidArgumentError("split CSV header on line " + std::to_string(header.line) +
                                " has no image_pth column");
  }
  std::vector<std::string> ids;
  std::map<std::string, int> first_line;
  for (size_t r = 1; r < records.size(); ++r) {
    const CsvRecord& record = records[r];
    std::string id = image_column < record.fields.size()
                         ? CaseIdFromImagePath(record.fields[image_column])
                         : std::string();
    if (id.empty()) {
      return InvalidArgumentError("line " + std::to_string(record.line) + ": no image path");
    }
    auto [it, inserted] = first_line.emplace(id, record.line);
    if (!inserted) {
      return InvalidArgumentError("line " + std::to_string(record.line) + ": case " + id +
                                  " already listed on line " + std::to_string(it->second));
    }
    ids.push_back(std::move(id));
  }
  return ids;
}

StatusOr<std::vector<std::string>> ReadSplitCsv(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return NotFoundError("cannot open split file " + file.string());
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return UnavailableError("cannot read split file " + file.string());
  auto ids = ParseSplitCsv(text.str());
  if (!ids.ok()) return ids.status().WithContext(file.string());
  return ids;
}

StatusOr<Splits> ReadReferenceSplits(const fs::path& dir) {
  Splits splits;
  ASSIGN_OR_RETURN(splits.train, ReadSplitCsv(dir / "train.csv"));
  ASSIGN_OR_RETURN(splits.valid, ReadSplitCsv(dir / "valid.csv"));
  ASSIGN_OR_RETURN(splits.test, ReadSplitCsv(dir / "test.csv"));
  return splits;
}

uint64_t UniformBelow(std::mt19937_64& rng, uint64_t bound) {
  // Values below 2^64 mod bound would make the low residues more likely; drop them.
  uint64_t threshold = (0 - bound) % bound;
  while (true) {
    uint64_t r = rng();
    if (r >= threshold) return r % bound;
  }
}

void FisherYatesShuffle(std::vector<std::string>& items, std::mt19937_64& rng) {
  for (size_t i = items.size(); i > 1; --i) {
    size_t j = static_cast<size_t>(UniformBelow(rng, i));
    std::swap(items[i - 1], items[j]);
  }
}

StatusOr<Splits> MakeSeededSplits(std::vector<std::string> ids, const SplitFractions& fractions,
                                  uint64_t seed) {
  const double parts[3] = {fractions.train, fractions.valid, fractions.test};
  for (double f : parts) {
    if (!std::isfinite(f) || f < 0 || f > 1) {
      return InvalidArgumentError("split fractions must lie in [0, 1]");
    }
  }
  if (std::abs(parts[0] + parts[1] + parts[2] - 1.0) > 1e-6) {
    return InvalidArgumentError("split fractions must sum to 1");
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  std::mt19937_64 rng(seed);
  FisherYatesShuffle(ids, rng);
  // The small epsilon keeps 0.7 * 10 from flooring to 6 through rounding.
  const double n = static_cast<double>(ids.size());
  size_t n_train = std::min(ids.size(), static_cast<size_t>(std::floor(n * parts[0] + 1e-9)));
  size_t n_valid =
      std::min(ids.size() - n_train, static_cast<size_t>(std::floor(n * parts[1] + 1e-9)));
  Splits splits;
  splits.train.assign(ids.begin(), ids.begin() + n_train);
  splits.valid.assign(ids.begin() + n_train, ids.begin() + n_train + n_valid);
  splits.test.assign(ids.begin() + n_train + n_valid, ids.end());
  return splits;
}

std::string SplitCheck::Summary() const {
  if (in_two_splits.empty() && unknown_ids.empty() && unassigned_ids.empty()) {
    return "splits ok";
  }
  std::string out;
  auto add = [&](const char* what, const std::vector<std::string>& ids) {
    if (ids.empty()) return;
    if (!out.empty()) out += "; ";
    out += std::to_string(ids.size()) + " " + what + ": " + JoinIds(ids);
  };
  add("in more than one split", in_two_splits);
  add("not in the dataset", unknown_ids);
  add("in no split", unassigned_ids);
  return out;
}

SplitCheck CheckSplits(const Splits& splits, const std::vector<std::string>& dataset_ids) {
  std::map<std::string, int> count;
  for (const auto* list : {&splits.train, &splits.valid, &splits.test}) {
    for (const std::string& id : *list) ++count[id];
  }
  std::set<std::string> dataset(dataset_ids.begin(), dataset_ids.end());
  SplitCheck check;
  for (const auto& [id, n] : count) {
    if (n > 1) check.in_two_splits.push_back(id);
    if (!dataset.count(id)) check.unknown_ids.push_back(id);
  }
  for (const std::string& id : dataset) {
    if (!count.count(id)) check.unassigned_ids.push_back(id);
  }
  return check;
}

Status ValidateDisjoint(const Splits& splits) {
  SplitCheck check = CheckSplits(splits, {});
  if (check.in_two_splits.empty()) return OkStatus();
  return InvalidArgumentError(std::to_string(check.in_two_splits.size()) +
                              " case(s) in more than one split: " + JoinIds(check.in_two_splits));
}

std::string FormatSplitCsv(const std::vector<std::string>& ids, const SplitCsvStyle& style) {
  auto quote = [](const std::string& field) {
    if (field.find_first_of(",\"\r\n") == std::string::npos) return field;
    std::string out = "\"";
    for (char c : field) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
  };
  std::string out = "image_pth,mask_pth\n";
  for (const std::string& id : ids) {
    out += quote(style.image_dir + "/" + id + ".nii.gz") + "," +
           quote(style.label_dir + "/" + id + ".nii.gz") + "\n";
  }
  return out;
}

Status WriteSplitCsv(const std::vector<std::string>& ids, const fs::path& file,
                     const SplitCsvStyle& style) {
  return WriteFileAtomically(file, FormatSplitCsv(ids, style));
}

Status WriteReferenceSplits(const Splits& splits, const fs::path& dir, const SplitCsvStyle& style) {
  RETURN_IF_ERROR(ValidateDisjoint(splits));
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return UnavailableError("cannot create " + dir.string() + ": " + ec.message());
  RETURN_IF_ERROR(WriteSplitCsv(splits.train, dir / "train.csv", style));
  RETURN_IF_ERROR(WriteSplitCsv(splits.valid, dir / "valid.csv", style));
  return WriteSplitCsv(splits.test, dir / "test.csv", style);
}

}  // namespace clisc
