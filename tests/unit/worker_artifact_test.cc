// Artifacts through the worker: on a shared filesystem roles use the store directly; without one
// the worker fetches inputs from and pushes outputs to the (scripted) coordinator in chunks.
#include <gtest/gtest.h>

#include <csignal>
#include <map>
#include <thread>

#include "common/artifact_store.h"
#include "common/sha256.h"
#include "tests/unit/worker_coordinator_fixture.h"
#include "workers/runtime/test_roles.h"
#include "workers/runtime/worker.h"

namespace clisc::worker_test {
namespace {

using std::chrono::milliseconds;

constexpr char kInputPath[] = "inputs/case-1/t1.bin";
constexpr char kOutputPath[] = "outputs/case-1/mask.bin";

wire::ArtifactRef Ref(const std::string& name, const ArtifactRef& ref) {
  wire::ArtifactRef out;
  out.set_name(name);
  out.set_path(ref.path);
  out.set_sha256(ref.sha256);
  out.set_size(ref.size);
  return out;
}

wire::ExpectedOutput Output(const std::string& name, const std::string& path) {
  wire::ExpectedOutput out;
  out.set_name(name);
  out.set_path(path);
  return out;
}

std::string InputBytes() {
  std::string bytes;
  for (int i = 0; i < 10'000; ++i) bytes.push_back(static_cast<char>((i * 7919) % 251));
  return bytes;
}

class WorkerArtifactTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(worker::RegisterTestRoles(registry_).ok());
    auto central = ArtifactStore::Open(temp_.path() / "central");
    ASSERT_TRUE(central.ok());
    central_.emplace(std::move(*central));
    auto input = central_->PutFile(kInputPath, InputBytes());
    ASSERT_TRUE(input.ok());
    input_ = *input;
  }

  void TearDown() override {
    if (thread_.joinable()) {
      worker_->RequestDrain(SIGTERM);
      worker_->RequestDrain(SIGTERM);
      thread_.join();
    }
  }

  void Start(bool shared_filesystem) {
    worker::WorkerOptions options;
    options.connect = coordinator_.endpoint();
    options.worker_id = "artifact-worker";
    options.roles = {"write_artifact"};
    options.slots = 2;
    options.heartbeat_interval = milliseconds(100);
    options.exit_flush = milliseconds(20);
    if (shared_filesystem) {
      options.artifact_root = central_->root();
    } else {
      options.scratch_dir = temp_.path() / "scratch";
    }
    options.transfer.chunk_bytes = 4096;
    auto created = worker::Worker::Create(std::move(options), registry_);
    ASSERT_TRUE(created.ok()) << created.status().ToString();
    worker_ = std::move(*created);
    thread_ = std::thread([this] { worker_->Run(); });
    ASSERT_TRUE(coordinator_.AcceptHello());
  }

  // Plays the coordinator's artifact relay until the result of `task_id` arrives.
  std::optional<wire::TaskResult> Serve(const std::string& task_id,
                                        milliseconds timeout = milliseconds(10'000)) {
    const auto end = SteadyClock::now() + timeout;
    while (SteadyClock::now() < end) {
      auto received = coordinator_.Receive(milliseconds(100));
      if (!received) continue;
      const wire::Envelope& e = received->envelope;
      if (e.has_artifact_fetch()) {
        ++fetches_;
        if (ignore_fetches_) continue;
        ServeFetch(received->identity, e.artifact_fetch());
      } else if (e.has_artifact_put()) {
        ++puts_;
        ServePut(received->identity, e.artifact_put());
      } else if (e.has_task_result() && e.task_result().task_id() == task_id) {
        return e.task_result();
      }
    }
    return std::nullopt;
  }

  void ServeFetch(const std::string& identity, const wire::ArtifactFetch& fetch) {
    EXPECT_FALSE(fetch.task_id().empty());
    EXPECT_GE(fetch.attempt(), 1u);
    EXPECT_LE(fetch.max_bytes(), 4096u);
    wire::Envelope reply;
    wire::ArtifactChunk* chunk = reply.mutable_artifact_chunk();
    chunk->set_path(fetch.path());
    chunk->set_offset(fetch.offset());
    auto data = central_->ReadChunk(fetch.path(), fetch.offset(), fetch.max_bytes());
    if (!data.ok()) {
      chunk->mutable_error()->set_code(wire::Error::NOT_FOUND);
      chunk->mutable_error()->set_message(data.status().message());
    } else {
      chunk->set_total_size(data->total_size);
      chunk->set_data(data->data);
      chunk->set_last(data->last);
      if (data->last) chunk->set_sha256(central_->Describe(fetch.path())->sha256);
    }
    coordinator_.Send(identity, reply);
  }

  void ServePut(const std::string& identity, const wire::ArtifactPut& put) {
    wire::Envelope reply;
    wire::ArtifactPutAck* ack = reply.mutable_artifact_put_ack();
    ack->set_path(put.path());
    put_offsets_.push_back(put.offset());
    if (put.offset() == 4096 && lose_second_chunk_once_) {
      // As after a coordinator restart: the partial upload is gone, start again.
      lose_second_chunk_once_ = false;
      writers_.erase(put.path());
      ack->set_next_offset(0);
      ack->mutable_error()->set_code(wire::Error::FAILED_PRECONDITION);
      ack->mutable_error()->set_message("no transfer in progress; start again at offset 0");
      coordinator_.Send(identity, reply);
      return;
    }
    if (put.offset() == 0) {
      writers_.erase(put.path());
      auto writer = central_->BeginChunkedWrite(put.path(), put.total_size());
      EXPECT_TRUE(writer.ok());
      writers_.emplace(put.path(), std::move(*writer));
    }
    auto it = writers_.find(put.path());
    EXPECT_NE(it, writers_.end());
    if (it == writers_.end()) return;
    EXPECT_TRUE(it->second.Append(put.offset(), put.data()).ok());
    ack->set_next_offset(it->second.bytes_written());
    if (put.last()) {
      auto committed = it->second.Commit(put.sha256());
      EXPECT_TRUE(committed.ok()) << committed.status().ToString();
      ack->set_committed(committed.ok());
      writers_.erase(it);
    }
    coordinator_.Send(identity, reply);
  }

  TempDir temp_;
  FakeCoordinator coordinator_;
  worker::RoleRegistry registry_;
  std::optional<ArtifactStore> central_;
  ArtifactRef input_;
  std::unique_ptr<worker::Worker> worker_;
  std::thread thread_;
  std::map<std::string, ChunkedWriter> writers_;
  std::vector<uint64_t> put_offsets_;
  int fetches_ = 0;
  int puts_ = 0;
  bool ignore_fetches_ = false;
  bool lose_second_chunk_once_ = false;
};

TEST_F(WorkerArtifactTest, WithoutSharedFilesystemInputsAndOutputsGoThroughTheCoordinator) {
  Start(/*shared_filesystem=*/false);
  lose_second_chunk_once_ = true;
  coordinator_.Assign("1", 1, "write_artifact", R"({"bytes": 10000})", 0, {Ref("t1", input_)},
                      {Output("mask", kOutputPath)});
  auto result = Serve("1");
  ASSERT_TRUE(result);
  ASSERT_TRUE(result->ok()) << result->error().message();
  EXPECT_EQ(fetches_, 3);  // 10000 bytes in 4096-byte chunks

  // The upload resumed from the offset the coordinator asked for and was committed whole.
  ASSERT_GE(put_offsets_.size(), 4u);
  EXPECT_EQ(put_offsets_[0], 0u);
  EXPECT_EQ(put_offsets_[1], 4096u);
  EXPECT_EQ(put_offsets_[2], 0u);
  const std::string expected = worker::DeterministicArtifactBytes(kOutputPath, 10'000);
  ASSERT_EQ(result->outputs_size(), 1);
  EXPECT_EQ(result->outputs(0).name(), "mask");
  EXPECT_EQ(result->outputs(0).path(), kOutputPath);
  EXPECT_EQ(result->outputs(0).size(), 10'000u);
  EXPECT_EQ(result->outputs(0).sha256(), Sha256Hex(expected));
  auto stored = central_->Read(kOutputPath);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(*stored, expected);
  // The fetched input sits verified in the worker's scratch store.
  EXPECT_TRUE(worker_->store().Verify(input_).ok());

  // A second task reading the same input does not fetch it again.
  coordinator_.Assign("2", 1, "write_artifact", R"({"bytes": 100})", 0, {Ref("t1", input_)},
                      {Output("mask", "outputs/case-1/other.bin")});
  auto second = Serve("2");
  ASSERT_TRUE(second);
  EXPECT_TRUE(second->ok());
  EXPECT_EQ(fetches_, 3);
}

TEST_F(WorkerArtifactTest, CorruptInputFailsWithDataLoss) {
  Start(/*shared_filesystem=*/false);
  ArtifactRef wrong = input_;
  wrong.sha256 = Sha256Hex("something else");
  coordinator_.Assign("1", 1, "write_artifact", "{}", 0, {Ref("t1", wrong)},
                      {Output("mask", kOutputPath)});
  auto result = Serve("1");
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok());
  EXPECT_EQ(result->error().code(), wire::Error::DATA_LOSS);
  EXPECT_FALSE(result->error().retryable());
  EXPECT_NE(result->error().message().find(kInputPath), std::string::npos);
  EXPECT_EQ(puts_, 0);
}

TEST_F(WorkerArtifactTest, UnansweredFetchFailsRetryably) {
  Start(/*shared_filesystem=*/false);
  ignore_fetches_ = true;
  const auto start = SteadyClock::now();
  coordinator_.Assign("1", 1, "write_artifact", "{}", 0, {Ref("t1", input_)},
                      {Output("mask", kOutputPath)});
  auto result = Serve("1");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->error().code(), wire::Error::UNAVAILABLE);
  EXPECT_TRUE(result->error().retryable());
  EXPECT_GE(SteadyClock::now() - start, milliseconds(450));  // 5 heartbeat intervals
  EXPECT_EQ(fetches_, 1);
}

TEST_F(WorkerArtifactTest, SharedFilesystemNeedsNoTransfer) {
  Start(/*shared_filesystem=*/true);
  coordinator_.Assign("1", 1, "write_artifact", R"({"bytes": 5000})", 0, {Ref("t1", input_)},
                      {Output("mask", kOutputPath), Output("extra", "outputs/case-1/extra.bin")});
  auto result = Serve("1");
  ASSERT_TRUE(result);
  ASSERT_TRUE(result->ok()) << result->error().message();
  EXPECT_EQ(fetches_ + puts_, 0);
  ASSERT_EQ(result->outputs_size(), 2);
  for (const wire::ArtifactRef& output : result->outputs()) {
    ArtifactRef ref{output.path(), output.size(), output.sha256()};
    EXPECT_TRUE(central_->Verify(ref).ok()) << output.path();
    EXPECT_EQ(*central_->Read(output.path()),
              worker::DeterministicArtifactBytes(output.path(), 5000));
  }
  // A missing input fails the task without writing anything.
  ArtifactRef missing{"inputs/case-1/missing.bin", 3, Sha256Hex("abc")};
  coordinator_.Assign("2", 1, "write_artifact", "{}", 0, {Ref("t2", missing)},
                      {Output("mask", "outputs/case-1/never.bin")});
  auto failed = Serve("2");
  ASSERT_TRUE(failed);
  EXPECT_FALSE(failed->ok());
  EXPECT_EQ(failed->error().code(), wire::Error::NOT_FOUND);
  EXPECT_FALSE(central_->Describe("outputs/case-1/never.bin").ok());
}

}  // namespace
}  // namespace clisc::worker_test
