#include "fullbatch/training/block_pass.h"

#include <algorithm>

namespace fullbatch {
namespace {

void reduce_sums(Communicator& comm, const std::function<TensorList()>& sums) {
  TensorList tensors = sums();
  if (comm.world_size() > 1 && !tensors.empty()) comm.all_reduce_sum(tensors);
}

}  // namespace

void for_each_owned_block(const Communicator& comm, int64_t blocks, const BlockVisit& visit) {
  const double weight = full_batch_block_weight(blocks);
  for (int64_t b = 0; b < blocks; ++b)
    if (owns(comm, b)) visit(b, weight);
}

void sum_over_blocks(Communicator& comm, int64_t blocks, const BlockVisit& visit,
                     const std::function<TensorList()>& sums) {
  for_each_owned_block(comm, blocks, visit);
  reduce_sums(comm, sums);
}

void sum_over_block_groups(Communicator& comm, int64_t blocks, int64_t group_size,
                           const BlockGroupVisit& visit, const std::function<TensorList()>& sums) {
  std::vector<int64_t> mine;
  for_each_owned_block(comm, blocks, [&](int64_t b, double) { mine.push_back(b); });
  const size_t size = static_cast<size_t>(std::max<int64_t>(group_size, 1));
  const double weight = full_batch_block_weight(blocks);
  for (size_t begin = 0; begin < mine.size(); begin += size) {
    const size_t end = std::min(begin + size, mine.size());
    visit(std::vector<int64_t>(mine.begin() + begin, mine.begin() + end), weight);
  }
  reduce_sums(comm, sums);
}

}  // namespace fullbatch
