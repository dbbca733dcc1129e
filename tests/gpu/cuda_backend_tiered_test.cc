// Quest and FreeKV on the CUDA backend (issue 13) on SmolLM2-135M-Instruct: the host tier, device
// digests, selection, residency, recall, correction and page-sparse decode wired through
// CudaBackend::Execute, against the CPU policy and against the CUDA backend's own full decode.
// Short prompts and a small budget (page 16, 6 slots: 1 sink, 3 retrieved, 2 recent) so that
// selection runs from the first decode step on the emulator.
#include <gtest/gtest.h>

#include <functional>
#include <memory>

#include "engine/kv/kv_cache_manager.h"
#include "engine/kv/kv_policy.h"
#include "engine/kv/tiered_kv_policy.h"
#include "engine/runtime/cuda/tiered_decode.h"
#include "engine/scheduler/batch_generator.h"
#include "tests/gpu/cuda_backend_fixture.h"

namespace kvserve::testing {
namespace {

constexpr int kPageSize = 16;
constexpr int kPromptTokens = 160;  // 10 pages: sparse from the first decode step
constexpr int kNewTokens = 10;

TieredOptions SmallBudget() {
  return {.budget = 6 * kPageSize, .page_size = kPageSize, .sink = kPageSize, .recent = 32};
}
KvPolicyOptions Quest() { return QuestOptions{SmallBudget()}; }
KvPolicyOptions FreeKv(float tau) { return FreeKvOptions{SmallBudget(), tau}; }

class CudaBackendTieredTest : public kernels::testing::GpuTest {
 protected:
  void SetUp() override {
    GpuTest::SetUp();
    if (IsSkipped()) return;
    m_ = LoadSmolLm2OnBothBackends();
    if (HasFailure()) return;
    if (m_.cuda == nullptr) GTEST_SKIP() << "SmolLM2 GGUF absent (scripts/fetch-model.sh)";
    prompt_ = EnglishPrompt(*m_.tokenizer, kPromptTokens);
  }

  std::unique_ptr<KvPolicy> Policy(const KvPolicyOptions& options) {
    auto p = CreateKvPolicy(options, m_.config);
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? *std::move(p) : nullptr;
  }

  SmolLm2OnBothBackends m_;
  std::vector<int32_t> prompt_;
};

// One sequence through `backend`: the prompt as one whole-prompt chunk, then `steps` decode
// tokens, each the greedy choice or, with `forced`, forced[i]. `after_step(step, kv)` runs after
// every decode step. Returns the tokens chosen (greedy) at each step.
std::vector<int32_t> RunSequence(
    Backend& backend, std::span<const int32_t> prompt, KvPolicy* policy, int steps,
    std::span<const int32_t> forced = {},
    const std::function<void(int, const SequenceKvCache&)>& after_step = {},
    KvStats* stats = nullptr) {
  const ModelConfig& c = backend.config();
  PagePool pool({c.n_kv_heads, kPageSize, c.head_dim}, PagePool::kUnbounded);
  SequenceKvCache kv(pool, c.n_layers);
  std::vector<int32_t> tokens(prompt.begin(), prompt.end());
  std::vector<int32_t> chosen;
  for (int step = 0; step <= steps; ++step) {
    const int at = step == 0 ? 0 : static_cast<int>(tokens.size()) - 1;
    const int n = static_cast<int>(tokens.size()) - at;
    const std::vector<int32_t> positions = Positions(at, n);
    const SequenceChunk chunk{.tokens = std::span(tokens).subspan(at, n),
                              .positions = positions,
                              .kv = &kv,
                              .policy = policy,
                              .whole_prompt = step == 0};
    std::vector<float> logits;
    const absl::Status s = backend.Forward(std::span(&chunk, 1), &logits);
    EXPECT_TRUE(s.ok()) << backend.name() << " step " << step << ": " << s;
    if (!s.ok()) break;
    if (step > 0 && after_step) after_step(step, kv);
    const int32_t next = ArgMax(logits);
    chosen.push_back(next);
    tokens.push_back(step < static_cast<int>(forced.size()) ? forced[step] : next);
  }
  if (policy != nullptr && stats != nullptr) *stats = policy->Stats(kv);
  return chosen;
}

TEST_F(CudaBackendTieredTest, SupportsQuestAndFreeKv) {
  EXPECT_TRUE(m_.cuda->Supports(Quest()).ok());
  EXPECT_TRUE(m_.cuda->Supports(FreeKv(0.8f)).ok());
}

// The pages the device selects are the CPU policy's. Both run the same forced tokens, so their
// caches hold the same text; the device's keys and queries are bf16 and the CPU's fp32, so a page
// whose bound is within rounding of the k-th may differ (ties aside): the test wants the lists of
// nearly every (step, layer, KV head) equal, and every list the budget's size.
TEST_F(CudaBackendTieredTest, SelectionsMatchCpuPolicy) {
  for (const KvPolicyOptions& options : {Quest(), FreeKv(0.8f)}) {
    auto cpu_policy = Policy(options);
    auto gpu_policy = Policy(options);
    std::vector<std::vector<std::vector<int32_t>>> cpu_lists, gpu_lists;  // [step][layer*H+h]
    auto record = [&](KvPolicy& policy, bool device, auto& lists) {
      return [&, device](int step, const SequenceKvCache& kv) {
        auto& tiered = static_cast<TieredKvPolicy&>(policy);
        std::vector<std::vector<int32_t>> step_lists;
        for (int l = 0; l < m_.config.n_layers; ++l) {
          for (int h = 0; h < m_.config.n_kv_heads; ++h) {
            step_lists.push_back(device
                                     ? cuda::TieredDecode::ResidentPages(policy, l, h, kv.length(l))
                                     : tiered.ResidentPages(l, h));
          }
        }
        lists.push_back(std::move(step_lists));
      };
    };
    const std::vector<int32_t> cpu_tokens = RunSequence(
        *m_.cpu, prompt_, cpu_policy.get(), kNewTokens, {}, record(*cpu_policy, false, cpu_lists));
    KvStats stats;
    RunSequence(*m_.cuda, prompt_, gpu_policy.get(), kNewTokens, cpu_tokens,
                record(*gpu_policy, true, gpu_lists), &stats);
    ASSERT_EQ(cpu_lists.size(), gpu_lists.size());
    int equal = 0, total = 0;
    for (size_t s = 0; s < cpu_lists.size(); ++s) {
      for (size_t i = 0; i < cpu_lists[s].size(); ++i) {
        ++total;
        equal += cpu_lists[s][i] == gpu_lists[s][i] ? 1 : 0;
        EXPECT_EQ(gpu_lists[s][i].size(), 6u) << "step " << s << " list " << i;
      }
    }
    std::printf("%s: %d of %d (step, layer, KV head) page lists equal the CPU's\n",
                std::string(gpu_policy->name()).c_str(), equal, total);
    EXPECT_GE(equal, total * 9 / 10) << gpu_policy->name();
    EXPECT_EQ(stats.decode_steps, kNewTokens);
    EXPECT_GT(stats.recalled_pages, 0);
  }
}

}  // namespace
}  // namespace kvserve::testing
