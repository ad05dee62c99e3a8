#include "coordinator/live_mirror_worker.h"

#include <algorithm>
#include <charconv>
#include <utility>

#include "common/logging.h"

namespace clisc {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr milliseconds kFirstBackoff(100);
// Stop() must not hang on a slow or absent Redis.
constexpr milliseconds kFinalFlushBudget(1000);

std::optional<int64_t> ParseSeq(const std::string& text) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < 0) {
    return std::nullopt;
  }
  return value;
}

}  // namespace

LiveMirrorWorker::LiveMirrorWorker(LiveStateMirrorOptions options, RedisEndpoint endpoint)
    : options_(std::move(options)),
      endpoint_(std::move(endpoint)),
      keys_(options_.key_prefix, options_.run_name),
      backoff_(std::min(kFirstBackoff, milliseconds(options_.reconnect_max_backoff_ms))) {}

void LiveMirrorWorker::Update(LiveSnapshot snapshot) {
  auto next = std::make_shared<const LiveSnapshot>(std::move(snapshot));
  {
    std::lock_guard<std::mutex> lock(mu_);
    latest_.swap(next);
    ++latest_version_;
  }
  // `next` now holds the previous snapshot: released here, outside the lock.
}

MirrorStats LiveMirrorWorker::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void LiveMirrorWorker::RequestStop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
}

void LiveMirrorWorker::Run() {
  while (true) {
    bool more = Tick();
    std::unique_lock<std::mutex> lock(mu_);
    if (stop_) break;
    SteadyTime wake_at = steady_clock::now();
    if (!more) {
      wake_at += milliseconds(options_.flush_interval_ms);
      if (client_ == nullptr) wake_at = std::max(wake_at, next_connect_);
    }
    if (wake_.wait_until(lock, wake_at, [this] { return stop_; })) break;
  }
  FinalFlush();
}

bool LiveMirrorWorker::Tick() {
  if (client_ == nullptr) {
    if (steady_clock::now() < next_connect_) return false;
    if (!Connect(milliseconds(options_.io_timeout_ms))) return false;
  }
  StatusOr<bool> more = Flush();
  if (!more.ok()) {
    HandleFailure(more.status());
    return false;
  }
  return *more;
}

bool LiveMirrorWorker::Connect(milliseconds timeout) {
  StatusOr<std::unique_ptr<RedisClient>> client = RedisClient::Connect(endpoint_, timeout);
  if (!client.ok()) {
    HandleFailure(client.status());
    return false;
  }
  client_ = std::move(client).value();
  backoff_ = std::min(kFirstBackoff, milliseconds(options_.reconnect_max_backoff_ms));
  // Whatever Redis holds now (another coordinator's writes, or nothing after a restart) is
  // unknown: read events_seq back and rewrite the rest.
  confirmed_seq_.reset();
  full_resync_ = true;
  last_flush_ = SteadyTime{};  // flush at once, if only to name the current run
  if (in_outage_) {
    log_resync_ = true;
  } else {
    LogInfo("redis_connected", {{"url", endpoint_.redacted_url}, {"run", options_.run_name}});
  }
  SetConnected(true, "");
  return true;
}

void LiveMirrorWorker::HandleFailure(const Status& status) {
  bool connection_lost = client_ == nullptr || !client_->healthy();
  SetConnected(!connection_lost, status.message());
  if (!connection_lost) {
    // Redis answered but refused part of the flush; some writes may have landed.
    confirmed_seq_.reset();
    full_resync_ = true;
    if (status.message() != last_flush_problem_) {
      LogWarn("redis_mirror_flush_failed", {{"url", endpoint_.redacted_url},
                                            {"run", options_.run_name},
                                            {"error", status.message()}});
      last_flush_problem_ = status.message();
    }
    return;
  }
  client_.reset();
  next_connect_ = steady_clock::now() + backoff_;
  backoff_ = std::min(backoff_ * 2, milliseconds(options_.reconnect_max_backoff_ms));
  if (in_outage_) return;
  in_outage_ = true;
  log_resync_ = false;
  outage_started_ms_ = clock_.NowMs();
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.outages;
  }
  LogWarn("redis_unavailable", {{"url", endpoint_.redacted_url},
                                {"run", options_.run_name},
                                {"reason", status.message()},
                                {"retry_max_backoff_ms", options_.reconnect_max_backoff_ms}});
}

void LiveMirrorWorker::SetConnected(bool connected, const std::string& error) {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.connected = connected;
  if (!error.empty()) stats_.last_error = error;
}

Status LiveMirrorWorker::ReadConfirmedSeq() {
  ASSIGN_OR_RETURN(RedisReply reply, client_->Command({"GET", keys_.events_seq()}));
  if (reply.is_error()) return RedisErrorReplyStatus(reply, "GET " + keys_.events_seq(), endpoint_);
  std::optional<int64_t> seq =
      reply.type == RedisReply::Type::kString ? ParseSeq(reply.str) : std::nullopt;
  if (!seq) {
    // No record of what the stream holds (Redis restarted empty, or the key was lost): rebuild
    // it, since appending could duplicate whatever is there.
    if (!reply.is_nil()) {
      LogWarn("redis_events_reset", {{"key", keys_.events_seq()},
                                     {"value", reply.Describe()},
                                     {"reason", "not a ledger seq"}});
    }
    reset_events_ = true;
    seq = 0;
  }
  confirmed_seq_ = *seq;
  check_seq_against_ledger_ = *seq > 0;
  return OkStatus();
}

Ledger* LiveMirrorWorker::OpenLedger() {
  if (ledger_ != nullptr) return ledger_.get();
  if (options_.ledger_path.empty()) return nullptr;
  LedgerOptions ledger_options;
  ledger_options.read_only = true;
  StatusOr<std::unique_ptr<Ledger>> ledger =
      Ledger::Open(options_.ledger_path, &clock_, ledger_options);
  if (!ledger.ok()) {
    LogLedgerProblemOnce(ledger.status());
    return nullptr;
  }
  ledger_ = std::move(ledger).value();
  return ledger_.get();
}

void LiveMirrorWorker::LogLedgerProblemOnce(const Status& status) {
  if (status.message() == last_ledger_problem_) return;
  last_ledger_problem_ = status.message();
  LogWarn(
      "redis_mirror_ledger_unreadable",
      {{"ledger", options_.ledger_path}, {"run", options_.run_name}, {"error", status.ToString()}});
}

void LiveMirrorWorker::CheckConfirmedSeqAgainstLedger() {
  check_seq_against_ledger_ = false;
  int64_t seq = *confirmed_seq_;
  StatusOr<std::vector<EventRecord>> at = ledger_->ListEvents(seq - 1, 1);
  if (!at.ok() || (!at->empty() && at->front().seq == seq)) return;
  LogWarn(
      "redis_events_reset",
      {{"key", keys_.events_seq()},
       {"events_seq", seq},
       {"ledger", options_.ledger_path},
       {"reason", "the ledger has no event with that seq: the stream came from another ledger"}});
  confirmed_seq_ = 0;
  reset_events_ = true;
}

LiveMirrorWorker::EventBatch LiveMirrorWorker::ReadEvents(int64_t after_seq) {
  EventBatch batch;
  Ledger* ledger = OpenLedger();
  if (ledger == nullptr) return batch;
  if (!run_id_) {
    StatusOr<std::optional<RunId>> run = ledger->FindRun(options_.run_name);
    if (!run.ok() || !run->has_value()) {
      LogLedgerProblemOnce(
          run.ok() ? NotFoundError("no run '" + options_.run_name + "' in the ledger yet")
                   : run.status());
      return batch;
    }
    run_id_ = **run;
  }
  if (check_seq_against_ledger_) {
    CheckConfirmedSeqAgainstLedger();
    after_seq = *confirmed_seq_;
  }
  int limit = static_cast<int>(std::min<size_t>(options_.max_events_per_flush, 1 << 30));
  StatusOr<std::vector<EventRecord>> events = ledger->ListEvents(after_seq, limit);
  if (!events.ok()) {
    LogLedgerProblemOnce(events.status());
    ledger_.reset();  // reopened on the next flush
    return batch;
  }
  last_ledger_problem_.clear();
  batch.available = true;
  batch.last_seq = events->empty() ? after_seq : events->back().seq;
  batch.more = events->size() == static_cast<size_t>(limit);
  for (EventRecord& e : *events) {
    // Events without a run (worker registrations) belong to whichever run is live.
    if (!e.run_id || *e.run_id == *run_id_) batch.events.push_back(std::move(e));
  }
  return batch;
}

StatusOr<bool> LiveMirrorWorker::Flush() {
  if (!confirmed_seq_) RETURN_IF_ERROR(ReadConfirmedSeq());

  std::shared_ptr<const LiveSnapshot> snapshot;
  uint64_t version = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    snapshot = latest_;
    version = latest_version_;
  }
  LiveFlushContent content;
  content.run_name = options_.run_name;
  content.mirrored_ms = clock_.NowMs();
  content.worker_ttl_ms = options_.worker_ttl_ms;
  content.stream_max_len = options_.stream_max_len;
  WorkerEntries next_workers;
  bool write_snapshot = snapshot != nullptr && (full_resync_ || version != written_version_);
  if (write_snapshot) {
    content.status_json = snapshot->status_json;
    content.snapshot_ms = snapshot->time_ms;
    for (const auto& [id, json] : snapshot->workers) next_workers[id] = json;
    if (full_resync_) {
      content.replace_workers = true;
      content.set_workers = next_workers;
    } else {
      DiffWorkers(written_workers_, next_workers, &content.set_workers, &content.removed_workers);
    }
  }

  EventBatch batch = ReadEvents(*confirmed_seq_);
  if (batch.available && (batch.last_seq != *confirmed_seq_ || reset_events_)) {
    content.events = std::move(batch.events);
    content.events_seq = batch.last_seq;
    content.reset_events = reset_events_;
  }

  // With nothing new, flush now and then anyway: it keeps the workers hash from expiring and
  // notices a dead Redis even while the run is quiet.
  milliseconds keepalive(options_.worker_ttl_ms > 0 ? options_.worker_ttl_ms / 3 : 10'000);
  bool due = steady_clock::now() - last_flush_ >= keepalive;
  if (!write_snapshot && !content.events_seq && !due) return false;

  std::vector<std::vector<std::string>> commands = BuildFlushCommands(keys_, content);
  ASSIGN_OR_RETURN(std::vector<RedisReply> replies, client_->Pipeline(commands));
  RETURN_IF_ERROR(CheckFlushReplies(commands, replies, endpoint_));

  if (write_snapshot) {
    written_version_ = version;
    written_workers_ = std::move(next_workers);
    full_resync_ = false;  // until a snapshot exists, there is nothing to replace the hash with
  }
  if (content.events_seq) confirmed_seq_ = *content.events_seq;
  if (content.reset_events) reset_events_ = false;
  last_flush_ = steady_clock::now();
  last_flush_problem_.clear();
  in_outage_ = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.connected = true;
    ++stats_.flushes;
    stats_.events_mirrored += content.events.size();
    stats_.last_event_seq = *confirmed_seq_;
  }
  if (log_resync_ && !batch.more) {
    log_resync_ = false;
    LogInfo("redis_resynced", {{"url", endpoint_.redacted_url},
                               {"run", options_.run_name},
                               {"events_seq", *confirmed_seq_},
                               {"outage_ms", clock_.NowMs() - outage_started_ms_}});
  }
  return batch.more;
}

void LiveMirrorWorker::FinalFlush() {
  auto deadline = steady_clock::now() + kFinalFlushBudget;
  milliseconds budget = std::min(kFinalFlushBudget, milliseconds(options_.io_timeout_ms));
  if (client_ == nullptr) Connect(budget);
  while (client_ != nullptr && steady_clock::now() < deadline) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - steady_clock::now());
    Status timeout = client_->SetTimeout(std::min(budget, left));
    StatusOr<bool> more = timeout.ok() ? Flush() : StatusOr<bool>(timeout);
    if (!more.ok()) {
      HandleFailure(more.status());
      break;
    }
    if (!*more) break;
  }
  MirrorStats final_stats = stats();
  LogInfo("redis_mirror_stopped", {{"url", endpoint_.redacted_url},
                                   {"run", options_.run_name},
                                   {"flushes", final_stats.flushes},
                                   {"events_mirrored", final_stats.events_mirrored},
                                   {"events_seq", final_stats.last_event_seq},
                                   {"outages", final_stats.outages}});
  client_.reset();
  ledger_.reset();
  SetConnected(false, "");
}

}  // namespace clisc
