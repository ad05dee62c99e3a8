-- The clisc ledger: the durable record of every run, task, attempt, artifact and worker, and the
-- source of truth a restarted coordinator resumes from.
--
-- Migrations: a line "-- migration N: summary" opens block N (N = 1, 2, 3, ... in order). The
-- ledger applies, in one transaction, every block whose N is above PRAGMA user_version and then
-- sets user_version to the last N. A released block is never edited; changes go in a new block.
--
-- Conventions: times are INTEGER milliseconds since the Unix epoch (*_ms); states are lower-case
-- words checked by CHECK constraints; tables are STRICT so a wrongly typed bind fails loudly.
-- The state checks are spelled as OR chains, not IN lists: SQLite evaluates a constant IN list
-- in a CHECK through a temporary b-tree built on every row written, which cost a quarter of the
-- CPU of each task transition.

-- migration 1: runs, cases, tasks, dependencies, attempts, artifacts, events, workers
CREATE TABLE runs (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  config_yaml TEXT NOT NULL,
  config_fingerprint TEXT NOT NULL,
  state TEXT NOT NULL DEFAULT 'running'
    CHECK (state = 'running' OR state = 'succeeded' OR state = 'failed' OR state = 'cancelled'),
  state_reason TEXT,
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL
) STRICT;

-- One row per case of a run. A case is excluded when one of its tasks fails terminally (or at
-- ingest); excluded_by_task lets a later retry or invalidation of that task restore the case.
CREATE TABLE cases (
  run_id INTEGER NOT NULL REFERENCES runs(id),
  case_id TEXT NOT NULL,
  state TEXT NOT NULL DEFAULT 'active' CHECK (state = 'active' OR state = 'excluded'),
  excluded_reason TEXT,
  excluded_by_task INTEGER REFERENCES tasks(id),
  updated_ms INTEGER NOT NULL,
  PRIMARY KEY (run_id, case_id)
) STRICT, WITHOUT ROWID;

-- task_key = stage + case + round + hash(stage config + input checksums): a re-plan with the same
-- key finds the finished task and reuses it.
-- attempt is the number of the latest lease and never decreases: it is the fencing token a
-- result must carry. The current retry budget is max_attempts leases counted from attempt_base
-- (a retry of a failed task or an invalidation starts a fresh budget without reusing numbers).
CREATE TABLE tasks (
  id INTEGER PRIMARY KEY,
  run_id INTEGER NOT NULL REFERENCES runs(id),
  task_key TEXT NOT NULL,
  stage TEXT NOT NULL,
  case_id TEXT,
  round INTEGER NOT NULL DEFAULT 0,
  role TEXT NOT NULL,
  params_json TEXT NOT NULL DEFAULT '{}',
  state TEXT NOT NULL DEFAULT 'pending'
    CHECK (state = 'pending' OR state = 'leased' OR state = 'succeeded' OR state = 'failed'
           OR state = 'blocked' OR state = 'cancelled'),
  attempt INTEGER NOT NULL DEFAULT 0 CHECK (attempt >= 0),
  attempt_base INTEGER NOT NULL DEFAULT 0 CHECK (attempt_base >= 0),
  max_attempts INTEGER NOT NULL CHECK (max_attempts >= 1),
  not_before_ms INTEGER NOT NULL DEFAULT 0,
  lease_worker TEXT,
  lease_deadline_ms INTEGER,
  outputs_json TEXT,
  error_code TEXT,
  error_message TEXT,
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  finished_ms INTEGER,
  UNIQUE (run_id, task_key),
  FOREIGN KEY (run_id, case_id) REFERENCES cases(run_id, case_id)
) STRICT;
CREATE INDEX tasks_by_run_state ON tasks(run_id, state);
CREATE INDEX tasks_by_case ON tasks(run_id, case_id) WHERE case_id IS NOT NULL;

CREATE TABLE task_deps (
  task_id INTEGER NOT NULL REFERENCES tasks(id),
  depends_on INTEGER NOT NULL REFERENCES tasks(id),
  PRIMARY KEY (task_id, depends_on),
  CHECK (task_id <> depends_on)
) STRICT, WITHOUT ROWID;
-- Walks from a task to its dependents (blocking, invalidation, cancellation).
CREATE INDEX task_deps_by_dependency ON task_deps(depends_on, task_id);

-- One row per lease. outcome: running (lease held), succeeded, failed (error_* says why), lost
-- (lease expired: the worker died or stopped answering), revoked (the task was cancelled,
-- blocked or invalidated while leased; a late result is fenced off).
CREATE TABLE attempts (
  task_id INTEGER NOT NULL REFERENCES tasks(id),
  attempt INTEGER NOT NULL CHECK (attempt >= 1),
  worker_id TEXT NOT NULL,
  started_ms INTEGER NOT NULL,
  ended_ms INTEGER,
  outcome TEXT NOT NULL DEFAULT 'running'
    CHECK (outcome = 'running' OR outcome = 'succeeded' OR outcome = 'failed'
           OR outcome = 'lost' OR outcome = 'revoked'),
  error_code TEXT,
  error_message TEXT,
  PRIMARY KEY (task_id, attempt)
) STRICT, WITHOUT ROWID;

-- Outputs of the succeeded attempt, relative to the artifact store root. An invalidated task
-- loses its rows; the next success writes them again.
CREATE TABLE artifacts (
  task_id INTEGER NOT NULL REFERENCES tasks(id),
  name TEXT NOT NULL,
  relative_path TEXT NOT NULL,
  size_bytes INTEGER NOT NULL CHECK (size_bytes >= 0),
  sha256 TEXT NOT NULL CHECK (length(sha256) = 64),
  attempt INTEGER NOT NULL,
  created_ms INTEGER NOT NULL,
  PRIMARY KEY (task_id, name)
) STRICT, WITHOUT ROWID;

-- Append-only history; seq orders everything that happened (the Redis mirror and `clisc status`
-- tail it). A plain rowid key: SQLite reuses a rowid only after the largest one is deleted, and
-- events are never deleted from the top (pruning, if ever, drops the oldest), so seq never goes
-- back; AUTOINCREMENT would add a write to sqlite_sequence to every event.
CREATE TABLE events (
  seq INTEGER PRIMARY KEY,
  time_ms INTEGER NOT NULL,
  run_id INTEGER,
  kind TEXT NOT NULL,
  task_id INTEGER,
  worker_id TEXT,
  payload_json TEXT NOT NULL DEFAULT '{}'
) STRICT;
CREATE INDEX events_by_task ON events(task_id) WHERE task_id IS NOT NULL;

CREATE TABLE workers (
  id TEXT PRIMARY KEY,
  roles TEXT NOT NULL,
  device TEXT NOT NULL DEFAULT '',
  slots INTEGER NOT NULL CHECK (slots >= 1),
  hostname TEXT NOT NULL DEFAULT '',
  first_seen_ms INTEGER NOT NULL,
  last_seen_ms INTEGER NOT NULL,
  state TEXT NOT NULL CHECK (state = 'alive' OR state = 'dead' OR state = 'gone')
) STRICT, WITHOUT ROWID;
