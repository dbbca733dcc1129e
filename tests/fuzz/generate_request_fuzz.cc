// libFuzzer: a serialized GenerateRequest through the server's parsing, limits and conversion to
// an engine request (stories260K's config and tokenizer, a ChatML template): whatever arrives is
// either refused with InvalidArgument or yields a request within the model's bounds.
#include <cstdint>
#include <memory>

#include "engine/model/sentencepiece_tokenizer.h"
#include "kvserve/v1/inference.pb.h"
#include "server/request_validation.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

constexpr const char* kChatMl =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] "
    "+ '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|im_start|>assistant\\n' "
    "}}{% endif %}";

struct Fixture {
  kvserve::ModelConfig config;
  std::unique_ptr<kvserve::SentencePieceTokenizer> tokenizer;
  kvserve::KvPolicyOptions default_policy;
  kvserve::server::RequestLimits limits;
};

const Fixture& TheFixture() {
  static const Fixture* fixture = [] {
    auto* f = new Fixture;
    // stories260K's shape (tests/data/stories260K): 5 layers, 8 heads, 4 KV heads, 512 context.
    f->config.dim = 64;
    f->config.ffn_dim = 172;
    f->config.n_layers = 5;
    f->config.n_heads = 8;
    f->config.n_kv_heads = 4;
    f->config.head_dim = 8;
    f->config.rope_dim = 8;
    f->config.vocab_size = 512;
    f->config.context_length = 512;
    f->config.rms_eps = 1e-5f;
    auto tok = kvserve::SentencePieceTokenizer::LoadLlama2c(
        kvserve::fuzz::TestDataPath("stories260K/tok512.bin"), 512);
    KVSERVE_FUZZ_CHECK(tok.ok());
    f->tokenizer = std::move(*tok);
    f->default_policy = kvserve::FullOptions{};
    return f;
  }();
  return *fixture;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvserve;
  const Fixture& f = TheFixture();
  v1::GenerateRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  const server::RequestContext context{.config = f.config,
                                       .tokenizer = f.tokenizer.get(),
                                       .chat_template = kChatMl,
                                       .default_kv_policy = f.default_policy,
                                       .limits = &f.limits,
                                       .kv_page_size = 16};
  auto converted = server::ToEngineRequest(request, context);
  if (!converted.ok()) {
    KVSERVE_FUZZ_CHECK(converted.status().code() == absl::StatusCode::kInvalidArgument);
    KVSERVE_FUZZ_CHECK(!converted.status().message().empty());
    return 0;
  }
  const EngineRequest& r = *converted;
  KVSERVE_FUZZ_CHECK(!r.prompt.empty());
  KVSERVE_FUZZ_CHECK(static_cast<int64_t>(r.prompt.size()) + r.max_new_tokens <=
                     f.config.context_length);
  for (int32_t id : r.prompt) KVSERVE_FUZZ_CHECK(id >= 0 && id < f.config.vocab_size);
  KVSERVE_FUZZ_CHECK(static_cast<int>(r.stop.size()) <= f.limits.max_stop_strings);
  KVSERVE_FUZZ_CHECK(r.logprobs >= 0 && r.logprobs <= f.limits.max_logprobs);
  return 0;
}
