// Conversion between the project's Status and the wire's Error (same code numbering), used for
// task failures in TaskResult and refusals in acknowledgements.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/status.h"
#include "schemas/clisc.pb.h"

namespace clisc {

// A non-OK status as a wire error; `retryable` follows Status::IsRetryable(). Messages are cut
// to fit the wire's text limit
// and made valid UTF-8.
wire::Error ToWireError(const Status& status);
// Text for a wire string field: protobuf refuses a frame whose string fields hold invalid UTF-8,
// so one stray Latin-1 byte in an error message would lose the whole TaskResult. Malformed bytes
// become '?', and the result is cut to at most `max_bytes` without splitting a character.
std::string SanitizeWireText(std::string_view text, size_t max_bytes);

// Never OK: an OK or unknown code from a peer becomes UNKNOWN, so a received error is never
// mistaken for success.
Status FromWireError(const wire::Error& error);

}  // namespace clisc
