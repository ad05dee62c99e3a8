#include "coordinator/task_key.h"

#include <string_view>

#include "common/sha256.h"

namespace clisc {

namespace {

// Length-prefixed, so ("ab", "c") and ("a", "bc") hash differently.
void AddField(Sha256& hash, std::string_view bytes) {
  hash.Update(std::to_string(bytes.size()));
  hash.Update(":");
  hash.Update(bytes);
}

}  // namespace

std::string MakeTaskKey(const TaskKeyParts& parts) {
  Sha256 hash;
  AddField(hash, parts.stage);
  AddField(hash, parts.case_id.has_value() ? "case:" + *parts.case_id : "global");
  AddField(hash, std::to_string(parts.round));
  AddField(hash, parts.stage_config);
  AddField(hash, std::to_string(parts.inputs.size()));
  for (const std::string& input : parts.inputs) AddField(hash, input);
  // 128 bits are plenty to keep a run's keys apart and keep keys short in logs.
  std::string digest = hash.FinishHex().substr(0, 32);
  return parts.stage + "/" + parts.case_id.value_or("-") + "/r" + std::to_string(parts.round) +
         "/" + digest;
}

}  // namespace clisc
