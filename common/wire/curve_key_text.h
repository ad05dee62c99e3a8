// Z85 key helpers shared by the key-file code (curve_keys.cc) and the socket and ZAP code
// (curve_auth.cc). Internal to common/wire.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/status.h"

namespace clisc::curve_internal {

inline constexpr size_t kZ85KeyLength = 40;
inline constexpr size_t kBinaryKeyLength = 32;

// FAILED_PRECONDITION when the libzmq in use was built without CURVE.
Status RequireCurve();
// INVALID_ARGUMENT naming `what` (never quoting the key: it may be a secret) unless `key` is a
// Z85-encoded CURVE key.
Status ValidateZ85Key(std::string_view key, std::string_view what);
// The Z85 text of a 32-byte binary key.
std::string Z85Encode(std::string_view binary_key);

}  // namespace clisc::curve_internal
