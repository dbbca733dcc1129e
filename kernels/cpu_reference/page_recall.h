#pragma once

#include "kernels/tiered_kv_params.h"

namespace kvserve::kernels::reference {

// LaunchHostTierWrite's twin: the listed rows of every KV head, arena page to host page.
void HostTierWrite(const HostTierWriteParams& params);

// LaunchRecallPages' twin: each listed (unit, page, slot) from the host tier into the unit's head
// slice of the slot's arena page.
void RecallPages(const RecallParams& params);

// LaunchEmitPageLists' twin: each unit's resident slots (or a dense sequence's pages) in order.
void EmitPageLists(const EmitPageListsParams& params);

}  // namespace kvserve::kernels::reference
