// launch, bench-comm.
#include <torch/torch.h>

#include <cstdio>
#include <string>
#include <vector>

#include "commands.h"
#include "fullbatch/common/clock.h"
#include "fullbatch/common/error.h"
#include "fullbatch/config/resolve.h"
#include "fullbatch/distributed/launch.h"
#include "fullbatch/distributed/process_group.h"
#include "fullbatch/training/options.h"
#include "fullbatch/training/runtime.h"
#include "fullbatch/training/trainer.h"

namespace fullbatch::cli {
namespace {

int cmd_launch(LaunchOptions options, const std::vector<std::string>& rest) {
  options.args = rest;
  // `launch --nproc 2 -- train ...`: CLI11 may hand over the separator itself.
  if (!options.args.empty() && options.args.front() == "--")
    options.args.erase(options.args.begin());
  return launch(options);
}

struct BenchArgs {
  std::string preset;
  std::vector<std::string> configs;
  std::vector<std::string> overrides;
  int steps = 3;
  int reduces = 10;
};

double mean_over_ranks(Communicator& comm, double x) {
  std::vector<torch::Tensor> t{torch::full({}, x, torch::kFloat64)};
  comm.all_reduce_sum(t);
  return t[0].item<double>() / comm.world_size();
}

// Times `reduces` all-reduces of a gradient-sized set of tensors, started together after a
// barrier: the transfer cost alone, without waiting for a slower rank.
double gradient_all_reduce_s(Trainer& trainer, Communicator& comm, int reduces) {
  std::vector<torch::Tensor> grads;
  for (const auto& p : trainer.model().parameters()) grads.push_back(torch::zeros_like(p));
  comm.all_reduce_sum(grads);  // warm-up: Gloo builds its algorithm on first use
  comm.barrier();
  const auto t0 = Clock::now();
  for (int i = 0; i < reduces; ++i) comm.all_reduce_sum(grads);
  return seconds_since(t0) / reduces;
}

int cmd_bench_comm(const BenchArgs& a) {
  Config config = resolve_config(a.preset, a.configs, a.overrides);
  config = localize_for_rank(config, dist_env_from_environment());
  // One warm-up step, the timed steps, and a spare so that no timed step is the last one (which
  // evaluates); evaluation is not part of a training step.
  config.hyp.steps = a.steps + 2;
  config.impl.validate_every_nth_step = 1 << 30;
  config.hyp.train_stochastic = false;
  auto timed = std::make_shared<TimedCommunicator>(communicator_from_env(config));
  const TrainerOptions options = trainer_options(config);
  apply_process_settings(options.execution, resolve_execution(options.execution, options.model));
  Trainer trainer(options, timed);
  trainer.train_step();
  timed->reset();
  double step_s = 0;
  for (int i = 0; i < a.steps; ++i) step_s += trainer.train_step().step_time_s;
  step_s = mean_over_ranks(*timed, step_s / a.steps);
  const double in_step_s = mean_over_ranks(*timed, timed->all_reduce_seconds() / a.steps);
  const double alone_s = mean_over_ranks(*timed, gradient_all_reduce_s(trainer, *timed, a.reduces));

  int64_t params = 0, grad_bytes = 0;
  for (const auto& p : trainer.model().parameters()) params += p.numel(), grad_bytes += p.nbytes();
  if (timed->is_root()) {
    std::printf(
        "bench-comm: %d rank(s), %s width %lld, %.3f M parameters (%.2f MB of gradient), "
        "%lld images per step, device %s\n",
        timed->world_size(), config.model.name.c_str(), static_cast<long long>(config.model.width),
        params / 1e6, grad_bytes / 1e6, static_cast<long long>(trainer.train_images_per_step()),
        trainer.device().str().c_str());
    std::printf("full-batch step: %.4f s (mean over %d steps and all ranks)\n", step_s, a.steps);
    std::printf(
        "  communication inside the step: %.4f s = %.2f%% (all-reduces, incl. waiting for "
        "the slowest rank)\n",
        in_step_s, 100.0 * in_step_s / step_s);
    std::printf("  gradient all-reduce alone:      %.4f s = %.2f%% (mean of %d after a barrier)\n",
                alone_s, 100.0 * alone_s / step_s, a.reduces);
  }
  return 0;
}

}  // namespace

void add_distributed_commands(CLI::App& app, Commands& out) {
  auto opts = std::make_shared<LaunchOptions>();
  auto* l = app.add_subcommand(
      "launch",
      "run a command in N local processes, like torchrun (e.g. launch --nproc 2 -- train)");
  l->add_option("--nproc,--nproc-per-node", opts->nproc, "processes on this node")->required();
  l->add_option("--nnodes", opts->nnodes, "nodes in the job");
  l->add_option("--node-rank", opts->node_rank, "this node's index in [0, nnodes)");
  l->add_option("--master-addr", opts->master_addr, "address of the node running rank 0");
  l->add_option("--master-port", opts->master_port, "rendezvous port (default: a free one)");
  // Everything after `--` is the command each rank runs, options included.
  auto rest = std::make_shared<std::vector<std::string>>();
  l->add_option("command", *rest, "fullbatch command and its arguments, after --");
  out.push_back({l, [opts, rest] { return cmd_launch(*opts, *rest); }});

  auto bench = std::make_shared<BenchArgs>();
  auto* b = app.add_subcommand("bench-comm",
                               "time the communication share of a full-batch step (run it under "
                               "`launch`)");
  b->add_option("--preset", bench->preset, "a paper experiment (see `fullbatch presets`)");
  b->add_option("--config", bench->configs, "YAML file(s) of config keys");
  b->add_option("--steps", bench->steps, "timed steps (after one warm-up step)");
  b->add_option("--reduces", bench->reduces, "timed gradient all-reduces");
  b->add_option("overrides", bench->overrides, "key=value config overrides");
  out.push_back({b, [bench] { return cmd_bench_comm(*bench); }});
}

}  // namespace fullbatch::cli
