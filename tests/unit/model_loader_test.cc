// Model loading: GGUF llama (via a GGUF the test writes from stories260K), llama2.c, synthetic,
// and the errors each gives for bad files.
#include "engine/model/model_loader.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "engine/model/llama2c_loader.h"
#include "engine/model/synthetic_model.h"
#include "engine/runtime/cpu/cpu_backend.h"
#include "engine/scheduler/batch_generator.h"
#include "tests/support/ggml_quantize.h"
#include "tests/support/gguf_writer.h"
#include "tests/support/test_paths.h"

namespace kvserve::testing {
namespace {

const std::vector<int32_t> kGolden = {403, 407, 261, 378, 432, 383, 286, 261, 376, 298,
                                      315, 421, 395, 317, 426, 338, 401, 396, 267, 337,
                                      410, 408, 419, 292, 411, 322, 265, 282, 295, 433,
                                      426, 385, 328, 432, 358, 394, 261, 370, 432, 352};

std::vector<char> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void WriteFile(const std::string& path, const std::vector<char>& bytes) {
  std::ofstream(path, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// tok512.bin pieces in GGUF `llama` form: spaces as U+2581, the newline wrapping of <s>/</s> gone.
void AddLlamaTokenizer(GgufWriter& w) {
  const std::vector<char> bytes = ReadFile(Stories260KTokenizerPath());
  std::vector<std::string> tokens;
  std::vector<float> scores;
  size_t pos = 4;
  for (int i = 0; i < 512; ++i) {
    float score;
    int32_t len;
    std::memcpy(&score, bytes.data() + pos, 4);
    std::memcpy(&len, bytes.data() + pos + 4, 4);
    std::string piece(bytes.data() + pos + 8, len);
    pos += 8 + len;
    std::string out;
    for (char ch : piece) {
      if (ch == ' ') {
        out += "\xE2\x96\x81";
      } else if (ch != '\n') {
        out += ch;
      }
    }
    tokens.push_back(out);
    scores.push_back(score);
  }
  w.AddString("tokenizer.ggml.model", "llama");
  w.AddStringArray("tokenizer.ggml.tokens", tokens);
  w.AddFloat32Array("tokenizer.ggml.scores", scores);
  w.AddUint32("tokenizer.ggml.bos_token_id", 1);
  w.AddUint32("tokenizer.ggml.eos_token_id", 2);
  w.AddUint32("tokenizer.ggml.unknown_token_id", 0);
}

void AddTensor(GgufWriter& w, const std::string& name, GgmlType type, const std::vector<float>& t,
               uint64_t rows, uint64_t cols) {
  auto bytes = QuantizeFromF32(type, t);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  w.AddTensor(name, type,
              rows == 1 ? std::vector<uint64_t>{cols} : std::vector<uint64_t>{cols, rows}, *bytes);
}

// stories260K re-encoded as GGUF llama; `skip` names a tensor to leave out, `bad_dims` one whose
// dims to swap.
std::string WriteStoriesGguf(GgmlType matrix_type, const std::string& skip = "",
                             const std::string& bad_dims = "", int claimed_layers = -1) {
  auto m = LoadLlama2cModel(Stories260KModelPath(), "");
  EXPECT_TRUE(m.ok()) << m.status();
  const ModelConfig& c = m->config;
  GgufWriter w;
  w.AddString("general.architecture", "llama");
  w.AddString("general.name", "stories260K-gguf");
  w.AddUint32("llama.block_count", claimed_layers >= 0 ? claimed_layers : c.n_layers);
  w.AddUint32("llama.context_length", c.context_length);
  w.AddUint32("llama.embedding_length", c.dim);
  w.AddUint32("llama.feed_forward_length", c.ffn_dim);
  w.AddUint32("llama.attention.head_count", c.n_heads);
  w.AddUint32("llama.attention.head_count_kv", c.n_kv_heads);
  w.AddFloat32("llama.rope.freq_base", 10000.0f);
  w.AddFloat32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  AddLlamaTokenizer(w);
  auto add = [&](const std::string& name, GgmlType type, const std::vector<float>& t, int rows,
                 int cols) {
    if (name == skip) return;
    if (name == bad_dims) std::swap(rows, cols);
    AddTensor(w, name, rows == 1 ? GgmlType::kF32 : type, t, rows, cols);
  };
  const ModelWeights& wt = m->weights;
  add("token_embd.weight", GgmlType::kF32, wt.token_embedding, c.vocab_size, c.dim);
  add("output_norm.weight", GgmlType::kF32, wt.final_norm, 1, c.dim);
  for (int l = 0; l < c.n_layers; ++l) {
    const LayerWeights& lw = wt.layers[l];
    const std::string p = "blk." + std::to_string(l) + ".";
    add(p + "attn_norm.weight", matrix_type, lw.attn_norm, 1, c.dim);
    add(p + "attn_q.weight", matrix_type, lw.wq, c.q_dim(), c.dim);
    add(p + "attn_k.weight", matrix_type, lw.wk, c.kv_dim(), c.dim);
    add(p + "attn_v.weight", matrix_type, lw.wv, c.kv_dim(), c.dim);
    add(p + "attn_output.weight", matrix_type, lw.wo, c.dim, c.q_dim());
    add(p + "ffn_norm.weight", matrix_type, lw.ffn_norm, 1, c.dim);
    add(p + "ffn_gate.weight", matrix_type, lw.w_gate, c.ffn_dim, c.dim);
    add(p + "ffn_up.weight", matrix_type, lw.w_up, c.ffn_dim, c.dim);
    add(p + "ffn_down.weight", matrix_type, lw.w_down, c.dim, c.ffn_dim);
  }
  const std::string path = MakeTempDir() + "/stories.gguf";
  EXPECT_TRUE(w.WriteFile(path).ok());
  return path;
}

std::vector<int32_t> GreedyFromBos(LoadedModel m, int n) {
  auto backend = CpuBackend::Create(m.config, std::move(m.weights));
  EXPECT_TRUE(backend.ok()) << backend.status();
  BatchGenerator gen(**backend, {.eos_id = 2});
  GenerationRequest r{.prompt = {1}, .max_new_tokens = n};
  auto res = gen.Generate(std::span(&r, 1));
  EXPECT_TRUE(res.ok()) << res.status();
  return res->front().tokens;
}

TEST(GgufLlamaLoaderTest, StoriesAsGgufGeneratesTheGoldenSequence) {
  auto m = LoadModel({.model = WriteStoriesGguf(GgmlType::kF32)});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->format, "gguf");
  EXPECT_EQ(m->config.name, "stories260K-gguf");
  EXPECT_TRUE(m->config.tied_embeddings);
  EXPECT_EQ(m->config.head_dim, 8);
  // The GGUF `llama` tokenizer encodes as the llama2.c one does.
  auto reference = LoadLlama2cModel(Stories260KModelPath(), Stories260KTokenizerPath());
  ASSERT_TRUE(reference.ok());
  for (const char* text : {"Once upon a time", "Lily saw a big dog. \xC3\xA9!"}) {
    EXPECT_EQ(m->tokenizer->Encode(text), reference->tokenizer->Encode(text)) << text;
  }
  EXPECT_EQ(GreedyFromBos(*std::move(m), 40), kGolden);
}

TEST(GgufLlamaLoaderTest, HalfPrecisionWeightsLoad) {
  auto m = LoadModel({.model = WriteStoriesGguf(GgmlType::kF16)});
  ASSERT_TRUE(m.ok()) << m.status();
  // fp16 rounding may move a late token; the story's opening must survive it.
  const auto got = GreedyFromBos(*std::move(m), 8);
  EXPECT_EQ(got, std::vector<int32_t>(kGolden.begin(), kGolden.begin() + 8));
}

TEST(GgufLlamaLoaderTest, MissingOrMisshapenTensorsAreNamed) {
  auto missing = LoadModel({.model = WriteStoriesGguf(GgmlType::kF32, "blk.3.ffn_up.weight")});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(std::string(missing.status().message()).find("blk.3.ffn_up.weight missing"),
            std::string::npos)
      << missing.status();
  auto bad = LoadModel({.model = WriteStoriesGguf(GgmlType::kF32, "", "blk.0.attn_k.weight")});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(std::string(bad.status().message()).find("blk.0.attn_k.weight has dims"),
            std::string::npos)
      << bad.status();
}

TEST(GgufLlamaLoaderTest, LayerCountBelowTheTensorsIsRefused) {
  // block_count 2 while blk.2.* .. blk.4.* exist: loading would silently drop three layers.
  auto m = LoadModel({.model = WriteStoriesGguf(GgmlType::kF32, "", "", /*claimed_layers=*/2)});
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(m.status().message()).find("llama.block_count is 2"), std::string::npos)
      << m.status();
}

TEST(GgufLlamaLoaderTest, OtherArchitecturesAreRejected) {
  GgufWriter w;
  w.AddString("general.architecture", "mamba");
  const std::string path = MakeTempDir() + "/mamba.gguf";
  ASSERT_TRUE(w.WriteFile(path).ok());
  auto m = LoadModel({.model = path});
  ASSERT_FALSE(m.ok());
  EXPECT_NE(std::string(m.status().message()).find("'mamba' is not supported"), std::string::npos);
}

TEST(GgufLlamaLoaderTest, TruncatedFileFailsCleanly) {
  std::vector<char> bytes = ReadFile(WriteStoriesGguf(GgmlType::kF32));
  const std::string path = MakeTempDir() + "/truncated.gguf";
  for (size_t keep : {size_t{3}, size_t{100}, bytes.size() / 2, bytes.size() - 1}) {
    WriteFile(path, std::vector<char>(bytes.begin(), bytes.begin() + keep));
    EXPECT_FALSE(LoadModel({.model = path}).ok()) << keep;
  }
}

TEST(Llama2cLoaderTest, CorruptCheckpointsFailWithAReason) {
  const std::vector<char> good = ReadFile(Stories260KModelPath());
  const std::string dir = MakeTempDir();
  // Truncation anywhere: a clear error.
  for (size_t keep : {size_t{0}, size_t{20}, size_t{28}, good.size() / 3, good.size() - 4}) {
    WriteFile(dir + "/t.bin", std::vector<char>(good.begin(), good.begin() + keep));
    auto m = LoadLlama2cModel(dir + "/t.bin", "");
    ASSERT_FALSE(m.ok()) << keep;
    EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument) << m.status();
  }
  // A hostile header (huge dims, zero or indivisible heads) is rejected before allocating.
  for (auto [field, value] :
       {std::pair{0, 1 << 30}, {3, 0}, {3, 7}, {4, 3}, {6, -1}, {5, INT32_MIN}}) {
    std::vector<char> bad = good;
    std::memcpy(bad.data() + 4 * field, &value, 4);
    WriteFile(dir + "/h.bin", bad);
    auto m = LoadLlama2cModel(dir + "/h.bin", "");
    EXPECT_FALSE(m.ok()) << "field " << field << " = " << value;
  }
  // A header claiming fewer layers than the file holds leaves weights unread: refused.
  {
    std::vector<char> fewer = good;
    int32_t layers = 0;
    std::memcpy(&layers, fewer.data() + 8, 4);
    ASSERT_GT(layers, 1);
    layers -= 1;
    std::memcpy(fewer.data() + 8, &layers, 4);
    WriteFile(dir + "/fewer.bin", fewer);
    auto m = LoadLlama2cModel(dir + "/fewer.bin", "");
    ASSERT_FALSE(m.ok());
    EXPECT_NE(std::string(m.status().message()).find("disagrees"), std::string::npos) << m.status();
    std::vector<char> trailing = good;
    trailing.resize(good.size() + 4);
    WriteFile(dir + "/trailing.bin", trailing);
    EXPECT_FALSE(LoadLlama2cModel(dir + "/trailing.bin", "").ok());
  }
  EXPECT_EQ(LoadLlama2cModel(dir + "/absent.bin", "").status().code(), absl::StatusCode::kNotFound);
  // A bad tokenizer path is reported too.
  EXPECT_FALSE(LoadLlama2cModel(Stories260KModelPath(), dir + "/absent-tok.bin").ok());
}

TEST(ModelLoaderTest, GgufRefusesASeparateTokenizer) {
  auto m = LoadModel({.model = WriteStoriesGguf(GgmlType::kF32), .tokenizer = "tok512.bin"});
  ASSERT_FALSE(m.ok());
  EXPECT_NE(std::string(m.status().message()).find("--tokenizer"), std::string::npos);
}

TEST(SyntheticModelTest, ShapesOfRealModels) {
  auto c = SyntheticModelConfig("llama-3.1-8b");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->n_layers, 32);
  EXPECT_EQ(c->n_kv_heads, 8);
  EXPECT_EQ(c->ffn_dim, 14336);
  EXPECT_FALSE(c->tied_embeddings);
  EXPECT_NEAR(static_cast<double>(c->num_parameters()), 8.03e9, 0.01e9);
  auto smol = SyntheticModelConfig("smollm2-135m");
  ASSERT_TRUE(smol.ok());
  EXPECT_NEAR(static_cast<double>(smol->num_parameters()), 134.5e6, 0.1e6);
  EXPECT_FALSE(SyntheticModelConfig("gpt-9").ok());
}

TEST(SyntheticModelTest, SeededAndRunnable) {
  auto a = LoadModel({.model = "synthetic:stories260k", .synthetic_seed = 5});
  auto b = LoadModel({.model = "synthetic:stories260k", .synthetic_seed = 5});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->format, "synthetic");
  EXPECT_EQ(a->tokenizer, nullptr);
  EXPECT_EQ(a->weights.layers[2].wq, b->weights.layers[2].wq);
  EXPECT_EQ(GreedyFromBos(*std::move(a), 5).size(), 5u);
}

TEST(SyntheticModelTest, TooLargeForMemoryIsAClearError) {
  auto m = MakeSyntheticModel("llama-3.1-8b", 0, /*max_bytes=*/int64_t{1} << 30);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(std::string(m.status().message()).find("MiB"), std::string::npos);
}

}  // namespace
}  // namespace kvserve::testing
