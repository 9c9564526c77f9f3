// bench: training and evaluation throughput of one config (docs/performance.md).
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "fullbatch/bench/benchmark.h"
#include "fullbatch/common/error.h"
#include "fullbatch/config/resolve.h"

namespace fullbatch::cli {
namespace {

struct BenchArgs {
  std::string preset;
  std::vector<std::string> configs;
  std::string json;
  std::vector<std::string> overrides;
};

int cmd_bench(BenchArgs a) {
  // steps=, warmup=, parts=, reg_strength= are the benchmark's own; the rest are config keys.
  const BenchOptions options = take_bench_options(a.overrides);
  const Config config = resolve_config(a.preset, a.configs, a.overrides);
  const nlohmann::json result = run_benchmark(config, options, [](const std::string& line) {
    std::fprintf(stderr, "bench: %s\n", line.c_str());
  });
  std::printf("%s", format_benchmark(result).c_str());
  if (!a.json.empty()) {
    std::ofstream out(a.json);
    if (!(out << result.dump(2) << "\n")) throw UserError("--json " + a.json + ": cannot write");
  }
  // Last line: the whole result, for scripts (bench/compare_reference.sh).
  std::printf("%s\n", result.dump().c_str());
  return 0;
}

}  // namespace

void add_bench_commands(CLI::App& app, Commands& out) {
  auto args = std::make_shared<BenchArgs>();
  auto* b = app.add_subcommand(
      "bench", "time a full-batch step, a regularized step, an SGD epoch and evaluation");
  b->add_option("--preset", args->preset, "a paper experiment (see `fullbatch presets`)");
  b->add_option("--config", args->configs, "YAML file(s) of config keys");
  b->add_option("--json", args->json, "also write the result to this JSON file");
  b->add_option("overrides", args->overrides,
                "key=value config overrides, plus steps=N (timed steps, default 3), warmup=N "
                "(default 1), parts=reg,sgd,eval,profile (default all), reg_strength=A");
  out.push_back({b, [args] { return cmd_bench(*args); }});
}

}  // namespace fullbatch::cli
