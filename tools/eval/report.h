#pragma once

#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace kvserve::eval {

// The evaluation's records (one JSON object each, as the tool logs them): "run" (settings, command
// line, machine), "passkey" and "agreement" (one prompt, every configuration), "self_check",
// "done". Renders them as docs/accuracy.md: passkey accuracy per configuration and length, per
// depth, agreement with full, the self-check, and how the figures were made.
std::string RenderMarkdown(const std::vector<nlohmann::json>& records);

}  // namespace kvserve::eval
