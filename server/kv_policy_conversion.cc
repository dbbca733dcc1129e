#include "server/kv_policy_conversion.h"

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "engine/base/field_violation.h"
#include "engine/base/status_macros.h"

namespace kvserve::server {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

const google::protobuf::OneofDescriptor& OptionsOneof() {
  return *v1::KvPolicy::descriptor()->FindOneofByName("options");
}

// The oneof member `policy` set (named as the policy it holds), or null: the flat form.
const FieldDescriptor* OptionsMember(const v1::KvPolicy& policy) {
  return policy.GetReflection()->GetOneofFieldDescriptor(policy, &OptionsOneof());
}

// The value of the set field `field` of `message` as the engine's option, or the problem.
absl::StatusOr<KvOptionValue> OptionValue(const Message& message, const FieldDescriptor& field,
                                          absl::string_view path) {
  const auto* r = message.GetReflection();
  switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return r->GetInt32(message, &field);
    case FieldDescriptor::CPPTYPE_FLOAT:
      return r->GetFloat(message, &field);
    case FieldDescriptor::CPPTYPE_ENUM: {  // ScorePooling; UNSPECIFIED is never set
      const int value = r->GetEnumValue(message, &field);
      if (value == v1::SCORE_POOLING_MAX) return ScorePooling::kMax;
      if (value == v1::SCORE_POOLING_AVG) return ScorePooling::kAvg;
      return InvalidField(
          path, absl::StrCat("must be SCORE_POOLING_MAX or SCORE_POOLING_AVG, got ", value));
    }
    case FieldDescriptor::CPPTYPE_STRING: {  // the flat form's pool
      const std::string value = r->GetString(message, &field);
      if (value == "max") return ScorePooling::kMax;
      if (value == "avg") return ScorePooling::kAvg;
      return InvalidField(path, absl::StrCat("must be max or avg, got '", value, "'"));
    }
    default:
      return InvalidField(path, "has a type no KV option has");
  }
}

// Sets each option field present in `message` (below `prefix`, the proto path) on `options`.
absl::Status ApplyFields(const Message& message, absl::string_view prefix,
                         KvPolicyOptions& options) {
  std::vector<const FieldDescriptor*> fields;
  message.GetReflection()->ListFields(message, &fields);
  for (const FieldDescriptor* field : fields) {
    if (field->name() == "name" || field->real_containing_oneof() != nullptr) continue;
    const std::string path = absl::StrCat(prefix, field->name());
    KVSERVE_ASSIGN_OR_RETURN(KvOptionValue value, OptionValue(message, *field, path));
    KVSERVE_RETURN_IF_ERROR(RenameField(SetKvOption(options, field->name(), value),
                                        [&path](absl::string_view) { return path; }));
  }
  return absl::OkStatus();
}

}  // namespace

KvPolicyOptions ServerKvOptions(KvPolicyKind kind, const KvDefaults& defaults) {
  if (kind == KindOf(defaults.default_policy)) return defaults.default_policy;
  KvPolicyOptions options = DefaultKvPolicyOptions(kind);
  if (TieredOptions* tiered = TieredOptionsOf(options)) tiered->page_size = defaults.page_size;
  return options;
}

absl::StatusOr<KvPolicyOptions> ToKvPolicyOptions(const v1::KvPolicy& policy,
                                                  const KvDefaults& defaults) {
  const FieldDescriptor* member = OptionsMember(policy);
  if (member == nullptr) {  // the flat form
    if (policy.name().empty()) {
      KvPolicyOptions options = defaults.default_policy;
      KVSERVE_RETURN_IF_ERROR(ApplyFields(policy, "kv_policy.", options));
      return options;
    }
    absl::StatusOr<KvPolicyKind> kind = ParseKvPolicyKind(policy.name());
    if (!kind.ok()) return PrefixFieldPath(kind.status(), "kv_policy.");
    KvPolicyOptions options = ServerKvOptions(*kind, defaults);
    KVSERVE_RETURN_IF_ERROR(ApplyFields(policy, "kv_policy.", options));
    return options;
  }
  if (!policy.name().empty() && policy.name() != member->name()) {
    return InvalidField("kv_policy.name",
                        absl::StrCat("'", policy.name(), "' names another policy than kv_policy.",
                                     member->name(), " (leave it empty)"));
  }
  std::vector<const FieldDescriptor*> flat;
  policy.GetReflection()->ListFields(policy, &flat);
  for (const FieldDescriptor* field : flat) {
    if (field->real_containing_oneof() != nullptr || field->name() == "name") continue;
    return InvalidField(absl::StrCat("kv_policy.", field->name()),
                        absl::StrCat("belongs to the deprecated flat form; set kv_policy.",
                                     member->name(), ".", field->name(), " instead"));
  }
  KVSERVE_ASSIGN_OR_RETURN(KvPolicyKind kind, ParseKvPolicyKind(member->name()));
  KvPolicyOptions options = ServerKvOptions(kind, defaults);
  KVSERVE_RETURN_IF_ERROR(ApplyFields(policy.GetReflection()->GetMessage(policy, member),
                                      absl::StrCat("kv_policy.", member->name(), "."), options));
  return options;
}

std::string ApiKvFieldPath(absl::string_view engine_path, const v1::KvPolicy& policy) {
  const FieldDescriptor* member = OptionsMember(policy);
  absl::string_view option = engine_path;
  if (member == nullptr || !absl::ConsumePrefix(&option, "kv_policy.") || option == "name") {
    return std::string(engine_path);
  }
  return absl::StrCat("kv_policy.", member->name(), ".", option);
}

v1::KvPolicy ToProto(const KvPolicyOptions& options, const ModelConfig& config) {
  v1::KvPolicy policy;
  const std::string name(KvPolicyName(options));
  policy.set_name(name);
  const FieldDescriptor* member = v1::KvPolicy::descriptor()->FindFieldByName(name);
  Message* message = policy.GetReflection()->MutableMessage(&policy, member);
  const auto* r = message->GetReflection();
  for (std::string_view option : KvOptionNames(KindOf(options))) {
    const FieldDescriptor* field = message->GetDescriptor()->FindFieldByName(std::string(option));
    const KvOptionValue value = *GetKvOption(options, option);
    if (const int* i = std::get_if<int>(&value)) {
      // -1 means "n_layers / 2 - 1": show the layer it resolves to for this model.
      r->SetInt32(message, field, option == "tsp_layer" && *i < 0 ? config.n_layers / 2 - 1 : *i);
    } else if (const float* f = std::get_if<float>(&value)) {
      r->SetFloat(message, field, *f);
    } else {
      r->SetEnumValue(message, field,
                      std::get<ScorePooling>(value) == ScorePooling::kAvg ? v1::SCORE_POOLING_AVG
                                                                          : v1::SCORE_POOLING_MAX);
    }
  }
  return policy;
}

}  // namespace kvserve::server
