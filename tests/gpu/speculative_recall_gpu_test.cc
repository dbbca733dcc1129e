// FreeKV's speculative recall between two streams (kernels/speculative_recall.h): attention of
// step t over the resident pages, then selection with q_t and the gather of the new pages on a
// recall stream, then attention of step t + 1 over them. Overlapped through events, the outputs
// must equal a run of the same work in one stream, bit for bit. On the emulator the streams run
// deferred and latest first, so a missing event wait changes the results: without the recall
// stream's wait for attention(t) (the reference code's race, research/freekv.md §10.1) the gather
// overwrites the victims attention(t) reads; without the compute stream's wait for the recall,
// attention(t + 1) reads the old pages. The last test shows that the emulator sees both.
#include <cuda_runtime.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu_reference/page_digest.h"
#include "kernels/host_tier.h"
#include "kernels/page_recall.h"
#include "kernels/page_select.h"
#include "kernels/sparse_decode_attention.h"
#include "kernels/speculative_recall.h"
#include "tests/gpu/gpu_test_support.h"

namespace kvserve::kernels {
namespace {

using testing::DeviceBuffer;

enum class Ordering {
  kOneStream,        // everything on the compute stream, in order
  kOverlapped,       // the recall stream, ordered by IssueSpeculativeRecall's events
  kNoAttentionWait,  // the recall stream without waiting for attention(t)
  kNoRecallWait,     // attention(t + 1) without waiting for the recall
};

constexpr int kSeqs = 2, kKv = 2, kGroup = 2, kHeads = kKv * kGroup, kDim = 64, kPage = 16;
constexpr TieredLayout kLayout{.slots = 5, .sink = 1, .window = 1};
constexpr int kMaxPages = 16;
constexpr int kUnits = kSeqs * kKv;

struct Outputs {
  std::vector<Bf16> step_t;
  std::vector<Bf16> step_next;
  std::vector<int32_t> recalled;  // the speculative recall's counts
};

// One layer of two sequences: the host tier holds every page, the arena each sequence's budget.
class SpeculativeRecallFixture {
 public:
  SpeculativeRecallFixture() : rng_(11) {
    const PagedKvLayout l = Layout();
    EXPECT_EQ(AllocateHostTier(l, kSeqs * kMaxPages, &tier_), cudaSuccess);
    host_ = testing::RandomBf16(tier_.bytes / sizeof(Bf16), rng_);
    std::memcpy(tier_.host, host_.data(), tier_.bytes);
    for (int i = 0; i < kSeqs * kMaxPages; ++i) host_table_.push_back(i);
    for (int i = 0; i < kSeqs * kLayout.slots; ++i)
      budget_.push_back(kSeqs * kLayout.slots - 1 - i);
    // Digests of every full page, from the host tier (row = host page).
    std::vector<float> digests(static_cast<size_t>(kSeqs) * kMaxPages * kKv * 2 * kDim);
    reference::BuildPageDigests({.pages = host_.data(),
                                 .layout = l,
                                 .src_pages = host_table_.data(),
                                 .digest_rows = host_table_.data(),
                                 .num_pages = kSeqs * kMaxPages,
                                 .kind = PageDigestKind::kCenterMad,
                                 .digests = digests.data()});
    digests_ = std::make_unique<DeviceBuffer<float>>(digests);
    q0_ = testing::RandomBf16(kSeqs * kHeads * kDim, rng_);
    q1_ = testing::RandomBf16(kSeqs * kHeads * kDim, rng_);
  }
  ~SpeculativeRecallFixture() { FreeHostTier(&tier_); }

  static PagedKvLayout Layout() {
    return {.n_kv_heads = kKv, .page_size = kPage, .head_dim = kDim};
  }

  Outputs Run(Ordering ordering) {
    const PagedKvLayout l = Layout();
    DeviceBuffer<Bf16> arena(std::vector<Bf16>(kSeqs * kLayout.slots * l.PageElements()));
    DeviceBuffer<int32_t> host_table(host_table_), budget(budget_), lens(lens_);
    DeviceBuffer<int32_t> slot_page(std::vector<int32_t>(kUnits * kLayout.slots, -1));
    DeviceBuffer<int32_t> page_slot(std::vector<int32_t>(kUnits * kMaxPages, -1));
    DeviceBuffer<int32_t> n_pages(std::vector<int32_t>(kUnits, 0)),
        cursor(std::vector<int32_t>(kUnits, 0));
    DeviceBuffer<int32_t> counts(kUnits), pages(kUnits * kLayout.slots),
        slots(kUnits * kLayout.slots);
    DeviceBuffer<int32_t> list_counts(kUnits), list_pages(kUnits * kLayout.slots),
        list_rows(kUnits * kLayout.slots);
    DeviceBuffer<Bf16> q0(q0_), q1(q1_), out0(kSeqs * kHeads * kDim), out1(kSeqs * kHeads * kDim);
    DeviceBuffer<float> workspace(1);
    cudaStream_t compute = nullptr, recall = nullptr;
    cudaEvent_t attention_done = nullptr, recall_done = nullptr;
    EXPECT_EQ(cudaStreamCreateWithFlags(&compute, cudaStreamNonBlocking), cudaSuccess);
    EXPECT_EQ(cudaStreamCreateWithFlags(&recall, cudaStreamNonBlocking), cudaSuccess);
    EXPECT_EQ(cudaEventCreateWithFlags(&attention_done, cudaEventDisableTiming), cudaSuccess);
    EXPECT_EQ(cudaEventCreateWithFlags(&recall_done, cudaEventDisableTiming), cudaSuccess);

    const ResidencyState residency{.slot_page = slot_page.data(),
                                   .page_slot = page_slot.data(),
                                   .max_pages = kMaxPages,
                                   .n_pages = n_pages.data(),
                                   .next_window = cursor.data()};
    const PlacementList placements{.counts = counts.data(),
                                   .pages = pages.data(),
                                   .slots = slots.data(),
                                   .capacity = kLayout.slots};
    const RecallParams gather{.host = {.pages = tier_.device,
                                       .layout = l,
                                       .page_table = host_table.data(),
                                       .page_table_stride = kMaxPages},
                              .device_pages = arena.data(),
                              .budget_pages = budget.data(),
                              .slots = kLayout.slots,
                              .host_lens = lens.data(),
                              .num_seqs = kSeqs,
                              .list = placements,
                              .max_blocks = 3};
    auto select = [&](const Bf16* q) {
      return SelectPagesParams{.q = q,
                               .q_row_stride = kHeads * kDim,
                               .num_seqs = kSeqs,
                               .n_heads = kHeads,
                               .digests = {.data = digests_->data(),
                                           .row_pages = kMaxPages,
                                           .n_kv_heads = kKv,
                                           .head_dim = kDim},
                               .kv_lens = lens.data(),
                               .page_size = kPage,
                               .layout = kLayout,
                               .residency = residency,
                               .recalls = placements};
    };
    auto attend = [&](const Bf16* q, Bf16* out) {
      EXPECT_EQ(LaunchEmitPageLists({.kv_lens = lens.data(),
                                     .num_seqs = kSeqs,
                                     .n_kv_heads = kKv,
                                     .page_size = kPage,
                                     .layout = kLayout,
                                     .slot_page = slot_page.data(),
                                     .budget_pages = budget.data(),
                                     .counts = list_counts.data(),
                                     .pages = list_pages.data(),
                                     .rows = list_rows.data(),
                                     .capacity = kLayout.slots},
                                    compute),
                cudaSuccess);
      EXPECT_EQ(LaunchSparseDecodeAttention({.q = q,
                                             .q_row_stride = kHeads * kDim,
                                             .out = out,
                                             .out_row_stride = kHeads * kDim,
                                             .num_seqs = kSeqs,
                                             .n_heads = kHeads,
                                             .pages = arena.data(),
                                             .layout = l,
                                             .lists = {.counts = list_counts.data(),
                                                       .pages = list_pages.data(),
                                                       .rows = list_rows.data(),
                                                       .capacity = kLayout.slots},
                                             .max_list_pages = kLayout.slots,
                                             .scale = 0.125f},
                                            {.num_splits = 1, .split_len = 2 * kDecodeTileKeys},
                                            workspace.data(), compute),
                cudaSuccess);
    };

    // The budget's first fill, synchronously (quest's path): extend, select with q0, gather.
    EXPECT_EQ(LaunchExtendResidency({.kv_lens = lens.data(),
                                     .num_seqs = kSeqs,
                                     .n_kv_heads = kKv,
                                     .page_size = kPage,
                                     .layout = kLayout,
                                     .residency = residency,
                                     .placements = placements},
                                    compute),
              cudaSuccess);
    EXPECT_EQ(LaunchRecallPages(gather, compute), cudaSuccess);
    EXPECT_EQ(LaunchSelectPages(select(q0.data()), compute), cudaSuccess);
    EXPECT_EQ(LaunchRecallPages(gather, compute), cudaSuccess);
    EXPECT_EQ(cudaStreamSynchronize(compute), cudaSuccess);

    // Step t, the speculative recall for t + 1, step t + 1: issued without host waits.
    attend(q0.data(), out0.data());
    switch (ordering) {
      case Ordering::kOneStream:
        EXPECT_EQ(LaunchSelectPages(select(q1.data()), compute), cudaSuccess);
        EXPECT_EQ(LaunchRecallPages(gather, compute), cudaSuccess);
        break;
      case Ordering::kOverlapped:
      case Ordering::kNoRecallWait:
        EXPECT_EQ(IssueSpeculativeRecall(select(q1.data()), gather, compute, recall, attention_done,
                                         recall_done),
                  cudaSuccess);
        if (ordering == Ordering::kOverlapped) {
          EXPECT_EQ(WaitForSpeculativeRecall(compute, recall_done), cudaSuccess);
        }
        break;
      case Ordering::kNoAttentionWait:
        EXPECT_EQ(LaunchSelectPages(select(q1.data()), recall), cudaSuccess);
        EXPECT_EQ(LaunchRecallPages(gather, recall), cudaSuccess);
        EXPECT_EQ(cudaEventRecord(recall_done, recall), cudaSuccess);
        EXPECT_EQ(WaitForSpeculativeRecall(compute, recall_done), cudaSuccess);
        break;
    }
    attend(q1.data(), out1.data());
    EXPECT_EQ(cudaStreamSynchronize(compute), cudaSuccess);
    EXPECT_EQ(cudaStreamSynchronize(recall), cudaSuccess);
    Outputs o{.step_t = out0.ToHost(), .step_next = out1.ToHost(), .recalled = counts.ToHost()};
    cudaEventDestroy(attention_done);
    cudaEventDestroy(recall_done);
    cudaStreamDestroy(compute);
    cudaStreamDestroy(recall);
    return o;
  }

 private:
  std::mt19937 rng_;
  HostTierMemory tier_;
  std::vector<Bf16> host_;
  std::vector<int32_t> host_table_, budget_;
  const std::vector<int32_t> lens_ = {12 * kPage, 9 * kPage + 5};
  std::unique_ptr<DeviceBuffer<float>> digests_;
  std::vector<Bf16> q0_, q1_;
};

bool SameBits(const std::vector<Bf16>& a, const std::vector<Bf16>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(Bf16)) == 0;
}

class SpeculativeRecallGpuTest : public testing::GpuTest {
 protected:
  void TearDown() override {
#if defined(KVSERVE_CUDA_EMULATOR)
    cuda_emulator::SetStreamSchedule(cuda_emulator::StreamSchedule::kEager);
#endif
  }
};

TEST_F(SpeculativeRecallGpuTest, OverlappedRecallEqualsOneStream) {
  SpeculativeRecallFixture fixture;
  const Outputs one = fixture.Run(Ordering::kOneStream);
  int recalled = 0;
  for (int c : one.recalled) recalled += c;
  ASSERT_GT(recalled, 0) << "q_t must move pages for the orderings to matter";
  ASSERT_FALSE(SameBits(one.step_t, one.step_next));
#if defined(KVSERVE_CUDA_EMULATOR)
  // Deferred streams, run latest first: an unordered pair runs in the wrong order.
  cuda_emulator::SetStreamSchedule(cuda_emulator::StreamSchedule::kLatestFirst);
#endif
  const Outputs overlapped = fixture.Run(Ordering::kOverlapped);
  testing::ExpectBitsEqual(overlapped.step_t, one.step_t, "attention(t)");
  testing::ExpectBitsEqual(overlapped.step_next, one.step_next, "attention(t + 1)");
  EXPECT_EQ(overlapped.recalled, one.recalled);
}

#if defined(KVSERVE_CUDA_EMULATOR)
TEST_F(SpeculativeRecallGpuTest, TheEmulatorShowsEitherMissingWait) {
  SpeculativeRecallFixture fixture;
  const Outputs one = fixture.Run(Ordering::kOneStream);
  cuda_emulator::SetStreamSchedule(cuda_emulator::StreamSchedule::kLatestFirst);
  const Outputs no_attention_wait = fixture.Run(Ordering::kNoAttentionWait);
  EXPECT_FALSE(SameBits(no_attention_wait.step_t, one.step_t))
      << "the gather ran before attention(t) and overwrote its victims";
  const Outputs no_recall_wait = fixture.Run(Ordering::kNoRecallWait);
  EXPECT_TRUE(SameBits(no_recall_wait.step_t, one.step_t));
  EXPECT_FALSE(SameBits(no_recall_wait.step_next, one.step_next))
      << "attention(t + 1) ran before the recall";
}
#endif

}  // namespace
}  // namespace kvserve::kernels
