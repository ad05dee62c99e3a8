// Task identity. A task's key is stage + case + round + a digest of (stage config, inputs), where
// the inputs are the checksums of the files it reads or, for outputs not produced yet, the keys
// of the upstream tasks that will produce them. Keys therefore chain: changing one stage's config
// changes that stage's keys and every key downstream, and nothing upstream, so a re-plan redoes
// exactly the affected tasks.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace clisc {

struct TaskKeyParts {
  std::string stage;
  std::optional<std::string> case_id;  // nullopt for global tasks (reduce, training)
  int round = 0;
  // The stage's configuration in a canonical form (e.g. its YAML section re-emitted with sorted
  // keys); any change here changes the key.
  std::string stage_config;
  // Checksums of input files or keys of upstream tasks, in the order the task consumes them.
  std::vector<std::string> inputs;
};

// "<stage>/<case id or '-'>/r<round>/<32 hex digits>", e.g. "cam/BraTS20_001/r0/5f0c...": readable
// in logs, and the digest (the first 128 bits of a SHA-256 over length-prefixed fields) makes it
// unique per config and inputs.
std::string MakeTaskKey(const TaskKeyParts& parts);

}  // namespace clisc
