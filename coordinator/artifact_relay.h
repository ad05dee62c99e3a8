// Artifact transfer through the coordinator, for workers without the shared filesystem: serves
// ArtifactFetch from the store in chunks and assembles ArtifactPut chunks into atomic writes
// that are published only when the whole file arrived with the announced checksum.
//
// A put is keyed by the sending connection and the path, so two workers writing the same output
// (a stale attempt and its retry) never interleave their bytes; each publishes a whole file.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "common/artifact_store.h"
#include "common/wire/frame_limits.h"
#include "schemas/clisc.pb.h"

namespace clisc {

class ArtifactRelay {
 public:
  // `store` may be empty: the coordinator then refuses transfers with a clear error.
  ArtifactRelay(std::optional<ArtifactStore> store, const FrameLimits& limits)
      : store_(std::move(store)), limits_(limits) {}

  wire::ArtifactChunk Fetch(const wire::ArtifactFetch& fetch) const;
  wire::ArtifactPutAck Put(std::string_view peer, const wire::ArtifactPut& put);
  // A connection went away: its unfinished puts are dropped (their temporary files removed).
  void DropPeer(std::string_view peer);

  size_t pending_puts() const { return writers_.size(); }
  const std::optional<ArtifactStore>& store() const { return store_; }

 private:
  std::optional<ArtifactStore> store_;
  FrameLimits limits_;
  std::map<std::pair<std::string, std::string>, ChunkedWriter> writers_;
};

}  // namespace clisc
