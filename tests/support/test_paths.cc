#include "tests/support/test_paths.h"

#include <cstdlib>
#include <filesystem>

namespace kvserve::testing {
namespace fs = std::filesystem;

std::string Stories260KModelPath() {
  return std::string(KVSERVE_TEST_DATA_DIR) + "/stories260K/stories260K.bin";
}
std::string Stories260KTokenizerPath() {
  return std::string(KVSERVE_TEST_DATA_DIR) + "/stories260K/tok512.bin";
}

std::string SmolLm2GgufPath() {
  // A bundle run elsewhere (scripts/gpu-bundle.sh) names its copy.
  if (const char* env = std::getenv("KVSERVE_SMOLLM2_GGUF"); env != nullptr && fs::exists(env)) {
    return env;
  }
  const char* file = "SmolLM2-135M-Instruct.Q4_1.gguf";
  for (const std::string& dir : {std::string(KVSERVE_SHARED_MODELS_DIR) + "/smollm2-135m-instruct",
                                 std::string(KVSERVE_MODELS_DIR)}) {
    const std::string path = dir + "/" + file;
    if (fs::exists(path)) return path;
  }
  return "";
}

std::string MakeTempDir() {
  std::string templ = (fs::temp_directory_path() / "kvserve-test-XXXXXX").string();
  char* dir = mkdtemp(templ.data());
  return dir ? std::string(dir) : std::string();
}

}  // namespace kvserve::testing
