#pragma once

#include "google/protobuf/message.h"
#include "nlohmann/json.hpp"

namespace kvserve::cli {

// A message as JSON with its proto field names: numbers stay numbers (64-bit ones too), enums
// become their names, fields with presence only when set, proto3 scalars always.
nlohmann::json ProtoToJson(const google::protobuf::Message& message);

}  // namespace kvserve::cli
