// A thin adapter over the SQLite C API: the one place SQLite result codes become Status (busy and
// locked -> UNAVAILABLE, so callers retry; corruption -> DATA_LOSS; constraint violations ->
// FAILED_PRECONDITION / ALREADY_EXISTS). Statements are prepared once and cached per connection.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace clisc::sqlite {

// Converts a SQLite result code (and the connection's message) into a Status.
Status ErrorStatus(int rc, sqlite3* db, std::string_view context);

// A prepared statement owned by a Database's cache. Use it through ScopedStatement.
class Statement {
 public:
  Statement(sqlite3* db, sqlite3_stmt* stmt, std::string sql);
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Binds a parameter (1-based). Errors are remembered and reported by the next Step().
  void Bind(int index, int64_t value);
  void Bind(int index, int value) { Bind(index, static_cast<int64_t>(value)); }
  void Bind(int index, std::string_view value);
  void Bind(int index, const std::string& value) { Bind(index, std::string_view(value)); }
  void Bind(int index, const char* value) { Bind(index, std::string_view(value)); }
  void Bind(int index, std::nullptr_t);
  void Bind(int index, const std::optional<std::string>& value);
  void Bind(int index, const std::optional<int64_t>& value);

  // Binds every argument in order, starting at parameter 1.
  template <typename... Args>
  void BindAll(const Args&... args) {
    int index = 0;
    (Bind(++index, args), ...);
  }

  // Advances: true when a row is available, false when the statement is done.
  StatusOr<bool> Step();
  // Steps to completion, ignoring any rows.
  Status Run();

  int64_t Int(int column) const;
  std::string Text(int column) const;
  bool IsNull(int column) const;
  std::optional<std::string> OptionalText(int column) const;
  std::optional<int64_t> OptionalInt(int column) const;

  // Ready for reuse: resets and clears bindings. Called by ScopedStatement.
  void Reset();
  const std::string& sql() const { return sql_; }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_;
  std::string sql_;
  int bind_error_ = 0;
};

// Borrows a cached statement and resets it when it goes out of scope, so a half-read query never
// keeps a read snapshot open and the next borrower finds the statement clean.
class ScopedStatement {
 public:
  explicit ScopedStatement(Statement* stmt) : stmt_(stmt) {}
  ScopedStatement(ScopedStatement&& other) noexcept : stmt_(other.stmt_) { other.stmt_ = nullptr; }
  ScopedStatement& operator=(ScopedStatement&&) = delete;
  ~ScopedStatement() {
    if (stmt_ != nullptr) stmt_->Reset();
  }
  Statement* operator->() const { return stmt_; }
  Statement& operator*() const { return *stmt_; }

 private:
  Statement* stmt_;
};

class Database {
 public:
  // Opens (creating if asked) a database file. The connection has no mutex of its own (SQLite's
  // multi-thread mode): it must be used by one thread at a time.
  static StatusOr<std::unique_ptr<Database>> Open(const std::string& path, bool create);
  // Opens an existing file with SQLITE_OPEN_READONLY: every write fails (PERMISSION_DENIED).
  static StatusOr<std::unique_ptr<Database>> OpenReadOnly(const std::string& path);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs one or more statements that return no rows (DDL, PRAGMAs).
  Status Exec(std::string_view sql);
  // Prepares `sql` once per connection and hands out the cached statement afterwards.
  StatusOr<ScopedStatement> Prepare(std::string_view sql);
  // Runs a query whose single result is one integer (PRAGMA values, COUNT(*)).
  StatusOr<int64_t> QueryInt(std::string_view sql);

  int64_t LastInsertRowId() const;
  int Changes() const;
  bool InTransaction() const;
  void SetBusyTimeout(int milliseconds);
  const std::string& path() const { return path_; }

 private:
  Database(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  static StatusOr<std::unique_ptr<Database>> OpenWithFlags(const std::string& path, int flags);

  sqlite3* db_;
  std::string path_;
  // Keyed by views of the SQL text each Statement owns, so a lookup allocates nothing.
  std::unordered_map<std::string_view, std::unique_ptr<Statement>> cache_;
};

// BEGIN IMMEDIATE ... COMMIT, rolled back on destruction unless committed. IMMEDIATE takes the
// write lock up front: a deferred transaction that reads first and then writes can fail with
// SQLITE_BUSY halfway, after the busy handler could no longer help.
class Transaction {
 public:
  static StatusOr<Transaction> Begin(Database& db);
  Transaction(Transaction&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();
  Status Commit();

 private:
  explicit Transaction(Database* db) : db_(db) {}
  Database* db_;
};

}  // namespace clisc::sqlite
