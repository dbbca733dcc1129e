#include "tests/support/hf_tokenizer_json.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "engine/model/token_type.h"

namespace kvserve::testing {

std::string SmolLm2TokenizerJsonPath() {
  for (const char* dir : {KVSERVE_TEST_DATA_DIR, KVSERVE_SHARED_MODELS_DIR}) {
    const std::string path = std::string(dir) + "/smollm2-135m-instruct/tokenizer.json";
    if (std::filesystem::exists(path)) return path;
  }
  return "";
}

absl::StatusOr<BpeTokenizer::Options> BpeOptionsFromHfTokenizerJson(const std::string& path,
                                                                    std::string pre, int32_t bos_id,
                                                                    int32_t eos_id) {
  std::ifstream file(path);
  if (!file) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::stringstream text;
  text << file.rdbuf();
  const nlohmann::json json =
      nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a JSON object"));
  }
  const auto model = json.find("model");
  if (model == json.end() || !model->is_object() || model->value("type", "") != "BPE" ||
      !model->contains("vocab") || !model->contains("merges")) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": no BPE model with vocab and merges"));
  }

  BpeTokenizer::Options options;
  const nlohmann::json& vocab = (*model)["vocab"];
  const nlohmann::json& merges = (*model)["merges"];
  if (!vocab.is_object() || !merges.is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": vocab is not an object or merges not a list"));
  }
  options.tokens.resize(vocab.size());
  options.token_types.assign(vocab.size(), static_cast<int32_t>(TokenType::kNormal));
  const auto place = [&](const std::string& token, int64_t id) {
    if (id < 0) return false;
    if (static_cast<size_t>(id) >= options.tokens.size()) {
      options.tokens.resize(id + 1);
      options.token_types.resize(id + 1, static_cast<int32_t>(TokenType::kUnused));
    }
    options.tokens[id] = token;
    return true;
  };
  for (const auto& item : vocab.items()) {
    if (!item.value().is_number_integer() || !place(item.key(), item.value().get<int64_t>())) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": bad id for token '", item.key(), "'"));
    }
  }
  for (const nlohmann::json& added : json.value("added_tokens", nlohmann::json::array())) {
    const int64_t id = added.is_object() ? added.value("id", int64_t{-1}) : -1;
    if (id < 0 || !place(added.value("content", ""), id)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": bad added token ", added.dump()));
    }
    options.token_types[id] = static_cast<int32_t>(
        added.value("special", false) ? TokenType::kControl : TokenType::kUserDefined);
  }
  for (const nlohmann::json& merge : merges) {
    if (merge.is_string()) {
      options.merges.push_back(merge.get<std::string>());
    } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() &&
               merge[1].is_string()) {
      options.merges.push_back(
          absl::StrCat(merge[0].get<std::string>(), " ", merge[1].get<std::string>()));
    } else {
      return absl::InvalidArgumentError(absl::StrCat(path, ": bad merge ", merge.dump()));
    }
  }
  options.pre = std::move(pre);
  options.bos_id = bos_id;
  options.eos_id = eos_id;
  return options;
}

}  // namespace kvserve::testing
