#include "engine/model/synthetic_model.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/base/status_macros.h"

namespace kvserve {
namespace {

struct Shape {
  const char* name;
  int n_layers, dim, n_heads, n_kv_heads, head_dim, ffn_dim, vocab, context;
  float rope_theta;
  bool tied;
};

constexpr Shape kShapes[] = {
    {"llama-3.1-8b", 32, 4096, 32, 8, 128, 14336, 128256, 131072, 500000.0f, false},
    {"llama-3.2-1b", 16, 2048, 32, 8, 64, 8192, 128256, 131072, 500000.0f, true},
    {"smollm2-135m", 30, 576, 9, 3, 64, 1536, 49152, 8192, 100000.0f, true},
    {"stories260k", 5, 64, 8, 4, 8, 172, 512, 512, 10000.0f, true},
};

// splitmix64: fast, seedable, good enough for benchmark weights.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [-scale, scale).
  float Uniform(float scale) {
    return scale * (static_cast<float>(Next() >> 40) * (2.0f / 16777216.0f) - 1.0f);
  }

 private:
  uint64_t state_;
};

std::vector<float> Random(Rng& rng, int64_t n, float scale) {
  std::vector<float> v(n);
  for (float& x : v) x = rng.Uniform(scale);
  return v;
}

}  // namespace

std::vector<std::string> SyntheticModelNames() {
  std::vector<std::string> names;
  for (const Shape& s : kShapes) names.emplace_back(s.name);
  return names;
}

absl::StatusOr<ModelConfig> SyntheticModelConfig(const std::string& name) {
  for (const Shape& s : kShapes) {
    if (name != s.name) continue;
    ModelConfig c;
    c.name = absl::StrCat("synthetic:", name);
    c.n_layers = s.n_layers;
    c.dim = s.dim;
    c.n_heads = s.n_heads;
    c.n_kv_heads = s.n_kv_heads;
    c.head_dim = s.head_dim;
    c.ffn_dim = s.ffn_dim;
    c.vocab_size = s.vocab;
    c.context_length = s.context;
    c.rope_dim = s.head_dim;
    c.rope_theta = s.rope_theta;
    c.rms_eps = 1e-5f;
    c.tied_embeddings = s.tied;
    return c;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown synthetic model '", name, "'; known: ", absl::StrJoin(SyntheticModelNames(), ", ")));
}

absl::StatusOr<LoadedModel> MakeSyntheticModel(const std::string& name, uint64_t seed,
                                               int64_t max_bytes) {
  KVSERVE_ASSIGN_OR_RETURN(const ModelConfig config, SyntheticModelConfig(name));
  return MakeSyntheticModel(config, seed, max_bytes);
}

absl::StatusOr<LoadedModel> MakeSyntheticModel(const ModelConfig& c, uint64_t seed,
                                               int64_t max_bytes) {
  const int64_t bytes = c.num_parameters() * static_cast<int64_t>(sizeof(float));
  if (bytes > max_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(c.name, " needs ", bytes >> 20,
                                                     " MiB of fp32 weights; only ", max_bytes >> 20,
                                                     " MiB available"));
  }
  LoadedModel m;
  m.format = "synthetic";
  m.config = c;
  Rng rng(seed);
  // Scales keep activations O(1) through the layers, like a trained model's init.
  const float in_scale = 1.0f / std::sqrt(static_cast<float>(c.dim));
  const int64_t d = c.dim;
  m.weights.token_embedding = Random(rng, c.vocab_size * d, 1.0f);
  for (int l = 0; l < c.n_layers; ++l) {
    LayerWeights w;
    for (const LayerTensor& t : LayerTensors(c)) {
      // Norm weights 1; matrices scaled by their fan-in.
      w.*t.field = t.rows == 1
                       ? std::vector<float>(t.cols, 1.0f)
                       : Random(rng, t.rows * t.cols, 1.0f / std::sqrt(static_cast<float>(t.cols)));
    }
    m.weights.layers.push_back(std::move(w));
  }
  m.weights.final_norm.assign(d, 1.0f);
  if (!c.tied_embeddings) m.weights.lm_head = Random(rng, c.vocab_size * d, in_scale);
  return m;
}

}  // namespace kvserve
