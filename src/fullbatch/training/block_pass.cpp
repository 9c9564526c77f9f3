#include "fullbatch/training/block_pass.h"

namespace fullbatch {

void for_each_owned_block(const Communicator& comm, int64_t blocks, const BlockVisit& visit) {
  const double weight = full_batch_block_weight(blocks);
  for (int64_t b = 0; b < blocks; ++b)
    if (owns(comm, b)) visit(b, weight);
}

void sum_over_blocks(Communicator& comm, int64_t blocks, const BlockVisit& visit,
                     const std::function<TensorList()>& sums) {
  for_each_owned_block(comm, blocks, visit);
  TensorList tensors = sums();
  if (comm.world_size() > 1 && !tensors.empty()) comm.all_reduce_sum(tensors);
}

}  // namespace fullbatch
