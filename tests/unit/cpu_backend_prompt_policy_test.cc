// The CPU backend's execution of a prompt compression plan (window scores, per-head retain,
// token-selective propagation) against a direct Llama forward that applies the same decisions by
// hand, and chunk-level failures that leave the rest of the step alone.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <numeric>

#include "engine/kv/page_pool.h"
#include "engine/kv/sequence_kv_cache.h"
#include "engine/model/model_loader.h"
#include "engine/runtime/cpu/cpu_backend.h"
#include "engine/runtime/cpu/cpu_ops.h"
#include "tests/support/kv_policy_runner.h"
#include "tests/support/test_paths.h"

namespace kvserve::testing {
namespace {

using Rows = std::vector<std::vector<float>>;

// What the backend did to a prompt, layer by layer: the windows it scored, the rows each KV head
// kept, and the rows TSP propagated; the reference applies the same.
struct Decisions {
  std::map<int, int> score_windows;                         // layer -> window
  std::map<int, std::vector<std::vector<int32_t>>> retain;  // layer -> per-KV-head rows
  int propagate_layer = -1;
  std::vector<int32_t> propagate;
  std::map<int, std::vector<float>> scores;  // what the backend computed, by layer
};

// A policy whose prompt plan is given: what the plumbing is driven by.
class PlannedPolicy : public KvPolicy {
 public:
  explicit PlannedPolicy(PromptCompressionPlan plan) : plan_(std::move(plan)) {}
  std::string_view name() const override { return "planned"; }
  bool needs_whole_prompt() const override { return true; }
  PromptCompressionPlan PlanPrompt(int) override { return plan_; }

 private:
  PromptCompressionPlan plan_;
};

// The decisions a recorded run made (RecordingPolicy replays the plan's selection).
Decisions DecisionsOf(const RecordingPolicy& recorder) {
  Decisions d;
  for (const RecordingPolicy::Layer& layer : recorder.layers()) {
    if (layer.window == 0) continue;
    d.score_windows[layer.layer] = layer.window;
    d.scores[layer.layer] = layer.scores;
    if (!layer.decision.retain.empty()) d.retain[layer.layer] = layer.decision.retain;
    if (!layer.decision.propagate.empty()) {
      d.propagate_layer = layer.layer;
      d.propagate = layer.decision.propagate;
    }
  }
  return d;
}

// One sequence through a plain, unoptimised Llama forward (double accumulation), applying the
// scripted decisions the way research/fastkv.md §4 describes: retain after the layer (its own
// attention sees every row); TSP gathers rows and positions after the layer's MLP.
class ReferenceModel {
 public:
  ReferenceModel(const ModelConfig& c, const ModelWeights& w)
      : c_(c), w_(w), keys_(c.n_layers, Rows()), values_(c.n_layers, Rows()) {
    for (int l = 0; l < c.n_layers; ++l) {
      keys_[l].resize(c.n_kv_heads);
      values_[l].resize(c.n_kv_heads);
    }
  }

  // Runs `tokens` at `positions`; returns the last row's logits.
  std::vector<float> Run(const std::vector<int32_t>& tokens, std::vector<int32_t> positions,
                         const Decisions* script) {
    const int d = c_.dim, hd = c_.head_dim;
    Rows h;
    for (int32_t t : tokens) {
      h.emplace_back(w_.token_embedding.begin() + static_cast<size_t>(t) * d,
                     w_.token_embedding.begin() + static_cast<size_t>(t + 1) * d);
    }
    for (int l = 0; l < c_.n_layers; ++l) {
      const LayerWeights& lw = w_.layers[l];
      const int n = static_cast<int>(h.size());
      const int base = static_cast<int>(keys_[l][0].size()) / hd;
      Rows q(n);
      for (int i = 0; i < n; ++i) {
        const std::vector<float> x = Norm(h[i], lw.attn_norm);
        q[i] = MatVec(lw.wq, x, c_.q_dim());
        std::vector<float> k = MatVec(lw.wk, x, c_.kv_dim());
        const std::vector<float> v = MatVec(lw.wv, x, c_.kv_dim());
        Rope(q[i], c_.n_heads, positions[i]);
        Rope(k, c_.n_kv_heads, positions[i]);
        for (int g = 0; g < c_.n_kv_heads; ++g) {
          keys_[l][g].insert(keys_[l][g].end(), k.begin() + g * hd, k.begin() + (g + 1) * hd);
          values_[l][g].insert(values_[l][g].end(), v.begin() + g * hd, v.begin() + (g + 1) * hd);
        }
      }
      if (script != nullptr && script->score_windows.count(l)) {
        window_scores_[l] = WindowScores(q, l, script->score_windows.at(l));
      }
      for (int i = 0; i < n; ++i) {
        const std::vector<float> o = MatVec(lw.wo, Attend(q[i], l, base + i + 1), d);
        for (int j = 0; j < d; ++j) h[i][j] += o[j];
        const std::vector<float> x = Norm(h[i], lw.ffn_norm);
        const std::vector<float> gate = MatVec(lw.w_gate, x, c_.ffn_dim);
        std::vector<float> up = MatVec(lw.w_up, x, c_.ffn_dim);
        for (int j = 0; j < c_.ffn_dim; ++j) up[j] *= gate[j] / (1.0f + std::exp(-gate[j]));
        const std::vector<float> down = MatVec(lw.w_down, up, d);
        for (int j = 0; j < d; ++j) h[i][j] += down[j];
      }
      if (script == nullptr) continue;
      if (auto it = script->retain.find(l); it != script->retain.end()) Retain(l, it->second);
      if (l == script->propagate_layer) {
        Rows kept_h;
        std::vector<int32_t> kept_pos;
        for (int32_t r : script->propagate) {
          kept_h.push_back(h[r]);
          kept_pos.push_back(positions[r]);
        }
        h = std::move(kept_h);
        positions = std::move(kept_pos);
      }
    }
    const std::vector<float> x = Norm(h.back(), w_.final_norm);
    return MatVec(w_.LmHead(), x, c_.vocab_size);
  }

  int length(int layer) const { return static_cast<int>(keys_[layer][0].size()) / c_.head_dim; }
  const std::vector<float>& window_scores(int layer) { return window_scores_[layer]; }

 private:
  std::vector<float> MatVec(const std::vector<float>& w, const std::vector<float>& x, int out) {
    return MatVec(w.data(), x, out);
  }
  std::vector<float> MatVec(const float* w, const std::vector<float>& x, int out) {
    std::vector<float> y(out);
    for (int r = 0; r < out; ++r) {
      double s = 0;
      for (size_t k = 0; k < x.size(); ++k) s += double{w[r * x.size() + k]} * x[k];
      y[r] = static_cast<float>(s);
    }
    return y;
  }
  std::vector<float> Norm(const std::vector<float>& x, const std::vector<float>& weight) {
    double ss = 0;
    for (float v : x) ss += double{v} * v;
    const double inv = 1.0 / std::sqrt(ss / x.size() + c_.rms_eps);
    std::vector<float> y(x.size());
    for (size_t i = 0; i < x.size(); ++i) y[i] = static_cast<float>(x[i] * inv * weight[i]);
    return y;
  }
  // The backend's RoPE ops on one row (tested on their own in cpu_ops_test).
  void Rope(std::vector<float>& x, int heads, int32_t position) {
    std::vector<float> cos(c_.rope_dim / 2), sin(c_.rope_dim / 2);
    cpu::RopeTables({&position, 1}, c_.rope_dim, c_.rope_theta, cos.data(), sin.data());
    cpu::ApplyRope(x.data(), 1, heads * c_.head_dim, heads, c_.head_dim, c_.rope_dim, cos.data(),
                   sin.data(), c_.rope_style == RopeStyle::kAdjacentPairs);
  }
  std::vector<double> Probabilities(const float* q, int layer, int g, int visible) {
    const int hd = c_.head_dim;
    std::vector<double> p(visible);
    double max = -1e300, sum = 0;
    for (int j = 0; j < visible; ++j) {
      double dot = 0;
      for (int t = 0; t < hd; ++t) dot += double{q[t]} * keys_[layer][g][j * hd + t];
      p[j] = dot / std::sqrt(double{1} * hd);
      max = std::max(max, p[j]);
    }
    for (double& v : p) sum += (v = std::exp(v - max));
    for (double& v : p) v /= sum;
    return p;
  }
  // GQA attention of one query row over the layer's first `visible` cache rows.
  std::vector<float> Attend(const std::vector<float>& q, int layer, int visible) {
    const int hd = c_.head_dim;
    std::vector<float> out(c_.q_dim());
    for (int h = 0; h < c_.n_heads; ++h) {
      const int g = h / c_.group_size();
      const std::vector<double> p = Probabilities(q.data() + h * hd, layer, g, visible);
      for (int t = 0; t < hd; ++t) {
        double s = 0;
        for (int j = 0; j < visible; ++j) s += p[j] * values_[layer][g][j * hd + t];
        out[h * hd + t] = static_cast<float>(s);
      }
    }
    return out;
  }
  std::vector<float> WindowScores(const Rows& q, int layer, int window) {
    const int n = static_cast<int>(q.size()), prefix = n - window;
    std::vector<float> out(static_cast<size_t>(c_.n_heads) * prefix, 0.0f);
    for (int h = 0; h < c_.n_heads; ++h) {
      for (int i = prefix; i < n; ++i) {
        const std::vector<double> p =
            Probabilities(q[i].data() + h * c_.head_dim, layer, h / c_.group_size(), i + 1);
        for (int j = 0; j < prefix; ++j) out[h * prefix + j] += static_cast<float>(p[j]);
      }
    }
    return out;
  }
  void Retain(int layer, const std::vector<std::vector<int32_t>>& rows) {
    const int hd = c_.head_dim;
    for (int g = 0; g < c_.n_kv_heads; ++g) {
      std::vector<float> k, v;
      for (int32_t r : rows[g]) {
        k.insert(k.end(), keys_[layer][g].begin() + r * hd, keys_[layer][g].begin() + (r + 1) * hd);
        v.insert(v.end(), values_[layer][g].begin() + r * hd,
                 values_[layer][g].begin() + (r + 1) * hd);
      }
      keys_[layer][g] = std::move(k);
      values_[layer][g] = std::move(v);
    }
  }

  const ModelConfig& c_;
  const ModelWeights& w_;
  std::vector<Rows> keys_, values_;  // [layer][kv head] -> rows of head_dim
  std::map<int, std::vector<float>> window_scores_;
};

void ExpectNear(const std::vector<float>& got, const std::vector<float>& want,
                const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], 2e-4 * (1 + std::abs(want[i]))) << what << " at " << i;
  }
}

class PromptPolicyPlumbingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ref =
        LoadModel({.model = Stories260KModelPath(), .tokenizer = Stories260KTokenizerPath()});
    auto mine =
        LoadModel({.model = Stories260KModelPath(), .tokenizer = Stories260KTokenizerPath()});
    ASSERT_TRUE(ref.ok() && mine.ok());
    config_ = ref->config;
    weights_ = std::move(ref->weights);
    auto backend = CpuBackend::Create(config_, std::move(mine->weights));
    ASSERT_TRUE(backend.ok()) << backend.status();
    backend_ = std::move(*backend);
    // The hand-built reference keeps K and V in fp32: so does the backend here.
    ASSERT_TRUE(backend_->SetKvDtype(KvDtype::kF32).ok());
  }

  // A plan over a prompt of `n`: scores at layers 0, 1 and 3, per-head keep at layers 0 and 3
  // (after TSP), TSP at layer 1 keeping `t` rows.
  PromptCompressionPlan Plan(int n, int t) const {
    PromptCompressionPlan plan{.prompt_tokens = n, .tsp_keep = t, .pool_kernel = 3};
    plan.layers.assign(config_.n_layers, {});
    plan.layers[0] = {.window = 4, .keep = 12};
    plan.layers[1] = {.window = 4, .propagate = true};
    plan.layers[3] = {.window = 3, .keep = 6};
    return plan;
  }

  ModelConfig config_;
  ModelWeights weights_;
  std::unique_ptr<CpuBackend> backend_;
};

TEST_F(PromptPolicyPlumbingTest, ScoresRetainAndPropagationMatchTheHandBuiltReference) {
  const int n = 40, t = 15;
  const std::vector<int32_t> prompt = RandomPrompt(5, n, config_.vocab_size);
  PlannedPolicy planned(Plan(n, t));
  RecordingPolicy recorder(planned, config_);
  const PolicyRun run = RunGreedy(*backend_, prompt, &recorder, 4);
  ASSERT_EQ(run.tokens.size(), 4u);
  EXPECT_EQ(run.kept_after_prefill, (std::vector<int>{12, n, t, 6, t}));
  const Decisions script = DecisionsOf(recorder);
  ASSERT_EQ(script.propagate.size(), static_cast<size_t>(t));
  ASSERT_EQ(script.retain.size(), 2u);

  ReferenceModel ref(config_, weights_);
  std::vector<int32_t> positions(n);
  std::iota(positions.begin(), positions.end(), 0);
  ExpectNear(run.logits[0], ref.Run(prompt, positions, &script), "prefill logits");
  // Scores of layer 0 (all rows) and layer 3 (the propagated rows, original positions).
  ExpectNear(script.scores.at(0), ref.window_scores(0), "layer 0 window scores");
  ExpectNear(script.scores.at(3), ref.window_scores(3), "layer 3 window scores");
  for (int step = 1; step < 4; ++step) {
    ExpectNear(run.logits[step], ref.Run({run.tokens[step - 1]}, {n + step - 1}, nullptr),
               "decode step " + std::to_string(step));
  }
  EXPECT_EQ(ref.length(0), 12 + 3);
  EXPECT_EQ(ref.length(3), 6 + 3);
}

TEST_F(PromptPolicyPlumbingTest, RaggedBatchNeighboursAreUnaffectedByPropagation) {
  const int n = 40, t = 15;
  const std::vector<int32_t> scripted_prompt = RandomPrompt(5, n, config_.vocab_size);
  const std::vector<int32_t> plain_prompt = RandomPrompt(6, 23, config_.vocab_size);
  PlannedPolicy alone(Plan(n, t));
  const PolicyRun scripted_alone = RunGreedy(*backend_, scripted_prompt, &alone, 1);
  const PolicyRun plain_alone = RunGreedy(*backend_, plain_prompt, nullptr, 1);

  // The scripted chunk between two plain ones, so rows behind it move up after TSP.
  PagePool pool({config_.n_kv_heads, 16, config_.head_dim}, PagePool::kUnbounded);
  SequenceKvCache kv_a(pool, config_.n_layers), kv_b(pool, config_.n_layers),
      kv_c(pool, config_.n_layers);
  auto positions = [](int len) {
    std::vector<int32_t> p(len);
    std::iota(p.begin(), p.end(), 0);
    return p;
  };
  const std::vector<int32_t> pa = positions(23), pb = positions(n);
  PlannedPolicy planned(Plan(n, t));
  const PromptCompressionPlan plan = planned.PlanPrompt(n);
  const std::vector<SequenceChunk> batch = {
      {.tokens = plain_prompt, .positions = pa, .kv = &kv_a},
      {.tokens = scripted_prompt,
       .positions = pb,
       .kv = &kv_b,
       .policy = &planned,
       .whole_prompt = true,
       .compression = &plan},
      {.tokens = plain_prompt, .positions = pa, .kv = &kv_c, .whole_prompt = true}};
  std::vector<float> logits;
  ASSERT_TRUE(backend_->Forward(batch, &logits).ok());
  const size_t vocab = config_.vocab_size;
  ASSERT_EQ(logits.size(), 3 * vocab);
  ExpectNear({logits.begin(), logits.begin() + vocab}, plain_alone.logits[0], "first");
  ExpectNear({logits.begin() + vocab, logits.begin() + 2 * vocab}, scripted_alone.logits[0],
             "scripted");
  ExpectNear({logits.begin() + 2 * vocab, logits.end()}, plain_alone.logits[0], "last");
  for (int l = 0; l < config_.n_layers; ++l) {
    EXPECT_EQ(kv_a.length(l), 23);
    EXPECT_EQ(kv_c.length(l), 23);
  }
  EXPECT_EQ(kv_b.length(2), t);
}

TEST_F(PromptPolicyPlumbingTest, MalformedPlansFailTheirChunkOnly) {
  const std::vector<int32_t> prompt = RandomPrompt(5, 20, config_.vocab_size);
  const PolicyRun plain = RunGreedy(*backend_, prompt, nullptr, 1);
  // The malformed chunk sits between two plain ones: they still get their lone-run logits.
  auto run = [&](const PromptCompressionPlan& plan, bool whole_prompt = true) {
    PagePool pool({config_.n_kv_heads, 16, config_.head_dim}, PagePool::kUnbounded);
    SequenceKvCache kv_a(pool, config_.n_layers), kv_b(pool, config_.n_layers),
        kv_c(pool, config_.n_layers);
    std::vector<int32_t> pos(prompt.size());
    std::iota(pos.begin(), pos.end(), 0);
    const std::vector<SequenceChunk> batch = {
        {.tokens = prompt, .positions = pos, .kv = &kv_a, .whole_prompt = true},
        {.tokens = prompt,
         .positions = pos,
         .kv = &kv_b,
         .whole_prompt = whole_prompt,
         .compression = &plan},
        {.tokens = prompt, .positions = pos, .kv = &kv_c, .whole_prompt = true}};
    StepOutput out;
    EXPECT_TRUE(GrowForStep(*backend_, batch).ok());
    EXPECT_TRUE(backend_->Execute(batch, &out).ok());
    const size_t vocab = config_.vocab_size;
    EXPECT_EQ(out.logits.size(), 2 * vocab);
    EXPECT_EQ(out.logits_row, (std::vector<int>{0, -1, 1}));
    if (out.logits.size() == 2 * vocab) {
      ExpectNear({out.logits.begin(), out.logits.begin() + vocab}, plain.logits[0], "first");
      ExpectNear({out.logits.begin() + vocab, out.logits.end()}, plain.logits[0], "last");
    }
    EXPECT_TRUE(out.chunk_status[0].ok() && out.chunk_status[2].ok());
    return out.chunk_status[1].code();
  };
  PromptCompressionPlan huge_window{.prompt_tokens = 20, .tsp_keep = 20};
  huge_window.layers.assign(config_.n_layers, {});
  huge_window.layers[2] = {.window = 21, .keep = 4};  // fails mid-step, at layer 2
  EXPECT_EQ(run(huge_window), absl::StatusCode::kInternal);
  PromptCompressionPlan wrong_length = huge_window;
  wrong_length.prompt_tokens = 30;  // a plan for another prompt
  wrong_length.layers[2] = {.window = 4, .keep = 8};
  EXPECT_EQ(run(wrong_length), absl::StatusCode::kInternal);
  PromptCompressionPlan missing_layers = huge_window;
  missing_layers.layers.resize(2);
  EXPECT_EQ(run(missing_layers), absl::StatusCode::kInvalidArgument);
  PromptCompressionPlan chunked = huge_window;
  chunked.layers[2] = {.window = 4, .keep = 8};
  EXPECT_EQ(run(chunked, /*whole_prompt=*/false), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace kvserve::testing
