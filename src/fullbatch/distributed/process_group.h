#pragma once
// c10d-backed Communicator: Gloo for CPU tensors, NCCL for CUDA tensors (when this libtorch has
// it), rendezvous through a TCPStore. Ranks come from torchrun's environment variables, so
// `torchrun --no-python fullbatch train ...`, `fullbatch launch` and a hand-written launch all
// work.
#include <torch/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fullbatch/config/config.h"
#include "fullbatch/distributed/communicator.h"

namespace fullbatch {

// What torchrun (or `fullbatch launch`) tells a process about its place in the job.
struct DistEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
};

// Reads RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT. Unset
// WORLD_SIZE means one process. Throws UserError naming the variable when one is malformed.
DistEnv dist_env_from_environment();

// Per-rank adjustments of a config that every rank resolved identically: "auto"/"cuda" become
// cuda:LOCAL_RANK when several ranks share a node, and impl.threads=0 splits the cores between the
// node's ranks instead of oversubscribing them.
Config localize_for_rank(Config config, const DistEnv& env);

// LocalCommunicator when WORLD_SIZE is unset or 1; otherwise joins the c10d group (waits at most
// impl.dist_timeout_s for every rank, then names the missing ones).
std::shared_ptr<Communicator> communicator_from_env(const Config& config);

// True when this build can join a multi-process group (c10d Gloo compiled in).
bool c10d_available();
bool nccl_available();

// Groups tensors into buckets of the same dtype and device holding at most `bucket_bytes` each (a
// larger tensor gets a bucket of its own); the order inside a bucket follows the input order.
std::vector<std::vector<size_t>> plan_buckets(const std::vector<torch::Tensor>& tensors,
                                              int64_t bucket_bytes);

// Wraps another communicator and adds up the wall time spent inside it (the benchmark's
// communication share; all_reduce time includes waiting for the slowest rank).
class TimedCommunicator final : public Communicator {
 public:
  explicit TimedCommunicator(std::shared_ptr<Communicator> inner) : inner_(std::move(inner)) {}
  int rank() const override { return inner_->rank(); }
  int world_size() const override { return inner_->world_size(); }
  void all_reduce_sum(std::vector<torch::Tensor>& tensors) override;
  void broadcast(std::vector<torch::Tensor>& tensors, int root) override;
  void barrier() override { inner_->barrier(); }

  double all_reduce_seconds() const { return all_reduce_s_; }
  int64_t all_reduce_bytes() const { return all_reduce_bytes_; }
  void reset() { all_reduce_s_ = 0, all_reduce_bytes_ = 0; }

 private:
  std::shared_ptr<Communicator> inner_;
  double all_reduce_s_ = 0;
  int64_t all_reduce_bytes_ = 0;
};

}  // namespace fullbatch
