// The wire protocol version every Envelope carries. Bump it when a message type is added or a
// field changes meaning (see the rules at the top of schemas/clisc.proto); peers with different
// versions refuse each other with an error naming both.
#pragma once

#include <cstdint>

namespace clisc {

inline constexpr uint32_t kProtocolVersion = 1;

}  // namespace clisc
