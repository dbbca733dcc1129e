#include "tools/cli/request_options.h"

#include <algorithm>
#include <map>
#include <memory>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "engine/model/chat_template.h"
#include "engine/model/prompt_encoding.h"

namespace kvserve::cli {
namespace {

// The --kv-* flags, one per KvPolicyOptions field (research/fastkv.md §6, research/freekv.md).
void AddKvPolicyOptions(CLI::App& app, KvPolicyOptions& kv) {
  app.add_option("--kv-policy", kv.name,
                 "KV cache policy: full, snapkv, fastkv, quest, freekv, fastkv_freekv")
      ->capture_default_str();
  app.add_option("--kv-window", kv.window, "snapkv/fastkv: observation window, always kept")
      ->capture_default_str();
  const std::map<std::string, ScorePooling> pooling = {{"max", ScorePooling::kMax},
                                                       {"avg", ScorePooling::kAvg}};
  app.add_option("--kv-pool", kv.pool, "snapkv/fastkv: window-score pooling, max or avg")
      ->transform(CLI::CheckedTransformer(pooling, CLI::ignore_case));
  app.add_option("--kv-pool-kernel", kv.pool_kernel, "snapkv/fastkv: pooling kernel (odd)")
      ->capture_default_str();
  app.add_option("--kv-budget", kv.budget,
                 "snapkv/fastkv: constant KV budget per layer in tokens, window included (0: "
                 "--kv-retain-rate); quest/freekv: GPU tokens per layer, sink and recent included "
                 "(0: 2048)")
      ->capture_default_str();
  app.add_option("--kv-retain-rate", kv.retain_rate,
                 "snapkv/fastkv: fraction of the prompt each layer's cache keeps (rho)")
      ->capture_default_str();
  app.add_option("--kv-tsp-layer", kv.tsp_layer,
                 "fastkv: token-selective propagation layer; -1: n_layers / 2 - 1")
      ->capture_default_str();
  app.add_option("--kv-tsp-rate", kv.tsp_rate,
                 "fastkv: fraction of the prompt propagated past the TSP layer (tau)")
      ->capture_default_str();
  app.add_option("--kv-tsp-len", kv.tsp_len,
                 "fastkv: constant number of tokens propagated; 0: --kv-tsp-rate")
      ->capture_default_str();
  app.add_option("--kv-page-size", kv.page_size,
                 "quest/freekv: KV page size in tokens (the selection unit)")
      ->capture_default_str();
  app.add_option("--kv-sink", kv.sink, "quest/freekv: sink tokens always on the GPU")
      ->capture_default_str();
  app.add_option("--kv-recent", kv.recent,
                 "quest/freekv: recent tokens always on the GPU (a rotating window)")
      ->capture_default_str();
  app.add_option("--kv-tau", kv.tau,
                 "freekv: query cosine below which a KV head is corrected (1: always)")
      ->capture_default_str();
}

// The flag behind a ValidateKvPolicyOptions message, which starts "kv OPTION":
// "kv tsp_rate must ..." -> "--kv-tsp-rate".
std::string KvFlagFor(std::string_view message) {
  std::string_view option = message.substr(message.rfind("kv ", 0) == 0 ? 3 : 0);
  option = option.substr(0, option.find(' '));
  std::string flag = "--kv-" + std::string(option);
  std::replace(flag.begin(), flag.end(), '_', '-');
  return flag;
}

// The policy must exist for this model and its options be valid; the error names the flag.
absl::Status CheckKvPolicy(const KvPolicyOptions& kv, const ModelConfig& config) {
  absl::StatusOr<std::unique_ptr<KvPolicy>> policy = CreateKvPolicy(kv, config);
  if (policy.ok()) return absl::OkStatus();
  const std::string message(policy.status().message());
  return absl::Status(policy.status().code(), absl::StrCat(KvFlagFor(message), ": ", message));
}

}  // namespace

void AddRequestOptions(CLI::App& app, RequestOptions& o) {
  auto* prompt = app.add_option("--prompt", o.prompt, "prompt text (the model's BOS is added)");
  auto* ids = app.add_option("--prompt-ids", o.prompt_ids, "prompt token ids, used as given")
                  ->delimiter(',');
  prompt->excludes(ids);
  app.add_flag("--chat", o.chat, "apply the model's chat template to --prompt as a user message");
  app.add_option("--system", o.system, "system message for --chat");
  app.add_option("--max-tokens", o.max_tokens, "tokens to generate at most")->capture_default_str();
  app.add_option("--temperature", o.sampling.temperature, "0 = greedy")->capture_default_str();
  app.add_option("--top-k", o.sampling.top_k, "0 = off");
  app.add_option("--top-p", o.sampling.top_p, "1 = off");
  app.add_option("--min-p", o.sampling.min_p, "0 = off");
  app.add_option("--repetition-penalty", o.sampling.repetition_penalty);
  app.add_option("--presence-penalty", o.sampling.presence_penalty);
  app.add_option("--frequency-penalty", o.sampling.frequency_penalty);
  app.add_option("--seed", o.seed, "sampling seed (same seed, same output)");
  app.add_option("--stop-token-ids", o.stop_token_ids, "extra stop token ids")->delimiter(',');
  app.add_flag("--ignore-eos", o.ignore_eos, "keep generating past EOS");
  AddKvPolicyOptions(app, o.kv_policy);
}

absl::StatusOr<GenerationRequest> BuildRequest(const RequestOptions& o, const LoadedModel& model) {
  if (auto s = CheckKvPolicy(o.kv_policy, model.config); !s.ok()) return s;
  GenerationRequest r;
  r.max_new_tokens = o.max_tokens;
  r.sampling = o.sampling;
  if (o.seed >= 0) r.sampling.seed = static_cast<uint64_t>(o.seed);
  r.stop_token_ids = o.stop_token_ids;
  r.ignore_eos = o.ignore_eos;
  r.kv_policy = o.kv_policy;
  if (!o.prompt_ids.empty()) {
    if (o.chat) return absl::InvalidArgumentError("--chat needs --prompt text, not --prompt-ids");
    r.prompt = o.prompt_ids;
    return r;
  }
  if (o.prompt.empty()) return absl::InvalidArgumentError("give --prompt or --prompt-ids");
  const Tokenizer* tok = model.tokenizer.get();
  if (tok == nullptr) {
    return absl::InvalidArgumentError(
        "--prompt: this model has no tokenizer (synthetic, or llama2.c without --tokenizer); use "
        "--prompt-ids");
  }
  std::string text = o.prompt;
  if (o.chat) {
    const ChatTemplate chat(model.chat_template);
    std::vector<ChatMessage> messages;
    if (!o.system.empty()) messages.push_back({"system", o.system});
    messages.push_back({"user", o.prompt});
    auto formatted = chat.Apply(messages, /*add_generation_prompt=*/true);
    if (!formatted.ok()) return formatted.status();
    text = *std::move(formatted);
  }
  r.prompt = EncodePromptText(*tok, text);
  return r;
}

}  // namespace kvserve::cli
