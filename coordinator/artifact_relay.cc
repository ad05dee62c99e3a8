#include "coordinator/artifact_relay.h"

#include <algorithm>

#include "common/wire/wire_error.h"

namespace clisc {
namespace {

Status NoStore() {
  return FailedPreconditionError(
      "this coordinator has no artifact store (start it with --artifact-root) and cannot "
      "transfer artifacts");
}

}  // namespace

wire::ArtifactChunk ArtifactRelay::Fetch(const wire::ArtifactFetch& fetch) const {
  wire::ArtifactChunk chunk;
  chunk.set_path(fetch.path());
  chunk.set_offset(fetch.offset());
  if (!store_) {
    *chunk.mutable_error() = ToWireError(NoStore());
    return chunk;
  }
  const uint64_t max_bytes =
      std::min<uint64_t>(fetch.max_bytes(), limits_.max_chunk_data_bytes());
  StatusOr<ArtifactChunkData> data = store_->ReadChunk(fetch.path(), fetch.offset(), max_bytes);
  if (!data.ok()) {
    *chunk.mutable_error() = ToWireError(data.status());
    return chunk;
  }
  chunk.set_total_size(data->total_size);
  chunk.set_last(data->last);
  if (data->last) {
    // The checksum of what is stored now, so the fetcher detects a file that changed under it.
    StatusOr<ArtifactRef> ref = store_->Describe(fetch.path());
    if (!ref.ok()) {
      chunk.clear_total_size();
      chunk.clear_last();
      *chunk.mutable_error() = ToWireError(ref.status());
      return chunk;
    }
    chunk.set_sha256(ref->sha256);
  }
  chunk.set_data(std::move(data->data));
  return chunk;
}

wire::ArtifactPutAck ArtifactRelay::Put(std::string_view peer, const wire::ArtifactPut& put) {
  wire::ArtifactPutAck ack;
  ack.set_path(put.path());
  if (!store_) {
    *ack.mutable_error() = ToWireError(NoStore());
    return ack;
  }
  const auto key = std::make_pair(std::string(peer), put.path());
  auto it = writers_.find(key);
  if (put.offset() == 0 && it != writers_.end()) {
    // The sender started over (it reconnected or retried): drop the partial file.
    writers_.erase(it);
    it = writers_.end();
  }
  if (it == writers_.end()) {
    if (put.offset() != 0) {
      ack.set_next_offset(0);
      *ack.mutable_error() = ToWireError(FailedPreconditionError(
          "no transfer of " + put.path() + " in progress; start again at offset 0"));
      return ack;
    }
    StatusOr<ChunkedWriter> writer = store_->BeginChunkedWrite(put.path(), put.total_size());
    if (!writer.ok()) {
      *ack.mutable_error() = ToWireError(writer.status());
      return ack;
    }
    it = writers_.emplace(key, std::move(*writer)).first;
  }
  ChunkedWriter& writer = it->second;
  if (put.total_size() != writer.total_size()) {
    *ack.mutable_error() = ToWireError(InvalidArgumentError(
        "total_size changed during the transfer of " + put.path()));
    writers_.erase(it);
    return ack;
  }
  if (Status appended = writer.Append(put.offset(), put.data()); !appended.ok()) {
    // Out-of-order chunk: tell the sender where to resume.
    ack.set_next_offset(writer.bytes_written());
    *ack.mutable_error() = ToWireError(appended);
    return ack;
  }
  ack.set_next_offset(writer.bytes_written());
  if (put.last()) {
    StatusOr<ArtifactRef> committed = writer.Commit(put.sha256());
    writers_.erase(it);
    if (!committed.ok()) {
      ack.set_next_offset(0);
      *ack.mutable_error() = ToWireError(committed.status());
      return ack;
    }
    ack.set_committed(true);
  }
  return ack;
}

void ArtifactRelay::DropPeer(std::string_view peer) {
  for (auto it = writers_.begin(); it != writers_.end();) {
    it = it->first.first == peer ? writers_.erase(it) : std::next(it);
  }
}

}  // namespace clisc
