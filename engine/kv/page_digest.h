#pragma once

#include "kernels/cpu_reference/page_digest.h"

namespace kvserve {

// How a page's keys are summarised, and the digest math itself: one implementation, the device
// kernels' CPU twin (kernels/cpu_reference/page_digest.h).
using DigestKind = kernels::PageDigestKind;
using kernels::reference::BuildPageDigest;
using kernels::reference::PageUpperBound;

}  // namespace kvserve
