// One valid envelope of every message type: the seed corpus of the fuzzer and the starting
// point of the unit tests' mutations and rule tests. Header-only so that the one-file unit test
// targets can use it.
#pragma once

#include <string>
#include <vector>

#include "common/sha256.h"
#include "common/wire/frame_codec.h"
#include "schemas/clisc.pb.h"

namespace clisc::testing {

inline void FillRef(wire::ArtifactRef* ref, const std::string& name, const std::string& path) {
  ref->set_name(name);
  ref->set_path(path);
  ref->set_sha256(Sha256Hex(path));
  ref->set_size(1234);
}

inline wire::Envelope SampleEnvelope(wire::Envelope::BodyCase body) {
  wire::Envelope e = NewEnvelope(42);
  switch (body) {
    case wire::Envelope::kHello: {
      wire::Hello* m = e.mutable_hello();
      m->set_worker_id("node7-gpu2");
      m->set_protocol_version(kProtocolVersion);
      m->add_roles("sam");
      m->add_roles("trainer");
      m->set_device("cuda:2");
      m->set_slots(1);
      m->set_hostname("node7");
      m->set_pid(4242);
      m->mutable_capabilities()->set_shared_filesystem(true);
      m->mutable_capabilities()->set_artifact_root("/scratch/run1");
      break;
    }
    case wire::Envelope::kHelloAck: {
      wire::HelloAck* m = e.mutable_hello_ack();
      m->set_coordinator_id("coord-1");
      m->set_protocol_version(kProtocolVersion);
      m->set_heartbeat_interval_ms(1000);
      m->set_heartbeat_liveness(3);
      m->set_max_frame_bytes(64 << 20);
      m->set_run_id("run-1");
      break;
    }
    case wire::Envelope::kRefused:
      e.mutable_refused()->set_code(wire::Refused::PROTOCOL_VERSION);
      e.mutable_refused()->set_reason("peer speaks protocol version 2");
      e.mutable_refused()->set_supported_protocol_version(kProtocolVersion);
      break;
    case wire::Envelope::kHeartbeat: {
      wire::Heartbeat* m = e.mutable_heartbeat();
      m->set_sender_id("node7-gpu2");
      wire::LeaseRef* lease = m->add_running();
      lease->set_task_id("t-17");
      lease->set_attempt(2);
      m->set_load(1.0);
      break;
    }
    case wire::Envelope::kDisconnect:
      e.mutable_disconnect()->set_sender_id("node7-gpu2");
      e.mutable_disconnect()->set_reason("SIGTERM");
      e.mutable_disconnect()->set_draining(true);
      break;
    case wire::Envelope::kTaskAssign: {
      wire::TaskAssign* m = e.mutable_task_assign();
      m->set_task_id("t-17");
      m->set_attempt(1);
      m->set_role("sam");
      m->set_stage("sam_refine");
      m->set_case_id("BraTS20_Training_001");
      m->set_round(1);
      m->set_params_json(R"({"box_margin":5,"points":{"fg":3}})");
      FillRef(m->add_inputs(), "t1", "cases/001/t1.nii.gz");
      FillRef(m->add_inputs(), "cam_mask", "round1/001/cam.nii");
      wire::ExpectedOutput* out = m->add_expected_outputs();
      out->set_name("label");
      out->set_path("round1/001/sam.nii.gz");
      m->set_deadline_ms(600000);
      m->set_run_id("run-1");
      break;
    }
    case wire::Envelope::kTaskCancel:
      e.mutable_task_cancel()->set_task_id("t-17");
      e.mutable_task_cancel()->set_attempt(1);
      e.mutable_task_cancel()->set_reason("run cancelled");
      break;
    case wire::Envelope::kProgress: {
      wire::Progress* m = e.mutable_progress();
      m->set_task_id("t-17");
      m->set_attempt(1);
      m->set_fraction(0.25);
      m->set_message("epoch 3/12");
      (*m->mutable_metrics())["loss"] = 0.31;
      (*m->mutable_metrics())["lr"] = 1e-4;
      break;
    }
    case wire::Envelope::kTaskResult: {
      wire::TaskResult* m = e.mutable_task_result();
      m->set_task_id("t-17");
      m->set_attempt(1);
      m->set_ok(true);
      FillRef(m->add_outputs(), "label", "round1/001/sam.nii.gz");
      (*m->mutable_metrics())["dice"] = 0.87;
      m->set_duration_ms(5300);
      break;
    }
    case wire::Envelope::kArtifactFetch:
      e.mutable_artifact_fetch()->set_path("cases/001/t1.nii.gz");
      e.mutable_artifact_fetch()->set_offset(0);
      e.mutable_artifact_fetch()->set_max_bytes(1 << 20);
      e.mutable_artifact_fetch()->set_task_id("t-17");
      e.mutable_artifact_fetch()->set_attempt(1);
      break;
    case wire::Envelope::kArtifactChunk: {
      wire::ArtifactChunk* m = e.mutable_artifact_chunk();
      m->set_path("cases/001/t1.nii.gz");
      m->set_offset(10);
      m->set_total_size(16);
      m->set_data("abcdef");
      m->set_sha256(Sha256Hex("0123456789abcdef"));
      m->set_last(true);
      break;
    }
    case wire::Envelope::kArtifactPut: {
      wire::ArtifactPut* m = e.mutable_artifact_put();
      m->set_path("round1/001/sam.nii.gz");
      m->set_offset(0);
      m->set_total_size(8);
      m->set_data("abcd");
      m->set_task_id("t-17");
      m->set_attempt(1);
      break;
    }
    case wire::Envelope::kArtifactPutAck:
      e.mutable_artifact_put_ack()->set_path("round1/001/sam.nii.gz");
      e.mutable_artifact_put_ack()->set_next_offset(4);
      break;
    case wire::Envelope::kStatusRequest:
      e.mutable_status_request()->set_run_id("run-1");
      e.mutable_status_request()->set_include_tasks(true);
      break;
    case wire::Envelope::kStatusReply:
      e.mutable_status_reply()->set_json(R"({"run":"run-1","tasks":{"pending":3}})");
      break;
    case wire::Envelope::kSubmitRun:
      e.mutable_submit_run()->set_config_yaml("pipeline:\n  rounds: 2\n");
      e.mutable_submit_run()->set_dataset_dir("/data/brats2020");
      break;
    case wire::Envelope::kSubmitRunAck:
      e.mutable_submit_run_ack()->set_run_id("run-1");
      e.mutable_submit_run_ack()->set_accepted(true);
      break;
    case wire::Envelope::kCancelRequest:
      e.mutable_cancel_request()->set_run_id("run-1");
      e.mutable_cancel_request()->set_reason("operator");
      break;
    case wire::Envelope::kCancelAck:
      e.mutable_cancel_ack()->set_accepted(true);
      e.mutable_cancel_ack()->set_cancelled_tasks(12);
      break;
    case wire::Envelope::BODY_NOT_SET:
      break;
  }
  return e;
}

// Every body type the schema defines, found by reflection so that a new message type is
// covered (and flagged by the tests until it gets a sample) without editing a list.
inline std::vector<wire::Envelope::BodyCase> AllBodyCases() {
  std::vector<wire::Envelope::BodyCase> cases;
  const auto* oneof = wire::Envelope::descriptor()->FindOneofByName("body");
  for (int i = 0; i < oneof->field_count(); ++i) {
    cases.push_back(static_cast<wire::Envelope::BodyCase>(oneof->field(i)->number()));
  }
  return cases;
}

inline std::vector<wire::Envelope> AllSampleEnvelopes() {
  std::vector<wire::Envelope> out;
  for (auto body : AllBodyCases()) out.push_back(SampleEnvelope(body));
  return out;
}

}  // namespace clisc::testing
