// A read-only ledger, as `clisc status --ledger` opens it beside a running coordinator: it reads
// while another connection writes, refuses every write, and refuses files of another schema.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <string>

#include "coordinator/ledger.h"
#include "coordinator/ledger_schema.h"
#include "tests/unit/ledger_fixture.h"

namespace clisc {
namespace {

namespace fs = std::filesystem;
using testutil::LedgerTest;

class LedgerReadOnlyTest : public LedgerTest {
 protected:
  std::unique_ptr<Ledger> OpenReader(LedgerOptions options = {}) {
    options.read_only = true;
    auto reader = Ledger::Open(path_, &clock_, options);
    EXPECT_TRUE(reader.ok()) << reader.status().ToString();
    return reader.ok() ? std::move(reader).value() : nullptr;
  }

  // A raw second connection, for what the Ledger API keeps short (an open write transaction).
  sqlite3* RawConnection() {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    return db;
  }

  static void Exec(sqlite3* db, const std::string& sql) {
    char* error = nullptr;
    ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK)
        << (error != nullptr ? error : "") << " in " << sql;
  }

  int LatestSchemaVersion() {
    auto blocks = ParseMigrations(EmbeddedLedgerSql());
    EXPECT_TRUE(blocks.ok());
    return blocks.ok() ? blocks->back().version : 0;
  }

  int64_t Count(Ledger& ledger, TaskState state) {
    auto counts = ledger.CountByStageAndState(run_);
    EXPECT_TRUE(counts.ok()) << counts.status().ToString();
    int64_t n = 0;
    if (!counts.ok()) return -1;
    for (const StageStateCount& c : *counts) n += c.state == state ? c.count : 0;
    return n;
  }
};

TEST_F(LedgerReadOnlyTest, ReadsWhileAnotherConnectionHoldsTheWriteLock) {
  auto ids = Plan({Spec("a/c1", "c1"), Spec("a/c2", "c2")});
  auto reader = OpenReader();
  ASSERT_NE(reader, nullptr);
  EXPECT_EQ(reader->schema_version(), LatestSchemaVersion());
  EXPECT_EQ(Count(*reader, TaskState::kPending), 2);

  sqlite3* writer = RawConnection();
  Exec(writer, "BEGIN IMMEDIATE");
  Exec(writer, "UPDATE tasks SET state = 'cancelled' WHERE task_key = 'a/c1'");
  // WAL: the reader sees the last commit at once instead of waiting for the writer.
  auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(Count(*reader, TaskState::kPending), 2);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(1));
  Exec(writer, "COMMIT");
  sqlite3_close(writer);
  EXPECT_EQ(Count(*reader, TaskState::kPending), 1);

  // The coordinator's own connection keeps writing; the reader follows each commit.
  RunToSuccess(ids["a/c2"]);
  EXPECT_EQ(Count(*reader, TaskState::kSucceeded), 1);
  auto task = reader->GetTask(ids["a/c2"]);
  ASSERT_TRUE(task.ok()) << task.status().ToString();
  EXPECT_EQ(task->state, TaskState::kSucceeded);
}

TEST_F(LedgerReadOnlyTest, RefusesWrites) {
  Plan({Spec("a/c1", "c1")});
  auto reader = OpenReader();
  ASSERT_NE(reader, nullptr);
  auto run = reader->OpenRun("other", "", "fp");
  ASSERT_FALSE(run.ok());
  EXPECT_EQ(run.status().code(), StatusCode::kPermissionDenied) << run.status().ToString();
  auto upsert = reader->UpsertTasks(run_, {Spec("b/c1", "c1")});
  EXPECT_FALSE(upsert.ok());
  Status touched = reader->TouchWorker("w1");
  EXPECT_FALSE(touched.ok());
  // Nothing reached the file.
  auto found = ledger_->FindTask(run_, "b/c1");
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(found->has_value());
}

TEST_F(LedgerReadOnlyTest, OpensAfterTheWriterClosed) {
  Plan({Spec("a/c1", "c1")});
  ledger_.reset();  // the last connection closing removes the -wal and -shm files
  auto reader = OpenReader();
  ASSERT_NE(reader, nullptr);
  EXPECT_EQ(Count(*reader, TaskState::kPending), 1);
}

TEST_F(LedgerReadOnlyTest, MissingFileIsNotFoundAndNotCreated) {
  std::string missing = (dir_ / "nope" / "ledger.db").string();
  LedgerOptions options;
  options.read_only = true;
  auto reader = Ledger::Open(missing, &clock_, options);
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), StatusCode::kNotFound);
  EXPECT_NE(reader.status().message().find(missing), std::string::npos)
      << reader.status().message();
  EXPECT_FALSE(fs::exists(missing));
}

TEST_F(LedgerReadOnlyTest, NewerSchemaIsRefusedWithBothVersions) {
  sqlite3* raw = RawConnection();
  Exec(raw, "PRAGMA user_version = 99");
  sqlite3_close(raw);
  LedgerOptions options;
  options.read_only = true;
  auto reader = Ledger::Open(path_, &clock_, options);
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), StatusCode::kFailedPrecondition);
  const std::string& message = reader.status().message();
  EXPECT_NE(message.find("99"), std::string::npos) << message;
  EXPECT_NE(message.find(std::to_string(LatestSchemaVersion())), std::string::npos) << message;
  EXPECT_NE(message.find(path_), std::string::npos) << message;
  EXPECT_NE(message.find("newer clisc"), std::string::npos) << message;
}

TEST_F(LedgerReadOnlyTest, OlderSchemaIsRefusedInsteadOfMigrated) {
  int current = LatestSchemaVersion();
  LedgerOptions options;
  options.read_only = true;
  options.migrations_sql = std::string(EmbeddedLedgerSql()) + "\n-- migration " +
                           std::to_string(current + 1) +
                           ": a later table\nCREATE TABLE later (x INTEGER);\n";
  auto reader = Ledger::Open(path_, &clock_, options);
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), StatusCode::kFailedPrecondition);
  const std::string& message = reader.status().message();
  EXPECT_NE(message.find("version " + std::to_string(current)), std::string::npos) << message;
  EXPECT_NE(message.find("version " + std::to_string(current + 1)), std::string::npos) << message;
  // The file was left as it was.
  sqlite3* raw = RawConnection();
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(raw, "PRAGMA user_version", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(stmt, 0), current);
  sqlite3_finalize(stmt);
  sqlite3_close(raw);
}

}  // namespace
}  // namespace clisc
