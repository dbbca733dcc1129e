#include "tools/cli/request_options.h"

#include "engine/base/status_macros.h"
#include "engine/model/chat_template.h"
#include "engine/model/prompt_encoding.h"

namespace kvserve::cli {

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
  AddKvPolicyFlags(app, o.kv);
}

absl::StatusOr<GenerationRequest> BuildRequest(const RequestOptions& o, const LoadedModel& model) {
  GenerationRequest r;
  KVSERVE_ASSIGN_OR_RETURN(r.kv_policy, ToKvPolicyOptions(o.kv, model.config));
  r.max_new_tokens = o.max_tokens;
  r.sampling = o.sampling;
  if (o.seed >= 0) r.sampling.seed = static_cast<uint64_t>(o.seed);
  r.stop_token_ids = o.stop_token_ids;
  r.ignore_eos = o.ignore_eos;
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
