// Ledger schema migrations. schemas/ledger.sql (embedded as kLedgerSqlText) holds numbered
// blocks, each opened by a line "-- migration N: summary"; PRAGMA user_version records the last
// block applied to a file. Opening a ledger applies the newer blocks in one transaction, so a
// file is always at some block boundary, never halfway through one.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace clisc {

namespace sqlite {
class Database;
}

struct Migration {
  int version = 0;
  std::string summary;
  std::string sql;
};

// The schema text compiled into this binary (schemas/ledger.sql).
std::string_view EmbeddedLedgerSql();

// Splits migration text into blocks. Versions must run 1, 2, 3, ... without gaps.
StatusOr<std::vector<Migration>> ParseMigrations(std::string_view text);

// Applies the blocks above the file's user_version and returns the resulting version. A file
// written by a newer binary (user_version above the last block) is FAILED_PRECONDITION.
StatusOr<int> ApplyMigrations(sqlite::Database& db, std::string_view text);

}  // namespace clisc
