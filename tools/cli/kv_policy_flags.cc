#include "tools/cli/kv_policy_flags.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "engine/base/field_violation.h"
#include "engine/base/status_macros.h"

namespace kvserve::cli {
namespace {

// Each option's help (research/fastkv.md §6, research/freekv.md); defaults are the policy's.
const std::map<std::string_view, std::string_view>& OptionHelp() {
  static const auto* help = new std::map<std::string_view, std::string_view>{
      {"window", "snapkv/fastkv: observation window, always kept (8)"},
      {"pool_kernel", "snapkv/fastkv: pooling kernel, odd (7)"},
      {"pool", "snapkv/fastkv: window-score pooling, max or avg (max)"},
      {"budget",
       "snapkv/fastkv: constant KV budget per layer in tokens, window included (0: "
       "--kv-retain-rate); quest/freekv: GPU tokens per layer, sink and recent included (0: 2048)"},
      {"retain_rate", "snapkv/fastkv: fraction of the prompt each layer's cache keeps (rho, 0.1)"},
      {"tsp_layer", "fastkv: token-selective propagation layer (-1: n_layers / 2 - 1)"},
      {"tsp_rate", "fastkv: fraction of the prompt propagated past the TSP layer (tau, 0.2)"},
      {"tsp_len", "fastkv: constant number of tokens propagated (0: --kv-tsp-rate)"},
      {"page_size", "quest/freekv: KV page size in tokens, the selection unit (32)"},
      {"sink", "quest/freekv: sink tokens always on the GPU (512)"},
      {"recent", "quest/freekv: recent tokens always on the GPU, a rotating window (512)"},
      {"tau", "freekv: query cosine below which a KV head is corrected (1: always; 0.8)"},
  };
  return *help;
}

absl::Status FlagError(const absl::Status& status) {
  return RenameField(status, [](absl::string_view option) {
    return KvFlagName(std::string_view(option.data(), option.size()));
  });
}

}  // namespace

std::string KvFlagName(std::string_view option) {
  std::string flag = absl::StrCat("--kv-", std::string(option));
  std::replace(flag.begin(), flag.end(), '_', '-');
  return flag;
}

void AddKvPolicyFlags(CLI::App& app, KvPolicyFlags& flags) {
  app.add_option("--kv-policy", flags.policy,
                 "KV cache policy: full, snapkv, fastkv, quest, freekv, fastkv_freekv (default: "
                 "full; `client`: the server's default)");
  auto* given = &flags.options;
  for (std::string_view option : KvOptionNames()) {
    const std::string name(option);
    const std::string help(OptionHelp().at(option));
    // The option's type, from a policy that has it.
    KvOptionValue sample;
    for (size_t k = 0; k < KvPolicyNames().size(); ++k) {
      auto value = GetKvOption(DefaultKvPolicyOptions(static_cast<KvPolicyKind>(k)), option);
      if (value) sample = *value;
    }
    auto record = [given, name](const auto& v) { given->emplace_back(name, v); };
    if (std::holds_alternative<int>(sample)) {
      app.add_option_function<int>(KvFlagName(option), record, help);
    } else if (std::holds_alternative<float>(sample)) {
      app.add_option_function<float>(KvFlagName(option), record, help);
    } else {
      const std::map<std::string, ScorePooling> pooling = {{"max", ScorePooling::kMax},
                                                           {"avg", ScorePooling::kAvg}};
      app.add_option_function<ScorePooling>(KvFlagName(option), record, help)
          ->transform(CLI::CheckedTransformer(pooling, CLI::ignore_case));
    }
  }
}

absl::StatusOr<KvPolicyOptions> ToKvPolicyOptions(const KvPolicyFlags& flags,
                                                  const ModelConfig& config) {
  KvPolicyKind kind = KvPolicyKind::kFull;
  if (!flags.policy.empty()) {
    absl::StatusOr<KvPolicyKind> parsed = ParseKvPolicyKind(flags.policy);
    if (!parsed.ok()) return RenameField(parsed.status(), [](auto) { return "--kv-policy"; });
    kind = *parsed;
  }
  KvPolicyOptions options = DefaultKvPolicyOptions(kind);
  for (const auto& [name, value] : flags.options) {
    KVSERVE_RETURN_IF_ERROR(FlagError(SetKvOption(options, name, value)));
  }
  KVSERVE_RETURN_IF_ERROR(FlagError(ValidateKvPolicyOptions(options, config)));
  return options;
}

absl::StatusOr<v1::KvPolicy> ToProtoKvPolicy(const KvPolicyFlags& flags) {
  using google::protobuf::FieldDescriptor;
  v1::KvPolicy policy;
  google::protobuf::Message* message = &policy;  // the flat form without --kv-policy
  if (!flags.policy.empty()) {
    absl::StatusOr<KvPolicyKind> kind = ParseKvPolicyKind(flags.policy);
    if (!kind.ok()) return RenameField(kind.status(), [](auto) { return "--kv-policy"; });
    const FieldDescriptor* member = v1::KvPolicy::descriptor()->FindFieldByName(flags.policy);
    message = policy.GetReflection()->MutableMessage(&policy, member);
  }
  const auto* r = message->GetReflection();
  for (const auto& [name, value] : flags.options) {
    const FieldDescriptor* field = message->GetDescriptor()->FindFieldByName(name);
    if (field == nullptr) {
      return InvalidField(KvFlagName(name),
                          absl::StrCat("is not an option of the ", flags.policy, " policy"));
    }
    if (const int* i = std::get_if<int>(&value)) {
      r->SetInt32(message, field, *i);
    } else if (const float* f = std::get_if<float>(&value)) {
      r->SetFloat(message, field, *f);
    } else if (field->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
      r->SetString(message, field,
                   std::get<ScorePooling>(value) == ScorePooling::kAvg ? "avg" : "max");
    } else {
      r->SetEnumValue(message, field,
                      std::get<ScorePooling>(value) == ScorePooling::kAvg ? v1::SCORE_POOLING_AVG
                                                                          : v1::SCORE_POOLING_MAX);
    }
  }
  return policy;
}

}  // namespace kvserve::cli
