#include "tools/eval/passkey_task.h"

#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/model/chat_template.h"
#include "engine/model/prompt_encoding.h"

namespace kvserve::eval {
namespace {

constexpr char kIntro[] =
    "There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. "
    "I will quiz you about the important information there.\n\n";
constexpr char kFiller[] =
    "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";
constexpr char kQuestion[] = "What is the pass key?";
constexpr char kAnswerStart[] = "The pass key is";

// The prompt text with `blocks` filler blocks and the needle after round(depth · blocks) of them.
absl::StatusOr<std::string> PromptText(const std::string& chat_template, const PasskeySpec& spec,
                                       const std::string& key, int blocks) {
  const int before = (spec.depth_percent * blocks + 50) / 100;
  std::vector<std::string> pieces(blocks, kFiller);
  pieces.insert(pieces.begin() + before,
                absl::StrCat("The pass key is ", key, ". Remember it. ", key, " is the pass key."));
  const std::string haystack = absl::StrJoin(pieces, " ");
  const std::string user = absl::StrCat(kIntro, haystack, "\n\n", kQuestion);
  if (spec.format == PromptFormat::kPlain) return absl::StrCat(user, " ", kAnswerStart);
  const ChatTemplate chat(chat_template);
  const ChatMessage message{.role = "user", .content = user};
  auto text = chat.Apply(std::span(&message, 1), /*add_generation_prompt=*/true);
  if (!text.ok()) return text.status();
  return absl::StrCat(*text, kAnswerStart);
}

}  // namespace

std::string PasskeyFor(const PasskeySpec& spec) {
  std::mt19937_64 rng(static_cast<uint64_t>(spec.seed) * 1000003u +
                      static_cast<uint64_t>(spec.target_tokens) * 131u +
                      static_cast<uint64_t>(spec.depth_percent));
  return std::to_string(10000 + rng() % 90000);
}

absl::StatusOr<PasskeyPrompt> BuildPasskeyPrompt(const Tokenizer& tokenizer,
                                                 const std::string& chat_template,
                                                 const PasskeySpec& spec) {
  PasskeyPrompt out{.key = PasskeyFor(spec)};
  auto tokens = [&](int blocks) -> absl::StatusOr<std::vector<int32_t>> {
    auto text = PromptText(chat_template, spec, out.key, blocks);
    if (!text.ok()) return text.status();
    return EncodePromptText(tokenizer, *text);
  };
  // A first guess from the sizes of one block and of the rest, then whole blocks up or down.
  auto base = tokens(0);
  if (!base.ok()) return base.status();
  auto one = tokens(1);
  if (!one.ok()) return one.status();
  const int per_block = std::max<int>(1, static_cast<int>(one->size() - base->size()));
  int blocks = std::max(0, (spec.target_tokens - static_cast<int>(base->size())) / per_block);
  auto ids = tokens(blocks);
  if (!ids.ok()) return ids.status();
  while (blocks > 0 && static_cast<int>(ids->size()) > spec.target_tokens) {
    ids = tokens(--blocks);
    if (!ids.ok()) return ids.status();
  }
  for (;;) {
    auto more = tokens(blocks + 1);
    if (!more.ok()) return more.status();
    if (static_cast<int>(more->size()) > spec.target_tokens) break;
    ids = std::move(more);
    ++blocks;
  }
  if (blocks == 0) {
    return absl::InvalidArgumentError(absl::StrCat("passkey: ", spec.target_tokens,
                                                   " tokens hold no filler block (the rest takes ",
                                                   base->size(), ")"));
  }
  out.ids = *std::move(ids);
  out.filler_blocks = blocks;
  return out;
}

bool PasskeyCorrect(const std::string& answer, const std::string& key) {
  return answer.find(key) != std::string::npos;
}

}  // namespace kvserve::eval
