// Ledger: opening the file, runs, cases, workers and the event log.
#include "coordinator/ledger.h"

#include <filesystem>
#include <system_error>
#include <utility>
#include <vector>

#include "common/logging.h"
#include "coordinator/ledger_internal.h"
#include "coordinator/ledger_schema.h"
#include "coordinator/sqlite_db.h"

namespace clisc {

using ledger_internal::Payload;
using sqlite::ScopedStatement;
using sqlite::Transaction;

namespace ledger_internal {

StatusOr<TaskRecord> ReadTask(const sqlite::Statement& row, int first) {
  TaskRecord t;
  int c = first;
  t.id = row.Int(c++);
  t.run_id = row.Int(c++);
  t.task_key = row.Text(c++);
  t.stage = row.Text(c++);
  t.case_id = row.OptionalText(c++);
  t.round = static_cast<int>(row.Int(c++));
  t.role = row.Text(c++);
  t.params_json = row.Text(c++);
  ASSIGN_OR_RETURN(t.state, ParseTaskState(row.Text(c++)));
  t.attempt = static_cast<int>(row.Int(c++));
  t.attempt_base = static_cast<int>(row.Int(c++));
  t.max_attempts = static_cast<int>(row.Int(c++));
  t.not_before_ms = row.Int(c++);
  t.lease_worker = row.OptionalText(c++);
  t.lease_deadline_ms = row.OptionalInt(c++);
  t.outputs_json = row.OptionalText(c++);
  t.error_code = row.OptionalText(c++);
  t.error_message = row.OptionalText(c++);
  t.created_ms = row.Int(c++);
  t.updated_ms = row.Int(c++);
  t.finished_ms = row.OptionalInt(c++);
  return t;
}

}  // namespace ledger_internal

namespace {

// A reader must not migrate, so it can only trust a file written by exactly this schema.
StatusOr<std::unique_ptr<sqlite::Database>> OpenForReading(const std::string& path,
                                                           const LedgerOptions& options,
                                                           int* schema_version) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return NotFoundError("ledger file " + path + " does not exist");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<sqlite::Database> db, sqlite::Database::OpenReadOnly(path));
  db->SetBusyTimeout(options.busy_timeout_ms);
  std::string_view migrations =
      options.migrations_sql.has_value() ? *options.migrations_sql : EmbeddedLedgerSql();
  ASSIGN_OR_RETURN(std::vector<Migration> blocks, ParseMigrations(migrations));
  int expected = blocks.back().version;
  ASSIGN_OR_RETURN(int64_t version, db->QueryInt("PRAGMA user_version"));
  if (version != expected) {
    std::string advice = version > expected
                             ? "use a newer clisc"
                             : "let this build's coordinator open it once to migrate it";
    return FailedPreconditionError("ledger " + path + " has schema version " +
                                   std::to_string(version) + " but this clisc reads version " +
                                   std::to_string(expected) + " only; " + advice);
  }
  *schema_version = expected;
  return db;
}

}  // namespace

StatusOr<std::unique_ptr<Ledger>> Ledger::Open(const std::string& path, const Clock* clock,
                                               const LedgerOptions& options) {
  if (clock == nullptr) return InvalidArgumentError("Ledger::Open needs a clock");
  if (options.read_only) {
    int version = 0;
    ASSIGN_OR_RETURN(std::unique_ptr<sqlite::Database> db, OpenForReading(path, options, &version));
    return std::unique_ptr<Ledger>(new Ledger(std::move(db), clock, version));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<sqlite::Database> db, sqlite::Database::Open(path, true));
  db->SetBusyTimeout(options.busy_timeout_ms);

  // WAL: readers (status queries from other processes) never block the coordinator's writes,
  // and a commit appends to the log instead of rewriting pages.
  {
    ASSIGN_OR_RETURN(ScopedStatement mode, db->Prepare("PRAGMA journal_mode = WAL"));
    ASSIGN_OR_RETURN(bool row, mode->Step());
    std::string journal = row ? mode->Text(0) : "";
    if (journal != "wal") {
      return FailedPreconditionError("ledger " + path + " cannot use WAL (journal_mode=" + journal +
                                     "); keep the ledger on a local file system");
    }
  }
  // NORMAL vs FULL: see LedgerOptions::sync_full.
  RETURN_IF_ERROR(
      db->Exec(options.sync_full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL"));
  RETURN_IF_ERROR(db->Exec("PRAGMA foreign_keys = ON"));

  std::string_view migrations =
      options.migrations_sql.has_value() ? *options.migrations_sql : EmbeddedLedgerSql();
  ASSIGN_OR_RETURN(int version, ApplyMigrations(*db, migrations));
  return std::unique_ptr<Ledger>(new Ledger(std::move(db), clock, version));
}

Ledger::Ledger(std::unique_ptr<sqlite::Database> db, const Clock* clock, int schema_version)
    : db_(std::move(db)), clock_(clock), schema_version_(schema_version) {}

Ledger::~Ledger() = default;

Status Ledger::AppendEvent(std::optional<RunId> run, std::string_view kind,
                           std::optional<TaskId> task, std::optional<std::string_view> worker,
                           const std::string& payload_json) {
  ASSIGN_OR_RETURN(ScopedStatement insert,
                   db_->Prepare("INSERT INTO events (time_ms, run_id, kind, task_id, worker_id, "
                                "payload_json) VALUES (?, ?, ?, ?, ?, ?)"));
  insert->Bind(1, clock_->NowMs());
  insert->Bind(2, run);
  insert->Bind(3, kind);
  insert->Bind(4, task);
  if (worker.has_value()) {
    insert->Bind(5, *worker);
  } else {
    insert->Bind(5, nullptr);
  }
  insert->Bind(6, payload_json);
  return insert->Run();
}

// ---- Runs -------------------------------------------------------------------------------------

StatusOr<RunId> Ledger::OpenRun(std::string_view name, std::string_view config_yaml,
                                std::string_view config_fingerprint) {
  if (name.empty()) return InvalidArgumentError("a run needs a name");
  int64_t now = clock_->NowMs();
  ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(*db_));
  ASSIGN_OR_RETURN(std::optional<RunId> existing, FindRun(name));
  RunId id = 0;
  if (!existing.has_value()) {
    ASSIGN_OR_RETURN(ScopedStatement insert,
                     db_->Prepare("INSERT INTO runs (name, config_yaml, config_fingerprint, state, "
                                  "created_ms, updated_ms) VALUES (?, ?, ?, 'running', ?, ?)"));
    insert->BindAll(name, config_yaml, config_fingerprint, now, now);
    RETURN_IF_ERROR(insert->Run());
    id = db_->LastInsertRowId();
    RETURN_IF_ERROR(AppendEvent(id, "run_created", std::nullopt, std::nullopt,
                                Payload({{"name", name}, {"fingerprint", config_fingerprint}})));
  } else {
    id = *existing;
    ASSIGN_OR_RETURN(RunRecord run, GetRun(id));
    if (run.config_fingerprint != config_fingerprint) {
      ASSIGN_OR_RETURN(ScopedStatement update,
                       db_->Prepare("UPDATE runs SET config_yaml = ?, config_fingerprint = ?, "
                                    "updated_ms = ? WHERE id = ?"));
      update->BindAll(config_yaml, config_fingerprint, now, id);
      RETURN_IF_ERROR(update->Run());
      RETURN_IF_ERROR(
          AppendEvent(id, "run_reconfigured", std::nullopt, std::nullopt,
                      Payload({{"from", run.config_fingerprint}, {"to", config_fingerprint}})));
    }
    RETURN_IF_ERROR(ReopenRunIfFinished(id, now));
  }
  RETURN_IF_ERROR(tx.Commit());
  return id;
}

StatusOr<RunRecord> Ledger::GetRun(RunId id) {
  ASSIGN_OR_RETURN(ScopedStatement q,
                   db_->Prepare("SELECT id, name, config_yaml, config_fingerprint, state, "
                                "state_reason, created_ms, updated_ms FROM runs WHERE id = ?"));
  q->Bind(1, id);
  ASSIGN_OR_RETURN(bool row, q->Step());
  if (!row) return NotFoundError("no run " + std::to_string(id) + " in the ledger");
  RunRecord r;
  r.id = q->Int(0);
  r.name = q->Text(1);
  r.config_yaml = q->Text(2);
  r.config_fingerprint = q->Text(3);
  ASSIGN_OR_RETURN(r.state, ParseRunState(q->Text(4)));
  r.state_reason = q->Text(5);
  r.created_ms = q->Int(6);
  r.updated_ms = q->Int(7);
  return r;
}

StatusOr<std::optional<RunId>> Ledger::FindRun(std::string_view name) {
  ASSIGN_OR_RETURN(ScopedStatement q, db_->Prepare("SELECT id FROM runs WHERE name = ?"));
  q->Bind(1, name);
  ASSIGN_OR_RETURN(bool row, q->Step());
  if (!row) return std::optional<RunId>();
  return std::optional<RunId>(q->Int(0));
}

Status Ledger::SetRunState(RunId run, RunState state, std::string_view reason) {
  ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(*db_));
  ASSIGN_OR_RETURN(RunRecord current, GetRun(run));
  if (current.state != state) {
    ASSIGN_OR_RETURN(ScopedStatement update,
                     db_->Prepare("UPDATE runs SET state = ?, state_reason = ?, updated_ms = ? "
                                  "WHERE id = ?"));
    update->BindAll(RunStateName(state), reason, clock_->NowMs(), run);
    RETURN_IF_ERROR(update->Run());
    RETURN_IF_ERROR(AppendEvent(run, "run_state", std::nullopt, std::nullopt,
                                Payload({{"from", RunStateName(current.state)},
                                         {"to", RunStateName(state)},
                                         {"reason", reason}})));
  }
  return tx.Commit();
}

Status Ledger::ReopenRunIfFinished(RunId run, int64_t now) {
  ASSIGN_OR_RETURN(RunRecord current, GetRun(run));
  if (current.state == RunState::kRunning) return OkStatus();
  ASSIGN_OR_RETURN(ScopedStatement update,
                   db_->Prepare("UPDATE runs SET state = 'running', state_reason = NULL, "
                                "updated_ms = ? WHERE id = ?"));
  update->BindAll(now, run);
  RETURN_IF_ERROR(update->Run());
  return AppendEvent(run, "run_state", std::nullopt, std::nullopt,
                     Payload({{"from", RunStateName(current.state)}, {"to", "running"}}));
}

// ---- Cases ------------------------------------------------------------------------------------

Status Ledger::AddCases(RunId run, const std::vector<std::string>& case_ids) {
  int64_t now = clock_->NowMs();
  ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(*db_));
  ASSIGN_OR_RETURN(ScopedStatement insert,
                   db_->Prepare("INSERT OR IGNORE INTO cases (run_id, case_id, state, updated_ms) "
                                "VALUES (?, ?, 'active', ?)"));
  for (const std::string& id : case_ids) {
    insert->BindAll(run, id, now);
    RETURN_IF_ERROR(insert->Run());
    insert->Reset();
  }
  return tx.Commit();
}

StatusOr<GraphEffects> Ledger::ExcludeCase(RunId run, std::string_view case_id,
                                           std::string_view reason) {
  int64_t now = clock_->NowMs();
  GraphEffects effects;
  ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(*db_));
  ASSIGN_OR_RETURN(ScopedStatement upsert,
                   db_->Prepare("INSERT INTO cases (run_id, case_id, state, excluded_reason, "
                                "updated_ms) VALUES (?1, ?2, 'excluded', ?3, ?4) "
                                "ON CONFLICT (run_id, case_id) DO UPDATE SET state = 'excluded', "
                                "excluded_reason = ?3, excluded_by_task = NULL, updated_ms = ?4 "
                                "WHERE state = 'active'"));
  upsert->BindAll(run, case_id, reason, now);
  RETURN_IF_ERROR(upsert->Run());
  if (db_->Changes() > 0) {
    effects.excluded_cases.emplace_back(case_id);
    RETURN_IF_ERROR(AppendEvent(run, "case_excluded", std::nullopt, std::nullopt,
                                Payload({{"case", case_id}, {"reason", reason}})));
  }
  bool changed = false;
  RETURN_IF_ERROR(PropagateBlocks(run, now, &effects, &changed));
  RETURN_IF_ERROR(tx.Commit());
  return effects;
}

// ---- Workers ----------------------------------------------------------------------------------

Status Ledger::UpsertWorker(const WorkerRecord& worker) {
  if (worker.id.empty()) return InvalidArgumentError("a worker needs an id");
  if (worker.slots < 1) return InvalidArgumentError("worker " + worker.id + " has no slots");
  std::string roles;
  for (const std::string& role : worker.roles) {
    if (!roles.empty()) roles += ",";
    roles += role;
  }
  int64_t now = clock_->NowMs();
  ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(*db_));
  ASSIGN_OR_RETURN(ScopedStatement upsert,
                   db_->Prepare("INSERT INTO workers (id, roles, device, slots, hostname, "
                                "first_seen_ms, last_seen_ms, state) VALUES "
                                "(?1, ?2, ?3, ?4, ?5, ?6, ?6, 'alive') ON CONFLICT (id) DO UPDATE "
                                "SET roles = ?2, device = ?3, slots = ?4, hostname = ?5, "
                                "last_seen_ms = ?6, state = 'alive'"));
  upsert->BindAll(worker.id, roles, worker.device, worker.slots, worker.hostname, now);
  RETURN_IF_ERROR(upsert->Run());
  RETURN_IF_ERROR(AppendEvent(std::nullopt, "worker_registered", std::nullopt, worker.id,
                              Payload({{"roles", worker.roles},
                                       {"device", worker.device},
                                       {"slots", worker.slots},
                                       {"hostname", worker.hostname}})));
  return tx.Commit();
}

Status Ledger::SetWorkerState(std::string_view worker_id, WorkerState state,
                              std::string_view reason) {
  int64_t now = clock_->NowMs();
  ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(*db_));
  ASSIGN_OR_RETURN(ScopedStatement update,
                   db_->Prepare("UPDATE workers SET state = ?, last_seen_ms = MAX(last_seen_ms, ?) "
                                "WHERE id = ? AND state <> ?"));
  update->BindAll(WorkerStateName(state), now, worker_id, WorkerStateName(state));
  RETURN_IF_ERROR(update->Run());
  if (db_->Changes() > 0) {
    RETURN_IF_ERROR(AppendEvent(std::nullopt,
                                std::string("worker_") + std::string(WorkerStateName(state)),
                                std::nullopt, worker_id, Payload({{"reason", reason}})));
  }
  return tx.Commit();
}

Status Ledger::TouchWorker(std::string_view worker_id) {
  ASSIGN_OR_RETURN(ScopedStatement update,
                   db_->Prepare("UPDATE workers SET last_seen_ms = ? WHERE id = ?"));
  update->BindAll(clock_->NowMs(), worker_id);
  return update->Run();
}

}  // namespace clisc
