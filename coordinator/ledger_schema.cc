#include "coordinator/ledger_schema.h"

#include <charconv>

#include "common/logging.h"
#include "coordinator/sqlite_db.h"

namespace clisc {

extern const char kLedgerSqlText[];  // schemas/ledger.sql, embedded by schemas/CMakeLists.txt

namespace {

constexpr std::string_view kMarker = "-- migration ";

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

}  // namespace

std::string_view EmbeddedLedgerSql() { return kLedgerSqlText; }

StatusOr<std::vector<Migration>> ParseMigrations(std::string_view text) {
  std::vector<Migration> blocks;
  size_t line_number = 0;
  while (!text.empty()) {
    size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    ++line_number;
    if (line.rfind(kMarker, 0) == 0) {
      std::string_view rest = line.substr(kMarker.size());
      int version = 0;
      auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), version);
      if (ec != std::errc() || ptr == rest.data() || ptr == rest.data() + rest.size() ||
          *ptr != ':') {
        return InvalidArgumentError("ledger.sql line " + std::to_string(line_number) +
                                    ": expected \"-- migration N: summary\"");
      }
      int expected = static_cast<int>(blocks.size()) + 1;
      if (version != expected) {
        return InvalidArgumentError("ledger.sql line " + std::to_string(line_number) +
                                    ": migration " + std::to_string(version) + " where " +
                                    std::to_string(expected) + " was expected");
      }
      Migration m;
      m.version = version;
      m.summary = std::string(Trim(std::string_view(ptr + 1, rest.data() + rest.size() - ptr - 1)));
      blocks.push_back(std::move(m));
      continue;
    }
    if (blocks.empty()) {
      // The preamble may hold comments only: a statement outside a block would never run.
      std::string_view content = Trim(line);
      if (!content.empty() && content.rfind("--", 0) != 0) {
        return InvalidArgumentError("ledger.sql line " + std::to_string(line_number) +
                                    ": statement before the first migration block");
      }
      continue;
    }
    blocks.back().sql.append(line);
    blocks.back().sql.push_back('\n');
  }
  if (blocks.empty()) return InvalidArgumentError("ledger.sql holds no migration block");
  return blocks;
}

StatusOr<int> ApplyMigrations(sqlite::Database& db, std::string_view text) {
  ASSIGN_OR_RETURN(std::vector<Migration> blocks, ParseMigrations(text));
  int latest = blocks.back().version;
  ASSIGN_OR_RETURN(int64_t current, db.QueryInt("PRAGMA user_version"));
  if (current > latest) {
    return FailedPreconditionError("ledger " + db.path() + " has schema version " +
                                   std::to_string(current) + ", newer than this binary's " +
                                   std::to_string(latest) + "; use a newer clisc");
  }
  if (current == latest) return latest;

  ASSIGN_OR_RETURN(sqlite::Transaction tx, sqlite::Transaction::Begin(db));
  // Re-read under the write lock: another process may have migrated the file meanwhile.
  ASSIGN_OR_RETURN(current, db.QueryInt("PRAGMA user_version"));
  for (const Migration& m : blocks) {
    if (m.version <= current) continue;
    Status status = db.Exec(m.sql);
    if (!status.ok()) {
      return status.WithContext("ledger migration " + std::to_string(m.version) + " (" + m.summary +
                                ")");
    }
    LogInfo("ledger_migrated",
            {{"path", db.path()}, {"version", m.version}, {"summary", m.summary}});
  }
  // user_version lives in the file header and changes inside the transaction, with the blocks.
  RETURN_IF_ERROR(db.Exec("PRAGMA user_version = " + std::to_string(latest)));
  RETURN_IF_ERROR(tx.Commit());
  return latest;
}

}  // namespace clisc
