// Whole-file writes that a crash can never leave half done: a reader sees the old file or the
// new one. Used for small text outputs (split CSVs, crop records, manifests); volumes have their
// own atomic path in volume_io, and run artifacts go through ArtifactStore.
#pragma once

#include <filesystem>
#include <string_view>

#include "common/status.h"

namespace clisc {

// Writes `content` to a uniquely named temporary file beside `file`, fsyncs it and renames it
// over `file`. The temporary is removed on any failure.
Status WriteFileAtomically(const std::filesystem::path& file, std::string_view content);

}  // namespace clisc
