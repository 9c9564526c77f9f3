#pragma once
// One pass over a full batch's B blocks: the skeleton every full-batch loop shares, written once.
// The trainer's full gradient and its pre-pass (training/full_batch_step.cpp) and the analysis
// objective's value, gradient and Hessian-vector products (analysis/objective.cpp) all go through
// it: this rank visits its share of the blocks (owns(), in index order), each block adds its
// contribution with the weight 1/B the mean loss gives it, and the sums are then added over
// ranks. What a block contributes (a plain gradient, penalized and clipped chunks, H v) is the
// caller's visit; the dealing, the weighting and the reduction are here.
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "fullbatch/common/tensor_list.h"
#include "fullbatch/distributed/communicator.h"

namespace fullbatch {

// The weight of each of B blocks in the full-batch objective: 1/B, every block equal whatever its
// size, as the reference's accumulation (a short last block weighs as much as a full one). The
// trainer's step and the analyses' objective both weigh through this pass, so the Hessian the
// analyses report is that of the objective the run follows.
inline double full_batch_block_weight(int64_t blocks) {
  return 1.0 / static_cast<double>(blocks);
}

// `visit(b, weight)` for this rank's blocks b of 0..blocks-1, in order; weight = 1/blocks.
using BlockVisit = std::function<void(int64_t block, double weight)>;
void for_each_owned_block(const Communicator& comm, int64_t blocks, const BlockVisit& visit);

// for_each_owned_block, then the tensors `sums()` returns summed over ranks in place. `sums` is
// called after the visits because a backward pass may have replaced a parameter's .grad.
void sum_over_blocks(Communicator& comm, int64_t blocks, const BlockVisit& visit,
                     const std::function<TensorList()>& sums);

// The same pass with this rank's blocks visited in groups of up to `group_size` consecutive owned
// blocks (in order, so a group's blocks are those one block at a time would visit next):
// `visit(indices, weight)` adds weight times the group's blocks' contributions. Group size 1
// is sum_over_blocks.
using BlockGroupVisit = std::function<void(const std::vector<int64_t>& blocks, double weight)>;
void sum_over_block_groups(Communicator& comm, int64_t blocks, int64_t group_size,
                           const BlockGroupVisit& visit, const std::function<TensorList()>& sums);

}  // namespace fullbatch
