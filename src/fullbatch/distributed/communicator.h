#pragma once
// What training needs from a group of processes: sums, broadcasts and barriers over ranks,
// behind one interface so the same step runs in one process or many.
#include <torch/types.h>

#include <memory>
#include <vector>

#include "fullbatch/common/error.h"

namespace fullbatch {

// A peer rank died, hung past impl.dist_timeout_s, or never joined. The message names the rank;
// it is not a bug in fullbatch, so the CLI treats it like any other one-line UserError.
class DistributedError : public UserError {
 public:
  using UserError::UserError;
};

// What the trainer needs from a process group. The trainer is written against this so that the
// same step runs in one process (LocalCommunicator) or many (c10d, see process_group.h).
class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  // In-place sum over ranks; tensors may be of different shapes (bucketed by the implementation).
  virtual void all_reduce_sum(std::vector<torch::Tensor>& tensors) = 0;
  // In-place copy of rank `root`'s tensors to every rank.
  virtual void broadcast(std::vector<torch::Tensor>& tensors, int root) = 0;
  virtual void barrier() = 0;
  bool is_root() const { return rank() == 0; }
};

// Whether this rank computes item `index` of a pass (a training block, an evaluation chunk):
// items are dealt round-robin, so an item's index, not the rank, keys its randomness, and the sum
// over ranks is the whole pass whatever the world size. The one dealing rule of every loop.
inline bool owns(const Communicator& comm, int64_t index) {
  return index % comm.world_size() == comm.rank();
}

class LocalCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  void all_reduce_sum(std::vector<torch::Tensor>&) override {}
  void broadcast(std::vector<torch::Tensor>&, int) override {}
  void barrier() override {}
};

}  // namespace fullbatch
