#include "common/brats_layout.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <map>
#include <system_error>
#include <utility>

namespace clisc {
namespace fs = std::filesystem;

namespace {

constexpr std::array<std::string_view, 4> kCanonicalNames = {"flair", "t1", "t1ce", "t2"};
constexpr std::array<std::string_view, 4> kBraTS2023Names = {"t2f", "t1n", "t1c", "t2w"};

bool AllDigits(std::string_view s, size_t count) {
  return s.size() == count &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool HasPrefix(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

char Separator(BratsNaming naming) { return naming == BratsNaming::kBraTS2023 ? '-' : '_'; }

// Length of the valid UTF-8 sequence starting at s[i], or 0 when it is not one (strict: no
// overlong forms, no surrogates, nothing above U+10FFFF).
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char b0 = byte(i);
  size_t len = 0;
  unsigned char lo = 0x80, hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (size_t k = 2; k < len; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return len;
}

struct FoundFile {
  fs::path nii;
  fs::path nii_gz;
};

// Records the chosen file for one modality (or the seg) or, when both extensions are present,
// a problem: ITK would read one while a person looks at the other, so neither is trusted.
std::optional<fs::path> ChooseFile(const FoundFile& found, std::string_view what,
                                   CaseFiles& files) {
  if (!found.nii.empty() && !found.nii_gz.empty()) {
    files.ambiguous.push_back(std::string(what));
    files.problems.push_back(std::string(what) + ": ambiguous, both " +
                             DisplayName(found.nii.filename().string()) + " and " +
                             DisplayName(found.nii_gz.filename().string()) +
                             " are present (they may hold different voxels)");
    return std::nullopt;
  }
  if (!found.nii.empty()) return found.nii;
  if (!found.nii_gz.empty()) return found.nii_gz;
  return std::nullopt;
}

CaseFiles InaccessibleCase(const fs::path& dir, std::string_view id, BratsNaming naming,
                           std::string problem) {
  CaseFiles files;
  files.id = std::string(id);
  files.dir = dir;
  files.naming = naming;
  files.listed = false;
  files.problems.push_back(std::move(problem));
  return files;
}

// Lists the entries of `dir`, calling `visit(entry)` for each. Returns the error that stopped
// the listing, if any (entries seen before the error have been visited).
template <typename Visit>
std::error_code ListDirectory(const fs::path& dir, Visit&& visit) {
  std::error_code ec;
  fs::directory_iterator it(dir, fs::directory_options::none, ec);
  if (ec) return ec;
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) return ec;
    visit(*it);
  }
  return ec;
}

}  // namespace

std::string_view ModalityName(Modality modality) {
  return kCanonicalNames[static_cast<int>(modality)];
}

StatusOr<Modality> ParseModality(std::string_view name) {
  std::string lower = Lower(name);
  for (Modality m : kAllModalities) {
    int i = static_cast<int>(m);
    if (lower == kCanonicalNames[i] || lower == kBraTS2023Names[i]) return m;
  }
  return InvalidArgumentError("unknown modality '" + DisplayName(name) +
                              "' (expected flair, t1, t1ce or t2)");
}

StatusOr<std::vector<Modality>> ParseModalityList(std::string_view csv) {
  std::vector<Modality> out;
  size_t start = 0;
  while (true) {
    size_t comma = csv.find(',', start);
    std::string_view item =
        csv.substr(start, comma == std::string_view::npos ? csv.npos : comma - start);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.empty())
      return InvalidArgumentError("empty item in modality list '" + DisplayName(csv) + "'");
    ASSIGN_OR_RETURN(Modality m, ParseModality(item));
    if (std::find(out.begin(), out.end(), m) != out.end()) {
      return InvalidArgumentError("modality " + std::string(ModalityName(m)) + " is listed twice");
    }
    out.push_back(m);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

std::string_view BratsNamingName(BratsNaming naming) {
  switch (naming) {
    case BratsNaming::kBraTS2020:
      return "brats2020";
    case BratsNaming::kBraTS2021:
      return "brats2021";
    case BratsNaming::kBraTS2023:
      return "brats2023";
  }
  return "unknown";
}

std::optional<BratsNaming> NamingOfCaseId(std::string_view name) {
  for (std::string_view prefix : {"BraTS20_Training_", "BraTS20_Validation_"}) {
    if (HasPrefix(name, prefix) && AllDigits(name.substr(prefix.size()), 3)) {
      return BratsNaming::kBraTS2020;
    }
  }
  constexpr std::string_view k2021 = "BraTS2021_";
  if (HasPrefix(name, k2021) && AllDigits(name.substr(k2021.size()), 5)) {
    return BratsNaming::kBraTS2021;
  }
  constexpr std::string_view k2023 = "BraTS-GLI-";
  if (HasPrefix(name, k2023)) {
    std::string_view rest = name.substr(k2023.size());  // "00000-000"
    if (rest.size() == 9 && rest[5] == '-' && AllDigits(rest.substr(0, 5), 5) &&
        AllDigits(rest.substr(6), 3)) {
      return BratsNaming::kBraTS2023;
    }
  }
  return std::nullopt;
}

std::string ModalityFileStem(std::string_view case_id, BratsNaming naming, Modality modality) {
  int i = static_cast<int>(modality);
  std::string_view suffix =
      naming == BratsNaming::kBraTS2023 ? kBraTS2023Names[i] : kCanonicalNames[i];
  return std::string(case_id) + Separator(naming) + std::string(suffix);
}

std::string SegFileStem(std::string_view case_id, BratsNaming naming) {
  return std::string(case_id) + Separator(naming) + "seg";
}

CaseFiles DiscoverCaseFiles(const fs::path& case_dir, std::string_view case_id,
                            BratsNaming naming) {
  CaseFiles files;
  files.id = std::string(case_id);
  files.dir = case_dir;
  files.naming = naming;

  // Stems to look for: the four modalities, then the seg at index 4.
  std::array<std::string, 5> stems;
  for (Modality m : kAllModalities) {
    stems[static_cast<int>(m)] = ModalityFileStem(case_id, naming, m);
  }
  stems[4] = SegFileStem(case_id, naming);
  std::array<FoundFile, 5> found;
  std::vector<std::string> unrecognised;

  std::error_code ec = ListDirectory(case_dir, [&](const fs::directory_entry& entry) {
    std::string name = entry.path().filename().string();
    for (size_t k = 0; k < stems.size(); ++k) {
      if (name == stems[k] + ".nii") {
        found[k].nii = entry.path();
        return;
      }
      if (name == stems[k] + ".nii.gz") {
        found[k].nii_gz = entry.path();
        return;
      }
    }
    if (!name.empty() && name.front() != '.') unrecognised.push_back(name);
  });
  if (ec) {
    files.listed = false;
    files.problems.push_back("cannot list case folder: " + ec.message());
    return files;
  }

  for (Modality m : kAllModalities) {
    int i = static_cast<int>(m);
    files.images[i] = ChooseFile(found[i], ModalityName(m), files);
  }
  files.seg = ChooseFile(found[4], "seg", files);
  if (found[4].nii.empty() && found[4].nii_gz.empty()) {
    files.warnings.push_back("no seg (unlabelled case)");
  }
  std::sort(unrecognised.begin(), unrecognised.end());
  for (const std::string& name : unrecognised) {
    files.warnings.push_back("unrecognised file ignored: " + DisplayName(name));
  }
  return files;
}

StatusOr<DiscoveryResult> DiscoverCases(const fs::path& data_dir) {
  std::error_code ec;
  fs::file_status st = fs::status(data_dir, ec);
  if (ec || !fs::exists(st)) {
    if (!ec || ec == std::errc::no_such_file_or_directory || ec == std::errc::not_a_directory) {
      return NotFoundError("data directory " + DisplayPath(data_dir) + " does not exist");
    }
    return UnavailableError("cannot access data directory " + DisplayPath(data_dir) + ": " +
                            ec.message());
  }
  if (!fs::is_directory(st)) {
    return InvalidArgumentError(DisplayPath(data_dir) + " is not a directory");
  }

  DiscoveryResult result;
  // Canonical paths seen so far: a symlink back into the tree (`self -> .`) must not make the
  // same case appear twice, and must not be walked into.
  std::map<fs::path, std::string> seen_dirs;
  fs::path root_canonical = fs::canonical(data_dir, ec);
  if (ec) root_canonical.clear();

  auto add_case = [&](const fs::path& dir, const std::string& id, BratsNaming naming) {
    std::error_code case_ec;
    fs::file_status case_status = fs::status(dir, case_ec);
    if (case_ec) {
      result.cases.push_back(
          InaccessibleCase(dir, id, naming, "cannot open case folder: " + case_ec.message()));
      return;
    }
    if (!fs::is_directory(case_status)) {
      result.cases.push_back(InaccessibleCase(dir, id, naming, "case entry is not a folder"));
      return;
    }
    fs::path canonical = fs::canonical(dir, case_ec);
    if (!case_ec) {
      auto [it, inserted] = seen_dirs.emplace(canonical, DisplayPath(dir));
      if (!inserted) {
        result.warnings.push_back(DisplayPath(dir) + " is the same folder as " + it->second +
                                  "; counted once");
        return;
      }
    }
    result.cases.push_back(DiscoverCaseFiles(dir, id, naming));
  };

  // Candidates are collected first and handled in sorted order, so which of two names for one
  // folder is kept does not depend on the order the filesystem lists them in.
  struct Candidate {
    fs::path dir;
    std::string id;
    BratsNaming naming;
  };
  std::vector<Candidate> candidates;
  std::vector<fs::path> subdirs;
  ec = ListDirectory(data_dir, [&](const fs::directory_entry& entry) {
    std::string name = entry.path().filename().string();
    if (auto naming = NamingOfCaseId(name)) {
      candidates.push_back({entry.path(), name, *naming});
      return;
    }
    std::error_code entry_ec;
    fs::file_status entry_status = entry.status(entry_ec);
    if (entry_ec) {
      // Broken links and loops among non-case entries are only worth a note.
      std::error_code link_ec;
      if (entry.is_symlink(link_ec)) {
        result.warnings.push_back("skipped " + DisplayName(name) + ": " + entry_ec.message());
      }
      return;
    }
    if (fs::is_directory(entry_status)) subdirs.push_back(entry.path());
  });
  if (ec) {
    Status error =
        ec == std::errc::permission_denied
            ? PermissionDeniedError("cannot list " + DisplayPath(data_dir) + ": " + ec.message())
            : UnavailableError("cannot list " + DisplayPath(data_dir) + ": " + ec.message());
    return error;
  }

  // One extra level: a dataset root such as BraTS2020_TrainingData/MICCAI_BraTS2020_TrainingData.
  std::sort(subdirs.begin(), subdirs.end());
  for (const fs::path& sub : subdirs) {
    std::error_code sub_ec;
    fs::path canonical = fs::canonical(sub, sub_ec);
    if (!sub_ec && !root_canonical.empty() && canonical == root_canonical) continue;
    sub_ec = ListDirectory(sub, [&](const fs::directory_entry& entry) {
      std::string name = entry.path().filename().string();
      if (auto naming = NamingOfCaseId(name)) candidates.push_back({entry.path(), name, *naming});
    });
    if (sub_ec) {
      result.warnings.push_back("cannot list " + DisplayPath(sub) + ": " + sub_ec.message());
    }
  }
  std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
    return a.id != b.id ? a.id < b.id : a.dir < b.dir;
  });
  for (const Candidate& c : candidates) add_case(c.dir, c.id, c.naming);

  std::sort(result.cases.begin(), result.cases.end(), [](const CaseFiles& a, const CaseFiles& b) {
    return a.id != b.id ? a.id < b.id : a.dir < b.dir;
  });
  // The same id in two different folders: neither copy is trusted.
  for (size_t i = 0; i + 1 < result.cases.size(); ++i) {
    CaseFiles& a = result.cases[i];
    CaseFiles& b = result.cases[i + 1];
    if (a.id != b.id) continue;
    a.problems.push_back("duplicate case id, also at " + DisplayPath(b.dir));
    b.problems.push_back("duplicate case id, also at " + DisplayPath(a.dir));
  }
  return result;
}

std::string DisplayName(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  char buf[8];
  for (size_t i = 0; i < raw.size();) {
    unsigned char c = static_cast<unsigned char>(raw[i]);
    if (c >= 0x80) {
      size_t len = Utf8SequenceLength(raw, i);
      if (len > 0) {
        out.append(raw.substr(i, len));
        i += len;
        continue;
      }
    }
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c >= 0x7F) {
      std::snprintf(buf, sizeof(buf), "\\x%02X", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
    ++i;
  }
  return out;
}

std::string DisplayPath(const fs::path& path) { return DisplayName(path.string()); }

}  // namespace clisc
