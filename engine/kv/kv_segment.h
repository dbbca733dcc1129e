#pragma once

namespace kvserve {

// A run of one KV head's cached rows: `rows` keys and values, each row `row_stride` floats after
// the previous. Decode attention over a tiered cache reads a list of them (one per budget slot).
struct KvSegment {
  const float* keys;
  const float* values;
  int rows;
  int row_stride;
};

}  // namespace kvserve
