#include "fullbatch/distributed/process_group.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <sstream>
#include <thread>

#include "fullbatch/common/clock.h"
#include "fullbatch/common/error.h"
#include "fullbatch/common/torch_compat.h"

// The c10d headers only declare their backends when these are defined; CMake defines
// FULLBATCH_WITH_GLOO / FULLBATCH_WITH_NCCL after checking that the headers exist.
#if defined(FULLBATCH_WITH_GLOO) && !defined(USE_C10D_GLOO)
#define USE_C10D_GLOO
#endif
#if defined(FULLBATCH_WITH_NCCL) && !defined(USE_C10D_NCCL)
#define USE_C10D_NCCL
#endif
#ifdef FULLBATCH_WITH_GLOO
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif
#ifdef FULLBATCH_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace fullbatch {
namespace {

using Group = compat::C10dBackend;
constexpr int64_t kBucketBytes = 25 << 20;

int env_int(const char* name, int fallback, int min_value) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  long x = std::strtol(v, &end, 10);
  if (*end != '\0' || x < min_value || x > 1 << 24)
    throw UserError(std::string("environment variable ") + name + "='" + v +
                    "' is not an integer >= " + std::to_string(min_value));
  return static_cast<int>(x);
}

std::string rank_list(const std::vector<int>& ranks) {
  std::string s;
  for (size_t i = 0; i < ranks.size(); ++i) s += (i ? ", " : "") + std::to_string(ranks[i]);
  return s;
}

std::string seconds_text(std::chrono::milliseconds t) {
  std::ostringstream s;
  s << static_cast<double>(t.count()) / 1000.0 << " s";
  return s.str();
}

// The config with its per-rank keys blanked, so ranks can check they run the same experiment.
std::string shared_config_text(Config c) {
  c.impl.device = "";
  c.impl.threads = 0;
  c.impl.progress = false;
  return to_yaml(c);
}

}  // namespace

DistEnv dist_env_from_environment() {
  DistEnv env;
  env.world_size = env_int("WORLD_SIZE", 1, 1);
  env.rank = env_int("RANK", 0, 0);
  env.local_rank = env_int("LOCAL_RANK", env.rank, 0);
  env.local_world_size = env_int("LOCAL_WORLD_SIZE", env.world_size, 1);
  env.master_port = env_int("MASTER_PORT", 29500, 1);
  if (const char* a = std::getenv("MASTER_ADDR"); a && *a) env.master_addr = a;
  if (env.rank >= env.world_size)
    throw UserError("environment variable RANK=" + std::to_string(env.rank) +
                    " is not below WORLD_SIZE=" + std::to_string(env.world_size));
  if (env.master_port > 65535)
    throw UserError("environment variable MASTER_PORT=" + std::to_string(env.master_port) +
                    " is not a TCP port");
  return env;
}

Config localize_for_rank(Config config, const DistEnv& env) {
  if (env.world_size <= 1) return config;
  auto& device = config.impl.device;
  const bool wants_cuda = device == "cuda" || (device == "auto" && torch::cuda::is_available());
  if (wants_cuda) device = "cuda:" + std::to_string(env.local_rank);
  if (config.impl.threads == 0 && env.local_world_size > 1) {
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    config.impl.threads = std::max(1, cores / env.local_world_size);
  }
  return config;
}

std::vector<std::vector<size_t>> plan_buckets(const std::vector<torch::Tensor>& tensors,
                                              int64_t bucket_bytes) {
  std::vector<std::vector<size_t>> buckets;
  std::vector<int64_t> bytes;
  std::map<std::string, size_t> open;  // (dtype, device) -> bucket still taking tensors
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& t = tensors[i];
    const std::string key = std::string(c10::toString(t.scalar_type())) + "@" + t.device().str();
    const int64_t n = static_cast<int64_t>(t.nbytes());
    auto it = open.find(key);
    if (it == open.end() || bytes[it->second] + n > bucket_bytes) {
      buckets.emplace_back();
      bytes.push_back(0);
      it = open.insert_or_assign(key, buckets.size() - 1).first;
    }
    buckets[it->second].push_back(i);
    bytes[it->second] += n;
  }
  return buckets;
}

void TimedCommunicator::all_reduce_sum(std::vector<torch::Tensor>& tensors) {
  const auto t0 = Clock::now();
  inner_->all_reduce_sum(tensors);
  all_reduce_s_ += seconds_since(t0);
  for (const auto& t : tensors) all_reduce_bytes_ += static_cast<int64_t>(t.nbytes());
}

void TimedCommunicator::broadcast(std::vector<torch::Tensor>& tensors, int root) {
  inner_->broadcast(tensors, root);
}

bool nccl_available() {
#ifdef FULLBATCH_WITH_NCCL
  return true;
#else
  return false;
#endif
}

#ifdef FULLBATCH_WITH_GLOO

bool c10d_available() {
  return true;
}

namespace {

// One c10d group per job. Every collective waits at most `timeout_`; when one fails, the ranks
// still alive find out through the store which ranks went silent and name them in the error.
class C10dCommunicator final : public Communicator {
 public:
  C10dCommunicator(const DistEnv& env, const Config& config)
      : env_(env),
        timeout_(std::chrono::milliseconds(
            static_cast<int64_t>(std::max(0.001, config.impl.dist_timeout_s) * 1000.0))) {
    connect_store();
    try {
      join(shared_config_text(config));
    } catch (const UserError&) {
      throw;
    } catch (const std::exception& e) {
      throw DistributedError("rank " + std::to_string(env_.rank) +
                             " lost the rendezvous store at " + address() +
                             " while joining: " + one_line(e));
    }
    make_groups(config);
  }

  ~C10dCommunicator() override {
    // After a failure the groups may still be blocked on a dead peer; their destructors would
    // wait for that work, so the process leaks them and exits instead of hanging.
    if (!broken_) return;
    gloo_.release();
#ifdef FULLBATCH_WITH_NCCL
    nccl_.release();
#endif
    store_.release();
  }

  int rank() const override {
    return env_.rank;
  }
  int world_size() const override {
    return env_.world_size;
  }

  void all_reduce_sum(std::vector<torch::Tensor>& tensors) override {
    for (const auto& bucket : plan_buckets(tensors, kBucketBytes))
      on_bucket(tensors, bucket, "all-reduce", [&](std::vector<torch::Tensor>& flat) {
        c10d::AllreduceOptions o;
        o.reduceOp = c10d::ReduceOp::SUM;
        return group_for(flat[0])->allreduce(flat, o);
      });
  }

  void broadcast(std::vector<torch::Tensor>& tensors, int root) override {
    for (const auto& bucket : plan_buckets(tensors, kBucketBytes))
      on_bucket(tensors, bucket, "broadcast", [&](std::vector<torch::Tensor>& flat) {
        c10d::BroadcastOptions o;
        o.rootRank = root;
        return group_for(flat[0])->broadcast(flat, o);
      });
  }

  void barrier() override {
    complete("barrier", [&] { return gloo_->barrier(); });
  }

 private:
  void connect_store() {
    c10d::TCPStoreOptions o;
    o.port = static_cast<std::uint16_t>(env_.master_port);
    o.isServer = env_.rank == 0;
    o.numWorkers = static_cast<std::size_t>(env_.world_size);
    o.waitWorkers = false;  // join() waits, and can then say which ranks are missing
    o.timeout = timeout_;
    try {
      store_ = c10::make_intrusive<c10d::TCPStore>(env_.master_addr, o);
    } catch (const std::exception& e) {
      throw DistributedError(
          env_.rank == 0
              ? "rank 0 cannot serve the rendezvous store on " + address() + ": " + one_line(e)
              : "rank " + std::to_string(env_.rank) +
                    " cannot reach the rendezvous store of rank 0 at " + address() + " within " +
                    seconds_text(timeout_) + ": " + one_line(e));
    }
  }

  // Every rank checks in and compares its config with rank 0's before any collective.
  void join(const std::string& config_text) {
    if (env_.rank == 0) store_->set("fullbatch/config", bytes(config_text));
    store_->set("fullbatch/joined/" + std::to_string(env_.rank), bytes("1"));
    std::vector<int> missing = wait_for_keys("fullbatch/joined/", timeout_);
    if (!missing.empty())
      throw DistributedError("rank(s) " + rank_list(missing) + " did not join the group at " +
                             address() + " within " + seconds_text(timeout_) +
                             " (impl.dist_timeout_s)");
    if (env_.rank != 0) {
      std::vector<uint8_t> root = store_->get("fullbatch/config");
      if (std::string(root.begin(), root.end()) != config_text)
        throw UserError("rank " + std::to_string(env_.rank) +
                        " resolved a different config than rank 0; give every rank the same "
                        "preset, files and overrides");
    }
  }

  void make_groups(const Config& config) {
    auto gloo_store = c10::make_intrusive<c10d::PrefixStore>("gloo", store_);
    auto o = c10d::ProcessGroupGloo::Options::create(timeout_);
    // On one node stay on loopback; across nodes bind the interface the hostname resolves to
    // (GLOO_SOCKET_IFNAME picks one explicitly).
    if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname) {
      o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    } else if (is_loopback(env_.master_addr)) {
      o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    } else {
      o->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    try {
      gloo_ =
          c10::make_intrusive<c10d::ProcessGroupGloo>(gloo_store, env_.rank, env_.world_size, o);
    } catch (const std::exception& e) {
      fail("connecting the Gloo group", e);
    }
#ifdef FULLBATCH_WITH_NCCL
    if (config.impl.device.rfind("cuda", 0) == 0) {
      // Blocking wait makes a timed-out NCCL collective throw here rather than abort the process
      // from the watchdog, so the error can name the silent rank.
      ::setenv("TORCH_NCCL_BLOCKING_WAIT", "1", 0);
      ::setenv("NCCL_BLOCKING_WAIT", "1", 0);
      auto no = c10d::ProcessGroupNCCL::Options::create();
      no->timeout = timeout_;
      auto nccl_store = c10::make_intrusive<c10d::PrefixStore>("nccl", store_);
      nccl_ =
          c10::make_intrusive<c10d::ProcessGroupNCCL>(nccl_store, env_.rank, env_.world_size, no);
    }
#else
    (void)config;
#endif
  }

  static bool is_loopback(const std::string& addr) {
    return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1";
  }

  // The group that owns a tensor's device: NCCL for CUDA, Gloo otherwise.
  Group* group_for(const torch::Tensor& t) {
#ifdef FULLBATCH_WITH_NCCL
    if (t.is_cuda() && nccl_) return nccl_.get();
#endif
    if (t.is_cuda())
      throw UserError("a multi-process CUDA run needs NCCL, which this build of fullbatch lacks");
    return gloo_.get();
  }

  // Runs one collective on a bucket: a single contiguous tensor goes as is, several are
  // flattened into one buffer and copied back afterwards.
  template <typename Op>
  void on_bucket(std::vector<torch::Tensor>& tensors, const std::vector<size_t>& bucket,
                 const char* what, Op op) {
    torch::NoGradGuard no_grad;
    const auto& first = tensors[bucket[0]];
    if (bucket.size() == 1 && first.is_contiguous()) {
      std::vector<torch::Tensor> one{first};
      complete(what, [&] { return op(one); });
      return;
    }
    std::vector<torch::Tensor> parts;
    for (size_t i : bucket) parts.push_back(tensors[i].reshape(-1));
    std::vector<torch::Tensor> flat{torch::cat(parts)};
    complete(what, [&] { return op(flat); });
    int64_t offset = 0;
    for (size_t i : bucket) {
      auto& t = tensors[i];
      t.copy_(flat[0].slice(0, offset, offset + t.numel()).view(t.sizes()));
      offset += t.numel();
    }
  }

  template <typename Start>
  void complete(const char* what, Start start) {
    if (broken_)
      throw DistributedError("the process group already failed; no further " + std::string(what));
    try {
      auto work = start();
      if (!work->wait(timeout_)) throw std::runtime_error("timed out");
    } catch (const DistributedError&) {
      throw;
    } catch (const UserError&) {
      throw;
    } catch (const std::exception& e) {
      fail(what, e);
    }
  }

  [[noreturn]] void fail(const std::string& what, const std::exception& e) {
    broken_ = true;
    std::string cause = one_line(e);
    std::vector<int> silent = silent_ranks();
    std::string who = silent.empty()
                          ? "a peer rank failed"
                          : "rank " + rank_list(silent) + " stopped responding (died or hung)";
    throw DistributedError(who + " during " + what + " (seen by rank " + std::to_string(env_.rank) +
                           ", timeout " + seconds_text(timeout_) + "): " + cause);
  }

  // Each survivor announces itself; ranks that stay silent for a short grace period are the ones
  // that died or hang. If the store itself is gone, its host (rank 0) is the one that died.
  std::vector<int> silent_ranks() {
    const auto grace = std::min<std::chrono::milliseconds>(timeout_, std::chrono::seconds(5));
    try {
      store_->setTimeout(grace);
      store_->set("fullbatch/alive/" + std::to_string(env_.rank), bytes("1"));
      return wait_for_keys("fullbatch/alive/", grace);
    } catch (const std::exception&) {
      return env_.rank == 0 ? std::vector<int>{} : std::vector<int>{0};
    }
  }

  // Polls until every rank has set prefix<rank>; returns the ranks still missing at the deadline.
  std::vector<int> wait_for_keys(const std::string& prefix, std::chrono::milliseconds limit) {
    const auto deadline = Clock::now() + limit;
    std::vector<int> missing;
    for (int r = 0; r < env_.world_size; ++r) missing.push_back(r);
    while (true) {
      std::vector<int> still;
      for (int r : missing)
        if (!store_->check({prefix + std::to_string(r)})) still.push_back(r);
      missing = still;
      if (missing.empty() || Clock::now() >= deadline) return missing;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  std::string address() const {
    return env_.master_addr + ":" + std::to_string(env_.master_port);
  }

  static std::vector<uint8_t> bytes(const std::string& s) {
    return {s.begin(), s.end()};
  }

  // c10d messages carry source locations and backtraces over several lines; keep the first.
  static std::string one_line(const std::exception& e) {
    std::string s = e.what();
    if (auto* c = dynamic_cast<const c10::Error*>(&e)) s = c->what_without_backtrace();
    s = s.substr(0, s.find('\n'));
    return s;
  }

  DistEnv env_;
  std::chrono::milliseconds timeout_;
  bool broken_ = false;
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo_;
#ifdef FULLBATCH_WITH_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl_;
#endif
};

}  // namespace

std::shared_ptr<Communicator> communicator_from_env(const Config& config) {
  DistEnv env = dist_env_from_environment();
  if (env.world_size <= 1) return std::make_shared<LocalCommunicator>();
  return std::make_shared<C10dCommunicator>(env, config);
}

#else  // no Gloo headers at build time

bool c10d_available() {
  return false;
}

std::shared_ptr<Communicator> communicator_from_env(const Config& config) {
  DistEnv env = dist_env_from_environment();
  if (env.world_size <= 1) return std::make_shared<LocalCommunicator>();
  throw UserError("WORLD_SIZE=" + std::to_string(env.world_size) +
                  " but this build of fullbatch has no c10d (Gloo headers were not found)");
}

#endif

}  // namespace fullbatch
