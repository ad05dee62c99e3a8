// CurveZMQ security for the coordinator's socket: key pairs (`clisc keygen`), an allow-list of
// worker public keys, and the ZAP handler that enforces it. With CURVE on, a peer whose key is
// not on the list fails the handshake: it cannot send a single message, so it can neither
// register nor receive work. Keys are Z85 text (40 characters), as libzmq prints them.
//
// Key files: `<name>.key` holds "public = <z85>" and "secret = <z85>" lines and is created mode
// 0600; `<name>.pub` holds only the public line and may be shared. A file holding a secret key
// that group or others can access is refused. Allow-list files have one public key per line
// (optionally "public = <z85>"); a line starting with '#' is a comment, unless the whole line is
// one 40-character key ('#' is a Z85 character). Errors name the file and line and never quote a
// secret.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "common/status.h"
#include "common/wire/zmq_socket.h"

namespace clisc {

struct CurveKeyPair {
  std::string public_z85;
  std::string secret_z85;
};

StatusOr<CurveKeyPair> GenerateCurveKeyPair();
// Writes `<stem>.key` (0600) and `<stem>.pub`; refuses to overwrite unless `overwrite`.
Status WriteCurveKeyFiles(const std::filesystem::path& stem, const CurveKeyPair& keys,
                          bool overwrite = false);
// Reads a `.key` file (both keys) or a `.pub` file (public only; secret_z85 empty). A line that
// is just a key counts as "public = <key>", so a pasted `clisc keygen` output works as a .pub.
StatusOr<CurveKeyPair> ReadCurveKeyFile(const std::filesystem::path& path);
// A file or a directory of `.pub` files (other files in the directory are ignored). An allow-list
// that holds no key is an error, as is a secret key in it.
StatusOr<std::set<std::string>> ReadCurveAllowList(const std::filesystem::path& path);

// Socket setup, for ZmqSocketOptions::configure (before bind/connect). The server also sets a ZAP
// domain and, where libzmq has the (draft) option, ZMQ_ZAP_ENFORCE_DOMAIN: a CURVE server whose
// context runs no CurveAuthenticator then refuses every client instead of admitting any key.
Status EnableCurveServer(void* raw_socket, const CurveKeyPair& server_keys);
Status EnableCurveClient(void* raw_socket, const CurveKeyPair& client_keys,
                         std::string_view server_public_z85);
// The client setup from key files (the client's .key, the server's .pub or .key), ready for
// ZmqSocketOptions::configure; `flag` names the client key option in error messages.
StatusOr<std::function<Status(void*)>> CurveClientFromFiles(
    const std::filesystem::path& server_key_file, const std::filesystem::path& client_key_file,
    std::string_view flag = "--curve-key");

// Answers ZAP requests (RFC 27) for every socket of `context` with a CURVE server: allows exactly
// the listed keys and denies everything else (other mechanisms included). The user id of an
// allowed peer is its Z85 public key (the "User-Id" property of its messages). Denials are logged
// once per key, then at most once a minute with a count. Start it before the server socket binds
// and stop it after that socket is closed; only one may run per context (ALREADY_EXISTS). It
// keeps `context` alive; the destructor stops it.
class CurveAuthenticator {
 public:
  static StatusOr<std::unique_ptr<CurveAuthenticator>> Start(
      std::shared_ptr<ZmqContext> context, std::set<std::string> allowed_public_keys);
  ~CurveAuthenticator();

  uint64_t allowed() const;
  uint64_t denied() const;
  void Stop();

 private:
  class Impl;
  explicit CurveAuthenticator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace clisc
