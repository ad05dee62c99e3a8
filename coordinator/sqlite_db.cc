#include "coordinator/sqlite_db.h"

#include <sqlite3.h>

#include <utility>

namespace clisc::sqlite {

namespace {

StatusCode CodeFor(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_PROTOCOL:
      // Another connection holds the lock, or the file system hiccuped: worth another try.
      return StatusCode::kUnavailable;
    case SQLITE_FULL:
    case SQLITE_NOMEM:
      return StatusCode::kResourceExhausted;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return StatusCode::kDataLoss;
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_AUTH:
      return StatusCode::kPermissionDenied;
    case SQLITE_CANTOPEN:
      return StatusCode::kNotFound;
    case SQLITE_CONSTRAINT:
      if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
        return StatusCode::kAlreadyExists;
      }
      return StatusCode::kFailedPrecondition;
    case SQLITE_INTERRUPT:
      return StatusCode::kCancelled;
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
    case SQLITE_MISMATCH:
      return StatusCode::kInvalidArgument;
    default:
      return StatusCode::kInternal;
  }
}

}  // namespace

Status ErrorStatus(int rc, sqlite3* db, std::string_view context) {
  std::string message(context);
  message += ": ";
  // The connection's message is more specific than the code's, but only while it is current.
  if (db != nullptr && sqlite3_extended_errcode(db) == rc) {
    message += sqlite3_errmsg(db);
  } else {
    message += sqlite3_errstr(rc);
  }
  return Status(CodeFor(rc), std::move(message));
}

Statement::Statement(sqlite3* db, sqlite3_stmt* stmt, std::string sql)
    : db_(db), stmt_(stmt), sql_(std::move(sql)) {}

Statement::~Statement() { sqlite3_finalize(stmt_); }

void Statement::Bind(int index, int64_t value) {
  int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK && bind_error_ == SQLITE_OK) bind_error_ = rc;
}

void Statement::Bind(int index, std::string_view value) {
  // SQLITE_TRANSIENT: SQLite copies the bytes, so callers may bind temporaries.
  int rc = sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()),
                             SQLITE_TRANSIENT);
  if (rc != SQLITE_OK && bind_error_ == SQLITE_OK) bind_error_ = rc;
}

void Statement::Bind(int index, std::nullptr_t) {
  int rc = sqlite3_bind_null(stmt_, index);
  if (rc != SQLITE_OK && bind_error_ == SQLITE_OK) bind_error_ = rc;
}

void Statement::Bind(int index, const std::optional<std::string>& value) {
  if (value.has_value()) {
    Bind(index, std::string_view(*value));
  } else {
    Bind(index, nullptr);
  }
}

void Statement::Bind(int index, const std::optional<int64_t>& value) {
  if (value.has_value()) {
    Bind(index, *value);
  } else {
    Bind(index, nullptr);
  }
}

StatusOr<bool> Statement::Step() {
  if (bind_error_ != SQLITE_OK) {
    return ErrorStatus(bind_error_, nullptr, "binding parameters of: " + sql_);
  }
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return ErrorStatus(rc, db_, sql_.substr(0, 80));
}

Status Statement::Run() {
  while (true) {
    ASSIGN_OR_RETURN(bool row, Step());
    if (!row) return OkStatus();
  }
}

int64_t Statement::Int(int column) const { return sqlite3_column_int64(stmt_, column); }

std::string Statement::Text(int column) const {
  const unsigned char* text = sqlite3_column_text(stmt_, column);
  if (text == nullptr) return std::string();
  return std::string(reinterpret_cast<const char*>(text),
                     static_cast<size_t>(sqlite3_column_bytes(stmt_, column)));
}

bool Statement::IsNull(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

std::optional<std::string> Statement::OptionalText(int column) const {
  if (IsNull(column)) return std::nullopt;
  return Text(column);
}

std::optional<int64_t> Statement::OptionalInt(int column) const {
  if (IsNull(column)) return std::nullopt;
  return Int(column);
}

void Statement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  bind_error_ = SQLITE_OK;
}

StatusOr<std::unique_ptr<Database>> Database::Open(const std::string& path, bool create) {
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  if (create) flags |= SQLITE_OPEN_CREATE;
  return OpenWithFlags(path, flags);
}

StatusOr<std::unique_ptr<Database>> Database::OpenReadOnly(const std::string& path) {
  return OpenWithFlags(path, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX);
}

StatusOr<std::unique_ptr<Database>> Database::OpenWithFlags(const std::string& path, int flags) {
  // Memory statistics cost a global mutex on every allocation SQLite makes; nothing reads them.
  // The setting must precede SQLite's initialization and is refused (harmlessly) after it.
  static const bool configured = [] {
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    return true;
  }();
  (void)configured;
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    Status status = ErrorStatus(rc, db, "opening ledger " + path);
    sqlite3_close(db);  // SQLite allocates a handle even when opening fails.
    return status;
  }
  // Extended codes tell a UNIQUE violation from a CHECK violation.
  sqlite3_extended_result_codes(db, 1);
  return std::unique_ptr<Database>(new Database(db, path));
}

Database::~Database() {
  cache_.clear();  // Statements must be finalized before the connection closes.
  sqlite3_close(db_);
}

Status Database::Exec(std::string_view sql) {
  std::string text(sql);
  char* error = nullptr;
  int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &error);
  if (rc == SQLITE_OK) return OkStatus();
  std::string message = error != nullptr ? error : sqlite3_errstr(rc);
  sqlite3_free(error);
  return Status(CodeFor(rc), message);
}

StatusOr<ScopedStatement> Database::Prepare(std::string_view sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) return ErrorStatus(rc, db_, "preparing: " + std::string(sql));
    auto statement = std::make_unique<Statement>(db_, stmt, std::string(sql));
    std::string_view key = statement->sql();
    it = cache_.emplace(key, std::move(statement)).first;
  }
  return ScopedStatement(it->second.get());
}

StatusOr<int64_t> Database::QueryInt(std::string_view sql) {
  ASSIGN_OR_RETURN(ScopedStatement stmt, Prepare(sql));
  ASSIGN_OR_RETURN(bool row, stmt->Step());
  if (!row) return InternalError("no result from: " + std::string(sql));
  return stmt->Int(0);
}

int64_t Database::LastInsertRowId() const { return sqlite3_last_insert_rowid(db_); }

int Database::Changes() const { return sqlite3_changes(db_); }

bool Database::InTransaction() const { return sqlite3_get_autocommit(db_) == 0; }

void Database::SetBusyTimeout(int milliseconds) { sqlite3_busy_timeout(db_, milliseconds); }

StatusOr<Transaction> Transaction::Begin(Database& db) {
  ASSIGN_OR_RETURN(ScopedStatement begin, db.Prepare("BEGIN IMMEDIATE"));
  RETURN_IF_ERROR(begin->Run());
  return Transaction(&db);
}

Transaction::~Transaction() {
  if (db_ == nullptr || !db_->InTransaction()) return;
  // Rollback cannot be reported from a destructor; if it fails the connection is unusable and
  // the next statement says so.
  (void)db_->Exec("ROLLBACK");
}

Status Transaction::Commit() {
  ASSIGN_OR_RETURN(ScopedStatement commit, db_->Prepare("COMMIT"));
  Status status = commit->Run();
  if (status.ok()) db_ = nullptr;
  return status;
}

}  // namespace clisc::sqlite
