#include "common/artifact_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <set>
#include <string>

#include "common/sha256.h"

namespace clisc {
namespace {
namespace fs = std::filesystem;

class ArtifactStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    // Per process: several checkouts may run this test at once on one machine.
    root_ = fs::path(::testing::TempDir()) / ("artifact_store_test." + std::to_string(::getpid())) /
            info->name();
    fs::remove_all(root_);
    auto store = ArtifactStore::Open(root_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_.emplace(std::move(store).value());
  }

  // Every entry under the root, relative, as a reader listing the tree would see it.
  std::set<std::string> Listing() const {
    std::set<std::string> names;
    for (const auto& entry : fs::recursive_directory_iterator(root_)) {
      names.insert(fs::relative(entry.path(), root_).string());
    }
    return names;
  }

  static std::string RandomBytes(size_t size, uint32_t seed) {
    std::mt19937 rng(seed);
    std::string data(size, '\0');
    for (char& c : data) c = static_cast<char>(rng());
    return data;
  }

  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_.parent_path(), ec);
  }

  fs::path root_;
  std::optional<ArtifactStore> store_;
};

TEST_F(ArtifactStoreTest, PutFileReturnsRefAndReadsBack) {
  auto ref = store_->PutFile("case_001/cam/mask.nii", "voxels");
  ASSERT_TRUE(ref.ok()) << ref.status().ToString();
  EXPECT_EQ(ref->path, "case_001/cam/mask.nii");
  EXPECT_EQ(ref->size, 6u);
  EXPECT_EQ(ref->sha256, Sha256Hex("voxels"));
  auto bytes = store_->Read("case_001/cam/mask.nii");
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(*bytes, "voxels");
  EXPECT_TRUE(store_->Verify(*ref).ok());
  EXPECT_EQ(Listing(),
            (std::set<std::string>{"case_001", "case_001/cam", "case_001/cam/mask.nii"}));
}

TEST_F(ArtifactStoreTest, PutFileReplacesAtomically) {
  ASSERT_TRUE(store_->PutFile("a.bin", "first version").ok());
  ASSERT_TRUE(store_->PutFile("a.bin", "second").ok());
  EXPECT_EQ(*store_->Read("a.bin"), "second");
  EXPECT_EQ(Listing(), std::set<std::string>{"a.bin"});
}

TEST_F(ArtifactStoreTest, PutFromFileCopiesAndHashes) {
  fs::path source = root_.parent_path() / "PutFromFileCopiesAndHashes.src";
  std::string data = RandomBytes(2 * (1 << 20) + 5, 1);
  std::ofstream(source, std::ios::binary)
      .write(data.data(), static_cast<std::streamsize>(data.size()));
  auto ref = store_->PutFromFile("weights/clip.pt", source);
  ASSERT_TRUE(ref.ok()) << ref.status().ToString();
  EXPECT_EQ(ref->size, data.size());
  EXPECT_EQ(ref->sha256, Sha256Hex(data));
  EXPECT_EQ(*store_->Read("weights/clip.pt"), data);
  EXPECT_EQ(store_->PutFromFile("x", root_ / "no_such_file").status().code(),
            StatusCode::kNotFound);
}

TEST_F(ArtifactStoreTest, VerifyReportsMissingAndCorruption) {
  auto ref = store_->PutFile("r/out.bin", "payload");
  ASSERT_TRUE(ref.ok());

  ArtifactRef missing = *ref;
  missing.path = "r/other.bin";
  EXPECT_EQ(store_->Verify(missing).code(), StatusCode::kNotFound);

  ArtifactRef wrong_size = *ref;
  wrong_size.size = 3;
  EXPECT_EQ(store_->Verify(wrong_size).code(), StatusCode::kDataLoss);

  // Same size, one byte changed behind the store's back.
  std::ofstream(root_ / "r/out.bin", std::ios::binary | std::ios::trunc) << "paYload";
  EXPECT_EQ(store_->Verify(*ref).code(), StatusCode::kDataLoss);

  ArtifactRef malformed = *ref;
  malformed.sha256 = "abc";
  EXPECT_EQ(store_->Verify(malformed).code(), StatusCode::kInvalidArgument);
}

TEST_F(ArtifactStoreTest, DescribeMatchesPut) {
  auto ref = store_->PutFile("d.txt", "describe me");
  ASSERT_TRUE(ref.ok());
  auto described = store_->Describe("d.txt");
  ASSERT_TRUE(described.ok());
  EXPECT_EQ(described->size, ref->size);
  EXPECT_EQ(described->sha256, ref->sha256);
  EXPECT_EQ(store_->Describe("none.txt").status().code(), StatusCode::kNotFound);
}

TEST_F(ArtifactStoreTest, PathEscapesAreRefused) {
  const std::string hostile[] = {
      "",
      "/etc/passwd",
      "../outside",
      "a/../../outside",
      "a/./b",
      "a//b",
      "a/",
      ".",
      "..",
      std::string("a\0b", 3),
      "case\n1",
      "x/.y.clisc-tmp-1-2-3",
      std::string(300, 'c'),
      std::string(5000, 'd'),
  };
  for (const std::string& path : hostile) {
    SCOPED_TRACE(path.substr(0, 40));
    EXPECT_EQ(ValidateArtifactPath(path).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(store_->PutFile(path, "x").status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(store_->Read(path).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(store_->ReadChunk(path, 0, 10).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(store_->BeginChunkedWrite(path, 1).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(store_->Verify({path, 1, Sha256Hex("x")}).code(), StatusCode::kInvalidArgument);
  }
  EXPECT_FALSE(fs::exists(root_.parent_path() / "outside"));
  EXPECT_TRUE(Listing().empty());
  // Dots inside names are fine; only whole "." / ".." components escape.
  EXPECT_TRUE(ValidateArtifactPath("case..1/..hidden/v1.2.nii.gz").ok());
}

TEST_F(ArtifactStoreTest, FileInThePlaceOfADirectoryIsRefused) {
  ASSERT_TRUE(store_->PutFile("blocker", "x").ok());
  EXPECT_EQ(store_->PutFile("blocker/child", "y").status().code(), StatusCode::kFailedPrecondition);
}

// A writer that dies after writing the temporary file but before the rename must leave no
// target file and nothing a reader would mistake for an artifact.
TEST_F(ArtifactStoreTest, CrashBeforeRenameLeavesNoTargetAndCleanupRemovesTemporary) {
  // "fast" death tests fork without re-running SetUp, so the child writes into this root.
  GTEST_FLAG_SET(death_test_style, "fast");
  ArtifactStore::Options options;
  options.before_rename = [](const fs::path&) { ::_exit(42); };
  auto crashing = ArtifactStore::Open(root_, options);
  ASSERT_TRUE(crashing.ok());
  EXPECT_EXIT((void)crashing->PutFile("case_7/sam/label.nii.gz", "partial"),
              ::testing::ExitedWithCode(42), "");

  EXPECT_EQ(store_->Read("case_7/sam/label.nii.gz").status().code(), StatusCode::kNotFound);
  std::set<std::string> entries = Listing();
  ASSERT_EQ(entries.size(), 3u);  // the two directories and one hidden temporary
  int temporaries = 0;
  for (const std::string& entry : entries) {
    if (entry.find(kArtifactTempMarker) == std::string::npos) continue;
    ++temporaries;
    EXPECT_EQ(fs::path(entry).filename().string().front(), '.') << "temporaries are hidden";
  }
  EXPECT_EQ(temporaries, 1);

  // Too young for an age-limited cleanup (a live writer on a shared filesystem)...
  auto kept = store_->CleanupTemporaries(std::chrono::hours(1));
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(*kept, 0u);
  // ...removed by the startup cleanup.
  auto removed = store_->CleanupTemporaries();
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  EXPECT_EQ(*removed, 1u);
  EXPECT_EQ(Listing(), (std::set<std::string>{"case_7", "case_7/sam"}));

  // The same write without the crash succeeds afterwards.
  EXPECT_TRUE(store_->PutFile("case_7/sam/label.nii.gz", "complete").ok());
}

TEST_F(ArtifactStoreTest, CrashBeforeRenameKeepsThePreviousVersion) {
  // "fast" death tests fork without re-running SetUp, so the child writes into this root.
  GTEST_FLAG_SET(death_test_style, "fast");
  ASSERT_TRUE(store_->PutFile("model.pt", "round 1").ok());
  ArtifactStore::Options options;
  options.before_rename = [](const fs::path&) { ::_exit(3); };
  auto crashing = ArtifactStore::Open(root_, options);
  ASSERT_TRUE(crashing.ok());
  EXPECT_EXIT((void)crashing->PutFile("model.pt", "round 2"), ::testing::ExitedWithCode(3), "");
  EXPECT_EQ(*store_->Read("model.pt"), "round 1");
  EXPECT_EQ(*store_->CleanupTemporaries(), 1u);
}

TEST_F(ArtifactStoreTest, ChunkedRoundTrip) {
  const std::string data = RandomBytes(1000003, 2);
  auto source = store_->PutFile("in/volume.nii", data);
  ASSERT_TRUE(source.ok());

  auto writer = store_->BeginChunkedWrite("copy/volume.nii", source->size);
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  uint64_t offset = 0;
  int chunks = 0;
  while (true) {
    auto chunk = store_->ReadChunk("in/volume.nii", offset, 65536);
    ASSERT_TRUE(chunk.ok()) << chunk.status().ToString();
    EXPECT_EQ(chunk->offset, offset);
    EXPECT_EQ(chunk->total_size, data.size());
    ASSERT_TRUE(writer->Append(chunk->offset, chunk->data).ok());
    offset += chunk->data.size();
    ++chunks;
    if (chunk->last) break;
  }
  EXPECT_EQ(chunks, 16);
  EXPECT_EQ(writer->bytes_written(), data.size());
  auto ref = writer->Commit(source->sha256);
  ASSERT_TRUE(ref.ok()) << ref.status().ToString();
  EXPECT_EQ(ref->sha256, source->sha256);
  EXPECT_EQ(*store_->Read("copy/volume.nii"), data);
}

TEST_F(ArtifactStoreTest, ChunkedEmptyArtifact) {
  ASSERT_TRUE(store_->PutFile("empty", "").ok());
  auto chunk = store_->ReadChunk("empty", 0, 10);
  ASSERT_TRUE(chunk.ok());
  EXPECT_TRUE(chunk->last);
  EXPECT_TRUE(chunk->data.empty());
  auto writer = store_->BeginChunkedWrite("empty_copy", 0);
  ASSERT_TRUE(writer.ok());
  EXPECT_TRUE(writer->Commit(Sha256Hex("")).ok());
  EXPECT_EQ(*store_->Read("empty_copy"), "");
}

TEST_F(ArtifactStoreTest, ChunkedWriteRejectsBadOffsetsAndOverruns) {
  auto writer = store_->BeginChunkedWrite("t.bin", 10);
  ASSERT_TRUE(writer.ok());
  EXPECT_EQ(writer->Append(3, "abc").code(), StatusCode::kFailedPrecondition);  // gap
  ASSERT_TRUE(writer->Append(0, "abcdef").ok());
  EXPECT_EQ(writer->Append(0, "abc").code(), StatusCode::kFailedPrecondition);  // replay
  EXPECT_EQ(writer->Append(6, "ghijklmn").code(), StatusCode::kOutOfRange);     // past size
  EXPECT_EQ(writer->bytes_written(), 6u);
  // Incomplete: refused, and the transfer is over.
  EXPECT_EQ(writer->Commit(Sha256Hex("abcdefghij")).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(writer->Append(6, "ghij").code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Listing().empty());
}

TEST_F(ArtifactStoreTest, ChunkedChecksumMismatchPublishesNothing) {
  auto writer = store_->BeginChunkedWrite("c/t.bin", 4);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE(writer->Append(0, "abcd").ok());
  EXPECT_EQ(writer->Commit(Sha256Hex("abce")).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(Listing(), std::set<std::string>{"c"});
}

TEST_F(ArtifactStoreTest, DroppedWriterRemovesItsTemporary) {
  {
    auto writer = store_->BeginChunkedWrite("gone.bin", 4);
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE(writer->Append(0, "ab").ok());
    EXPECT_EQ(Listing().size(), 1u);  // the temporary
  }
  EXPECT_TRUE(Listing().empty());
}

TEST_F(ArtifactStoreTest, ReadChunkBounds) {
  ASSERT_TRUE(store_->PutFile("f", "0123456789").ok());
  auto tail = store_->ReadChunk("f", 8, 100);
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(tail->data, "89");
  EXPECT_TRUE(tail->last);
  EXPECT_EQ(store_->ReadChunk("f", 11, 1).status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(store_->ReadChunk("f", 0, 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->ReadChunk("nope", 0, 1).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->Read("f", 5).status().code(), StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace clisc
