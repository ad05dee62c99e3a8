#include "coordinator/live_flush.h"

#include <nlohmann/json.hpp>
#include <utility>

namespace clisc {
namespace {

std::vector<std::string> EventEntry(const std::string& stream, size_t max_len,
                                    const EventRecord& e) {
  std::vector<std::string> xadd = {"XADD", stream};
  if (max_len > 0) {
    // '~' lets Redis trim whole macro nodes: O(1) instead of an exact trim on every add.
    xadd.insert(xadd.end(), {"MAXLEN", "~", std::to_string(max_len)});
  }
  const std::pair<std::string, std::string> fields[] = {
      {"seq", std::to_string(e.seq)},
      {"time_ms", std::to_string(e.time_ms)},
      {"kind", e.kind},
      {"task_id", e.task_id ? std::to_string(*e.task_id) : ""},
      {"worker_id", e.worker_id.value_or("")},
      {"payload", e.payload_json},
  };
  xadd.push_back("*");
  for (const auto& [name, value] : fields) xadd.insert(xadd.end(), {name, value});
  return xadd;
}

std::string CommandName(const std::vector<std::string>& argv) {
  std::string name = argv.empty() ? "?" : argv.front();
  if (argv.size() > 1) name += " " + argv[1];  // the key: never a secret here
  return name;
}

}  // namespace

void DiffWorkers(const WorkerEntries& written, const WorkerEntries& next, WorkerEntries* changed,
                 std::vector<std::string>* removed) {
  for (const auto& [id, json] : next) {
    auto it = written.find(id);
    if (it == written.end() || it->second != json) (*changed)[id] = json;
  }
  for (const auto& [id, json] : written) {
    if (!next.contains(id)) removed->push_back(id);
  }
}

std::vector<std::vector<std::string>> BuildFlushCommands(const LiveStateKeys& keys,
                                                         const LiveFlushContent& content) {
  std::vector<std::vector<std::string>> commands;
  commands.push_back({"MULTI"});
  commands.push_back({"SET", keys.current_run(), content.run_name});
  commands.push_back({"SADD", keys.runs(), content.run_name});
  if (content.status_json) {
    commands.push_back({"SET", keys.status(), *content.status_json});
    commands.push_back({"SET", keys.status_ms(), std::to_string(content.mirrored_ms)});
  }
  if (content.replace_workers) commands.push_back({"DEL", keys.workers()});
  if (!content.removed_workers.empty()) {
    std::vector<std::string> hdel = {"HDEL", keys.workers()};
    hdel.insert(hdel.end(), content.removed_workers.begin(), content.removed_workers.end());
    commands.push_back(std::move(hdel));
  }
  if (!content.set_workers.empty()) {
    std::vector<std::string> hset = {"HSET", keys.workers()};
    for (const auto& [id, json] : content.set_workers) hset.insert(hset.end(), {id, json});
    commands.push_back(std::move(hset));
  }
  if (content.worker_ttl_ms > 0) {
    commands.push_back({"PEXPIRE", keys.workers(), std::to_string(content.worker_ttl_ms)});
  }
  if (content.reset_events) commands.push_back({"DEL", keys.events()});
  for (const EventRecord& e : content.events) {
    commands.push_back(EventEntry(keys.events(), content.stream_max_len, e));
  }
  if (content.events_seq) {
    commands.push_back({"SET", keys.events_seq(), std::to_string(*content.events_seq)});
  }
  commands.push_back({"EXEC"});
  nlohmann::json notice = {{"run", content.run_name},
                           {"mirrored_ms", content.mirrored_ms},
                           {"snapshot_ms", content.snapshot_ms}};
  if (content.events_seq) notice["events_seq"] = *content.events_seq;
  commands.push_back({"PUBLISH", keys.notify(), notice.dump()});
  return commands;
}

Status CheckFlushReplies(const std::vector<std::vector<std::string>>& commands,
                         const std::vector<RedisReply>& replies, const RedisEndpoint& endpoint) {
  if (commands.size() < 3 || replies.size() != commands.size()) {
    return InternalError("redis at " + endpoint.redacted_url + ": " +
                         std::to_string(replies.size()) + " replies to a flush of " +
                         std::to_string(commands.size()) + " commands");
  }
  const size_t exec = commands.size() - 2;
  if (replies[0].is_error()) return RedisErrorReplyStatus(replies[0], "MULTI", endpoint);
  // A command refused while queueing (wrong arity, ACL) aborts the whole transaction.
  for (size_t i = 1; i < exec; ++i) {
    if (replies[i].is_error()) {
      return RedisErrorReplyStatus(replies[i], CommandName(commands[i]), endpoint);
    }
  }
  const RedisReply& results = replies[exec];
  if (results.is_error()) return RedisErrorReplyStatus(results, "EXEC", endpoint);
  if (results.type != RedisReply::Type::kArray || results.elements.size() != exec - 1) {
    return FailedPreconditionError("redis at " + endpoint.redacted_url +
                                   ": unexpected EXEC reply " + results.Describe());
  }
  for (size_t i = 0; i < results.elements.size(); ++i) {
    if (results.elements[i].is_error()) {
      return RedisErrorReplyStatus(results.elements[i], CommandName(commands[i + 1]), endpoint);
    }
  }
  // A failed PUBLISH loses one wake-up of the readers, not data: not worth failing the flush.
  return OkStatus();
}

}  // namespace clisc
