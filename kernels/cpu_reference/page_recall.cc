#include "kernels/cpu_reference/page_recall.h"

#include <algorithm>
#include <cstring>

#include "kernels/ceil_div.h"

namespace kvserve::kernels::reference {

void HostTierWrite(const HostTierWriteParams& p) {
  const PagedKvLayout& l = p.layout;
  for (int i = 0; i < p.num_copies; ++i) {
    const PageRowCopy& c = p.copies[i];
    for (int h = 0; h < l.n_kv_heads; ++h) {
      for (int value = 0; value < 2; ++value) {
        std::memcpy(p.dst_pages + l.RowOffset(c.dst_page, h, value, c.first_row),
                    p.src_pages + l.RowOffset(c.src_page, h, value, c.first_row),
                    sizeof(Bf16) * c.rows * l.head_dim);
      }
    }
  }
}

void RecallPages(const RecallParams& p) {
  const PagedKvLayout& l = p.host.layout;
  const int n_kv_heads = l.n_kv_heads;
  for (int seq = 0; seq < p.num_seqs; ++seq) {
    for (int h = 0; h < n_kv_heads; ++h) {
      const size_t unit = static_cast<size_t>(seq) * n_kv_heads + h;
      for (int i = 0; i < p.list.counts[unit]; ++i) {
        const int32_t page = p.list.pages[unit * p.list.capacity + i];
        const int32_t slot = p.list.slots[unit * p.list.capacity + i];
        const int rows = std::clamp(p.host_lens[seq] - page * l.page_size, 0, l.page_size);
        const int32_t src =
            p.host.page_table[static_cast<size_t>(seq) * p.host.page_table_stride + page];
        const int32_t dst = p.budget_pages[static_cast<size_t>(seq) * p.slots + slot];
        for (int value = 0; value < 2; ++value) {
          std::memcpy(p.device_pages + l.RowOffset(dst, h, value, 0),
                      p.host.pages + l.RowOffset(src, h, value, 0),
                      sizeof(Bf16) * rows * l.head_dim);
        }
      }
    }
  }
}

void EmitPageLists(const EmitPageListsParams& p) {
  const int slots = p.layout.slots;
  const int budget_stride = p.budget_stride > 0 ? p.budget_stride : slots;
  for (int seq = 0; seq < p.num_seqs; ++seq) {
    const int len = p.kv_lens[seq];
    const int n_pages = CeilDiv(len, p.page_size);
    for (int h = 0; h < p.n_kv_heads; ++h) {
      const size_t unit = static_cast<size_t>(seq) * p.n_kv_heads + h;
      const size_t state = static_cast<size_t>(StateRow(p.state_rows, seq)) * p.n_kv_heads + h;
      int count = 0;
      auto add = [&](int32_t arena_page, int32_t logical) {
        p.pages[unit * p.capacity + count] = arena_page;
        p.rows[unit * p.capacity + count] = std::min(p.page_size, len - logical * p.page_size);
        ++count;
      };
      if (n_pages <= slots) {
        for (int32_t j = 0; j < n_pages; ++j) {
          add(p.dense_table[static_cast<size_t>(seq) * p.dense_stride + j], j);
        }
      } else {
        for (int32_t slot = 0; slot < slots; ++slot) {
          const int32_t page = p.slot_page[state * slots + slot];
          if (page >= 0) add(p.budget_pages[static_cast<size_t>(seq) * budget_stride + slot], page);
        }
      }
      p.counts[unit] = count;
    }
  }
}

}  // namespace kvserve::kernels::reference
