#pragma once

namespace kvserve {

// What one step runs for a sequence: rows of its prompt (any count; a prompt's last chunk may be
// a single token), or the one token it decoded last. Only decode chunks run a policy's decode
// hooks and take a tiered policy's device budget.
enum class ChunkKind { kPrompt, kDecode };

}  // namespace kvserve
