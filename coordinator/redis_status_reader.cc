#include "coordinator/redis_status_reader.h"

#include <algorithm>
#include <charconv>
#include <memory>
#include <utility>

#include "coordinator/live_state_keys.h"
#include "coordinator/redis_client.h"

namespace clisc {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

// A connection whose every later read and write also ends by the caller's deadline.
StatusOr<std::unique_ptr<RedisClient>> ConnectUntil(const RedisEndpoint& endpoint,
                                                    milliseconds timeout) {
  auto deadline = steady_clock::now() + timeout;
  ASSIGN_OR_RETURN(std::unique_ptr<RedisClient> client, RedisClient::Connect(endpoint, timeout));
  auto left = std::chrono::duration_cast<milliseconds>(deadline - steady_clock::now());
  RETURN_IF_ERROR(client->SetTimeout(std::max(milliseconds(1), left)));
  return client;
}

StatusOr<RedisReply> Run(RedisClient& client, const std::vector<std::string>& argv) {
  ASSIGN_OR_RETURN(RedisReply reply, client.Command(argv));
  if (reply.is_error())
    return RedisErrorReplyStatus(reply, argv[0] + " " + argv[1], client.endpoint());
  return reply;
}

}  // namespace

StatusOr<MirroredStatus> ReadMirroredStatus(const std::string& redis_url, std::string_view run_name,
                                            std::string_view key_prefix, milliseconds timeout) {
  ASSIGN_OR_RETURN(RedisEndpoint endpoint, ParseRedisUrl(redis_url));
  ASSIGN_OR_RETURN(std::unique_ptr<RedisClient> client, ConnectUntil(endpoint, timeout));
  const std::string where = "redis at " + endpoint.redacted_url;
  MirroredStatus out;
  out.run_name = std::string(run_name);
  if (out.run_name.empty()) {
    std::string key = LiveStateKeys::CurrentRun(key_prefix);
    ASSIGN_OR_RETURN(RedisReply current, Run(*client, {"GET", key}));
    if (current.type != RedisReply::Type::kString || current.str.empty()) {
      return NotFoundError(where + " has no current run (" + key +
                           " is not set): no coordinator mirrors its state there with prefix '" +
                           std::string(key_prefix) + "'");
    }
    out.run_name = std::move(current.str);
  }
  LiveStateKeys keys(key_prefix, out.run_name);
  ASSIGN_OR_RETURN(RedisReply values, Run(*client, {"MGET", keys.status(), keys.status_ms()}));
  if (values.type != RedisReply::Type::kArray || values.elements.size() != 2) {
    return FailedPreconditionError(where + ": unexpected MGET reply " + values.Describe());
  }
  const RedisReply& status = values.elements[0];
  if (status.type != RedisReply::Type::kString) {
    return NotFoundError(where + " has no status for run '" + out.run_name + "' (" + keys.status() +
                         " is not set)");
  }
  out.status_json = status.str;
  const std::string& ms = values.elements[1].str;
  int64_t mirrored_ms = 0;
  auto [end, ec] = std::from_chars(ms.data(), ms.data() + ms.size(), mirrored_ms);
  if (ec == std::errc() && end == ms.data() + ms.size()) out.mirrored_ms = mirrored_ms;
  return out;
}

StatusOr<std::vector<std::string>> ListMirroredRuns(const std::string& redis_url,
                                                    std::string_view key_prefix,
                                                    milliseconds timeout) {
  ASSIGN_OR_RETURN(RedisEndpoint endpoint, ParseRedisUrl(redis_url));
  ASSIGN_OR_RETURN(std::unique_ptr<RedisClient> client, ConnectUntil(endpoint, timeout));
  ASSIGN_OR_RETURN(RedisReply members, Run(*client, {"SMEMBERS", LiveStateKeys::Runs(key_prefix)}));
  std::vector<std::string> runs;
  for (RedisReply& member : members.elements) runs.push_back(std::move(member.str));
  std::sort(runs.begin(), runs.end());
  return runs;
}

}  // namespace clisc
