// CURVE key pairs and the files that hold them: generation, `.key` files (written 0600 from the
// start) and `.pub` files, and allow-lists of worker public keys.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/atomic_file.h"
#include "common/logging.h"
#include "common/wire/curve_auth.h"
#include "common/wire/curve_key_text.h"

namespace clisc {
namespace curve_internal {

Status RequireCurve() {
  if (zmq_has("curve")) return OkStatus();
  int major = 0, minor = 0, patch = 0;
  zmq_version(&major, &minor, &patch);
  return FailedPreconditionError(
      "the libzmq in use (" + std::to_string(major) + "." + std::to_string(minor) + "." +
      std::to_string(patch) +
      ") was built without CURVE security (zmq_has(\"curve\") is false); install a libzmq built "
      "with libsodium or its bundled tweetnacl");
}

namespace {

constexpr std::string_view kZ85Alphabet =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

// Why `key` is not a Z85-encoded CURVE key, or "" when it is one. Never quotes the key: it may be a
// secret.
std::string Z85KeyProblem(std::string_view key) {
  if (key.size() != kZ85KeyLength) {
    return "expected " + std::to_string(kZ85KeyLength) + " Z85 characters, got " +
           std::to_string(key.size());
  }
  for (size_t i = 0; i < key.size(); ++i) {
    if (kZ85Alphabet.find(key[i]) == std::string_view::npos) {
      return "character " + std::to_string(i + 1) + " is not in the Z85 alphabet";
    }
  }
  uint8_t decoded[kBinaryKeyLength];
  const std::string text(key);
  if (zmq_z85_decode(decoded, text.c_str()) == nullptr) {
    return "does not decode to " + std::to_string(kBinaryKeyLength) + " bytes";
  }
  return "";
}

}  // namespace

Status ValidateZ85Key(std::string_view key, std::string_view what) {
  std::string problem = Z85KeyProblem(key);
  if (problem.empty()) return OkStatus();
  return InvalidArgumentError(std::string(what) + " is not a valid CURVE key: " + problem);
}

std::string Z85Encode(std::string_view binary_key) {
  char text[kZ85KeyLength + 1];
  zmq_z85_encode(text, reinterpret_cast<const uint8_t*>(binary_key.data()), binary_key.size());
  return std::string(text, kZ85KeyLength);
}

}  // namespace curve_internal

namespace {

namespace fs = std::filesystem;
using namespace curve_internal;

StatusOr<std::string> PublicKeyOf(const std::string& secret_z85) {
  char public_z85[kZ85KeyLength + 1];
  if (zmq_curve_public(public_z85, secret_z85.c_str()) != 0) {
    return InvalidArgumentError(std::string("zmq_curve_public: ") + zmq_strerror(zmq_errno()));
  }
  return std::string(public_z85, kZ85KeyLength);
}

// ---- Key and allow-list files. ----

std::string_view Trim(std::string_view s) {
  const char* space = " \t\r\n";
  const size_t first = s.find_first_not_of(space);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(space) - first + 1);
}

bool IsBareKey(std::string_view line) {
  return line.size() == kZ85KeyLength && std::all_of(line.begin(), line.end(), [](char c) {
           return kZ85Alphabet.find(c) != std::string_view::npos;
         });
}

// One "name = value" line of a key file.
struct KeyEntry {
  std::string name;
  std::string value;
  int line = 0;
};

std::string Where(const fs::path& path, int line) {
  return path.string() + ":" + std::to_string(line);
}

StatusOr<std::vector<std::string>> ReadLines(const fs::path& path, std::string_view what) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (ec || !fs::exists(status)) {
    return NotFoundError(std::string(what) + " " + path.string() + " does not exist");
  }
  if (!fs::is_regular_file(status)) {
    return InvalidArgumentError(std::string(what) + " " + path.string() + " is not a regular file");
  }
  std::ifstream in(path);
  if (!in) {
    return PermissionDeniedError("cannot read " + std::string(what) + " " + path.string() + ": " +
                                 std::strerror(errno));
  }
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(std::move(line));
  if (in.bad()) {
    return UnavailableError("error reading " + std::string(what) + " " + path.string());
  }
  return lines;
}

// Parses a "name = value" line; keys themselves may contain '=' (it is a Z85 character), so the
// line is split at its first '='.
StatusOr<KeyEntry> ParseEntry(const fs::path& path, int line_number, std::string_view line) {
  const size_t eq = line.find('=');
  if (eq == std::string_view::npos) {
    return InvalidArgumentError(Where(path, line_number) +
                                ": expected 'public = <key>' or 'secret = <key>'");
  }
  KeyEntry entry{std::string(Trim(line.substr(0, eq))), std::string(Trim(line.substr(eq + 1))),
                 line_number};
  if (entry.name != "public" && entry.name != "secret") {
    return InvalidArgumentError(Where(path, line_number) + ": unknown entry '" + entry.name +
                                "' (expected 'public' or 'secret')");
  }
  return entry;
}

Status CheckSecretFileMode(const fs::path& path) {
  struct stat info;
  if (::stat(path.c_str(), &info) != 0) {
    return UnavailableError("cannot stat " + path.string() + ": " + std::strerror(errno));
  }
  if ((info.st_mode & 077) == 0) return OkStatus();
  char mode[8];
  std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(info.st_mode & 07777));
  return PermissionDeniedError("secret key file " + path.string() +
                               " is accessible by group or others (mode " + mode +
                               "); refusing to use it. Run: chmod 600 " + path.string());
}

Status ParseAllowListFile(const fs::path& path, std::set<std::string>& keys) {
  ASSIGN_OR_RETURN(std::vector<std::string> lines, ReadLines(path, "allow-list file"));
  for (size_t i = 0; i < lines.size(); ++i) {
    const int line_number = static_cast<int>(i) + 1;
    const std::string_view line = Trim(lines[i]);
    // A bare key is checked before comments: '#' is itself a Z85 character.
    if (IsBareKey(line)) {
      RETURN_IF_ERROR(ValidateZ85Key(line, Where(path, line_number) + ": public key"));
      keys.emplace(line);
      continue;
    }
    if (line.empty() || line.front() == '#') continue;
    ASSIGN_OR_RETURN(KeyEntry entry, ParseEntry(path, line_number, line));
    if (entry.name == "secret") {
      return InvalidArgumentError(Where(path, line_number) +
                                  ": holds a secret key; an allow-list takes public keys only "
                                  "(list the .pub files, never the .key files)");
    }
    RETURN_IF_ERROR(ValidateZ85Key(entry.value, Where(path, line_number) + ": public key"));
    keys.insert(std::move(entry.value));
  }
  return OkStatus();
}

// Writes a file that must never be readable by others, not even while it is being written: it is
// created 0600 (whatever the umask) under a temporary name and renamed into place.
Status WritePrivateFileAtomically(const fs::path& file, std::string_view content) {
  fs::path tmp = file;
  tmp += ".tmp." + std::to_string(::getpid());
  ::unlink(tmp.c_str());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return UnavailableError("cannot create " + tmp.string() + ": " + std::strerror(errno));
  }
  auto fail = [&](std::string what) {
    const std::string error = std::strerror(errno);
    ::close(fd);
    ::unlink(tmp.c_str());
    return UnavailableError(what + " " + tmp.string() + ": " + error);
  };
  if (::fchmod(fd, 0600) != 0) return fail("cannot chmod");
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail("cannot write");
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) return fail("cannot flush");
  if (::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return UnavailableError("cannot close " + tmp.string() + ": " + std::strerror(errno));
  }
  if (::rename(tmp.c_str(), file.c_str()) != 0) {
    const std::string error = std::strerror(errno);
    ::unlink(tmp.c_str());
    return UnavailableError("cannot rename onto " + file.string() + ": " + error);
  }
  return OkStatus();
}

}  // namespace

StatusOr<CurveKeyPair> GenerateCurveKeyPair() {
  RETURN_IF_ERROR(RequireCurve());
  char public_z85[kZ85KeyLength + 1];
  char secret_z85[kZ85KeyLength + 1];
  if (zmq_curve_keypair(public_z85, secret_z85) != 0) {
    return InternalError(std::string("zmq_curve_keypair: ") + zmq_strerror(zmq_errno()));
  }
  CurveKeyPair keys{std::string(public_z85, kZ85KeyLength), std::string(secret_z85, kZ85KeyLength)};
  // The buffers held a secret; do not leave it on the stack.
  std::memset(secret_z85, 0, sizeof(secret_z85));
  return keys;
}

Status WriteCurveKeyFiles(const fs::path& stem, const CurveKeyPair& keys, bool overwrite) {
  RETURN_IF_ERROR(RequireCurve());
  RETURN_IF_ERROR(ValidateZ85Key(keys.public_z85, "public key"));
  RETURN_IF_ERROR(ValidateZ85Key(keys.secret_z85, "secret key"));
  ASSIGN_OR_RETURN(std::string derived, PublicKeyOf(keys.secret_z85));
  if (derived != keys.public_z85) {
    return InvalidArgumentError("the public key does not belong to the secret key");
  }
  fs::path key_path = stem;
  key_path += ".key";
  fs::path pub_path = stem;
  pub_path += ".pub";
  if (!overwrite) {
    for (const fs::path& path : {key_path, pub_path}) {
      std::error_code ec;
      if (fs::exists(fs::symlink_status(path, ec))) {
        return AlreadyExistsError(path.string() + " already exists; not overwriting it");
      }
    }
  }
  if (stem.has_parent_path()) {
    std::error_code ec;
    fs::create_directories(stem.parent_path(), ec);
    if (ec) {
      return UnavailableError("cannot create directory " + stem.parent_path().string() + ": " +
                              ec.message());
    }
  }
  const std::string pub_name = pub_path.filename().string();
  RETURN_IF_ERROR(WritePrivateFileAtomically(
      key_path, "# clisc CurveZMQ key pair. Keep this file private (mode 0600); share " + pub_name +
                    " instead.\npublic = " + keys.public_z85 + "\nsecret = " + keys.secret_z85 +
                    "\n"));
  return WriteFileAtomically(
      pub_path, "# clisc CurveZMQ public key; safe to share.\npublic = " + keys.public_z85 + "\n");
}

StatusOr<CurveKeyPair> ReadCurveKeyFile(const fs::path& path) {
  RETURN_IF_ERROR(RequireCurve());
  ASSIGN_OR_RETURN(std::vector<std::string> lines, ReadLines(path, "CURVE key file"));
  std::vector<KeyEntry> entries;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string_view line = Trim(lines[i]);
    KeyEntry entry;
    // A bare key (what `clisc keygen` prints) is a public key; checked before comments because
    // '#' is a Z85 character.
    if (IsBareKey(line)) {
      entry = KeyEntry{"public", std::string(line), static_cast<int>(i) + 1};
    } else if (line.empty() || line.front() == '#') {
      continue;
    } else {
      ASSIGN_OR_RETURN(entry, ParseEntry(path, static_cast<int>(i) + 1, line));
    }
    for (const KeyEntry& seen : entries) {
      if (seen.name == entry.name) {
        return InvalidArgumentError(Where(path, entry.line) + ": second '" + entry.name +
                                    "' entry (the first is on line " + std::to_string(seen.line) +
                                    ")");
      }
    }
    entries.push_back(std::move(entry));
  }
  CurveKeyPair keys;
  const KeyEntry* secret = nullptr;
  for (const KeyEntry& entry : entries) {
    if (entry.name == "secret") secret = &entry;
  }
  // Checked before the secret is even validated, so the warning comes first.
  if (secret != nullptr) RETURN_IF_ERROR(CheckSecretFileMode(path));
  for (const KeyEntry& entry : entries) {
    RETURN_IF_ERROR(
        ValidateZ85Key(entry.value, Where(path, entry.line) + ": " + entry.name + " key"));
    (entry.name == "public" ? keys.public_z85 : keys.secret_z85) = entry.value;
  }
  if (entries.empty()) {
    return InvalidArgumentError("CURVE key file " + path.string() +
                                " holds no key (expected a 'public = <key>' line)");
  }
  if (secret != nullptr) {
    ASSIGN_OR_RETURN(std::string derived, PublicKeyOf(keys.secret_z85));
    if (keys.public_z85.empty()) {
      keys.public_z85 = std::move(derived);
    } else if (derived != keys.public_z85) {
      return InvalidArgumentError(path.string() +
                                  ": the public key does not belong to the secret key");
    }
  }
  return keys;
}

StatusOr<std::set<std::string>> ReadCurveAllowList(const fs::path& path) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (ec || !fs::exists(status)) {
    return NotFoundError("CURVE allow-list " + path.string() + " does not exist");
  }
  std::set<std::string> keys;
  if (fs::is_directory(status)) {
    std::vector<fs::path> files;
    for (fs::directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
      if (it->path().extension() == ".pub" && it->is_regular_file()) files.push_back(it->path());
    }
    if (ec) {
      return UnavailableError("cannot list allow-list directory " + path.string() + ": " +
                              ec.message());
    }
    if (files.empty()) {
      return InvalidArgumentError("CURVE allow-list directory " + path.string() +
                                  " holds no .pub files");
    }
    std::sort(files.begin(), files.end());
    for (const fs::path& file : files) RETURN_IF_ERROR(ParseAllowListFile(file, keys));
  } else {
    RETURN_IF_ERROR(ParseAllowListFile(path, keys));
  }
  if (keys.empty()) {
    return InvalidArgumentError("CURVE allow-list " + path.string() + " holds no public keys");
  }
  return keys;
}

}  // namespace clisc
