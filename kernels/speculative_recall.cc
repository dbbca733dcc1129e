#include "kernels/speculative_recall.h"

#include "kernels/page_recall.h"
#include "kernels/page_select.h"

namespace kvserve::kernels {

cudaError_t IssueSpeculativeRecall(const SelectPagesParams& select, const RecallParams& recall,
                                   cudaStream_t compute, cudaStream_t recall_stream,
                                   cudaEvent_t attention_done, cudaEvent_t recall_done) {
  cudaError_t err = cudaEventRecord(attention_done, compute);
  if (err == cudaSuccess) err = cudaStreamWaitEvent(recall_stream, attention_done, 0);
  if (err == cudaSuccess) err = LaunchSelectPages(select, recall_stream);
  if (err == cudaSuccess) err = LaunchRecallPages(recall, recall_stream);
  if (err == cudaSuccess) err = cudaEventRecord(recall_done, recall_stream);
  return err;
}

cudaError_t WaitForSpeculativeRecall(cudaStream_t compute, cudaEvent_t recall_done) {
  return cudaStreamWaitEvent(compute, recall_done, 0);
}

}  // namespace kvserve::kernels
