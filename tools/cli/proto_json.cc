#include "tools/cli/proto_json.h"

#include <charconv>
#include <cstdlib>
#include <string>

#include "google/protobuf/descriptor.h"

namespace kvserve::cli {
namespace {

// A float as the shortest decimal that reads back as it (0.1f, not 0.10000000149011612).
double FloatValue(float f) {
  char buf[32];
  const auto end = std::to_chars(buf, buf + sizeof(buf), f).ptr;
  return std::strtod(std::string(buf, end).c_str(), nullptr);
}

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

nlohmann::json Scalar(const Message& m, const Reflection& r, const FieldDescriptor* f) {
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return r.GetInt32(m, f);
    case FieldDescriptor::CPPTYPE_INT64:
      return r.GetInt64(m, f);
    case FieldDescriptor::CPPTYPE_UINT32:
      return r.GetUInt32(m, f);
    case FieldDescriptor::CPPTYPE_UINT64:
      return r.GetUInt64(m, f);
    case FieldDescriptor::CPPTYPE_FLOAT:
      return FloatValue(r.GetFloat(m, f));
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return r.GetDouble(m, f);
    case FieldDescriptor::CPPTYPE_BOOL:
      return r.GetBool(m, f);
    case FieldDescriptor::CPPTYPE_ENUM:
      return r.GetEnum(m, f)->name();
    case FieldDescriptor::CPPTYPE_STRING:
      return r.GetString(m, f);
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return ProtoToJson(r.GetMessage(m, f));
  }
  return nullptr;
}

nlohmann::json Element(const Message& m, const Reflection& r, const FieldDescriptor* f, int i) {
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return r.GetRepeatedInt32(m, f, i);
    case FieldDescriptor::CPPTYPE_INT64:
      return r.GetRepeatedInt64(m, f, i);
    case FieldDescriptor::CPPTYPE_UINT32:
      return r.GetRepeatedUInt32(m, f, i);
    case FieldDescriptor::CPPTYPE_UINT64:
      return r.GetRepeatedUInt64(m, f, i);
    case FieldDescriptor::CPPTYPE_FLOAT:
      return FloatValue(r.GetRepeatedFloat(m, f, i));
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return r.GetRepeatedDouble(m, f, i);
    case FieldDescriptor::CPPTYPE_BOOL:
      return r.GetRepeatedBool(m, f, i);
    case FieldDescriptor::CPPTYPE_ENUM:
      return r.GetRepeatedEnum(m, f, i)->name();
    case FieldDescriptor::CPPTYPE_STRING:
      return r.GetRepeatedString(m, f, i);
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return ProtoToJson(r.GetRepeatedMessage(m, f, i));
  }
  return nullptr;
}

}  // namespace

nlohmann::json ProtoToJson(const Message& message) {
  const Reflection& r = *message.GetReflection();
  const auto& descriptor = *message.GetDescriptor();
  nlohmann::json out = nlohmann::json::object();
  for (int i = 0; i < descriptor.field_count(); ++i) {
    const FieldDescriptor* f = descriptor.field(i);
    if (f->is_repeated()) {
      nlohmann::json list = nlohmann::json::array();
      for (int j = 0; j < r.FieldSize(message, f); ++j) list.push_back(Element(message, r, f, j));
      out[f->name()] = std::move(list);
    } else if (!f->has_presence() || r.HasField(message, f)) {
      out[f->name()] = Scalar(message, r, f);
    }
  }
  return out;
}

}  // namespace kvserve::cli
