// The prefill FLOP model (research/fastkv.md §9) that FastKV's prefill_flops_fraction reports.
#include "engine/kv/prefill_flops.h"

#include <gtest/gtest.h>

#include <vector>

#include "engine/model/synthetic_model.h"

namespace kvserve {
namespace {

ModelConfig Llama8B() {
  auto c = SyntheticModelConfig("llama-3.1-8b");
  EXPECT_TRUE(c.ok());
  return *c;
}

// §9: F(n) = 2 · P_layer · n + 2 · n² · Hq · hd.
double SpecLayerFlops(const ModelConfig& c, double n) {
  const double d = c.dim;
  const double p_layer = d * c.q_dim() + 2 * d * c.kv_dim() + c.q_dim() * d + 3 * d * c.ffn_dim;
  return 2 * p_layer * n + 2 * n * n * c.n_heads * c.head_dim;
}

// Layers 0..tsp_layer on n rows, the rest on t.
std::vector<LayerRows> TspRows(const ModelConfig& c, int tsp_layer, int n, int t) {
  std::vector<LayerRows> rows(c.n_layers, LayerRows{n, n});
  for (int l = tsp_layer + 1; l < c.n_layers; ++l) rows[l] = {t, t};
  return rows;
}

TEST(PrefillFlopsTest, LayerFlopsAreTheSpecFormula) {
  const ModelConfig c = Llama8B();
  for (int n : {1, 100, 8192}) {
    EXPECT_DOUBLE_EQ(LayerPrefillFlops(c, {n, n}), SpecLayerFlops(c, n)) << n;
  }
  // The MLP share alone: 2 · 3 · d · ffn per row.
  EXPECT_DOUBLE_EQ(LayerPrefillFlops(c, {100, 100}) - LayerPrefillFlops(c, {100, 99}),
                   6.0 * c.dim * c.ffn_dim);
}

TEST(PrefillFlopsTest, NothingDroppedIsOne) {
  const ModelConfig c = Llama8B();
  EXPECT_DOUBLE_EQ(PrefillFlopsFraction(c, TspRows(c, 15, 4096, 4096), 4096), 1.0);
  EXPECT_DOUBLE_EQ(PrefillFlopsFraction(c, {}, 4096), 1.0);  // missing layers count as full
  EXPECT_DOUBLE_EQ(PrefillFlopsFraction(c, {}, 0), 1.0);
}

TEST(PrefillFlopsTest, HalfTheLayersOnTauNIsHalfPlusHalfTheirShare) {
  const ModelConfig c = Llama8B();
  const int n = 8190, t = 1638;  // τ = 0.2 exactly
  const double fraction = PrefillFlopsFraction(c, TspRows(c, 15, n, t), n);
  // 0.5 + 0.5 · (τ · linear share + τ² · attention share)
  const double attention_share = 2.0 * n * n * c.n_heads * c.head_dim / SpecLayerFlops(c, n);
  const double tau = 0.2;
  EXPECT_NEAR(fraction, 0.5 + 0.5 * (tau * (1 - attention_share) + tau * tau * attention_share),
              1e-12);
  EXPECT_NEAR(fraction, 0.589, 0.002);  // the table in §9 at 8K
  // 128K with T = 2048: 0.502.
  EXPECT_NEAR(PrefillFlopsFraction(c, TspRows(c, 15, 131072, 2048), 131072), 0.502, 0.002);
}

TEST(PrefillFlopsTest, GatheringBeforeTheTspLayersMlpSavesItsDroppedRows) {
  const ModelConfig c = Llama8B();
  std::vector<LayerRows> rows = TspRows(c, 15, 1000, 200);
  const double after_mlp = PrefillFlopsFraction(c, rows, 1000);
  rows[15].mlp = 200;
  const double before_mlp = PrefillFlopsFraction(c, rows, 1000);
  EXPECT_NEAR(after_mlp - before_mlp,
              6.0 * c.dim * c.ffn_dim * 800 / (c.n_layers * SpecLayerFlops(c, 1000)), 1e-12);
}

}  // namespace
}  // namespace kvserve
