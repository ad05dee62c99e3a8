// Limits applied to every incoming frame. The defaults suit the coordinator and the workers;
// tests shrink them to exercise the edges cheaply.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/wire/protocol_version.h"

namespace clisc {

struct FrameLimits {
  // The version this side speaks; anything else is refused.
  uint32_t protocol_version = kProtocolVersion;

  // Hard cap checked before parsing (and the limit for artifact chunks): a peer cannot make
  // us allocate more than this per frame. ZeroMQ's ZMQ_MAXMSGSIZE should be set to it too.
  size_t max_frame_bytes = size_t{64} << 20;
  // Status replies and run submissions carry JSON/YAML documents, task assignments the inputs
  // of global tasks.
  size_t max_bulk_frame_bytes = size_t{16} << 20;
  // Everything else: session, task and control messages.
  size_t max_control_frame_bytes = size_t{1} << 20;
  // Room left in a chunk frame for the envelope and the chunk's other fields.
  size_t chunk_overhead_bytes = size_t{64} << 10;

  size_t max_id_bytes = 256;     // worker, task, case, run ids
  size_t max_name_bytes = 256;   // roles, stages, devices, artifact and metric names
  size_t max_text_bytes = 4096;  // human-readable messages and reasons
  size_t max_roles = 32;
  // Inputs, outputs or expected outputs per task. A global task (training, a reduce) reads a few
  // artifacts of every case, so this bounds the dataset size: 65536 refs stay under the bulk
  // frame limit that task assignments are checked against.
  size_t max_artifacts = 65536;
  size_t max_metrics = 256;
  size_t max_leases = 1024;  // running leases listed in one heartbeat
  uint32_t max_slots = 1024;

  // Largest data payload a chunk may carry.
  size_t max_chunk_data_bytes() const {
    return max_frame_bytes > chunk_overhead_bytes ? max_frame_bytes - chunk_overhead_bytes : 0;
  }
};

}  // namespace clisc
