#pragma once
// Each group of subcommands registers itself here; main() runs the one that was parsed.
#include <CLI/CLI.hpp>

#include <functional>
#include <vector>

namespace fullbatch::cli {

struct Command {
  CLI::App* app;
  std::function<int()> run;
};
using Commands = std::vector<Command>;

void add_training_commands(CLI::App& app, Commands& out);    // train, eval, presets, keys
void add_experiment_commands(CLI::App& app, Commands& out);  // demo, sweep, report
void add_bench_commands(CLI::App& app, Commands& out);       // bench
void add_distributed_commands(CLI::App& app, Commands& out);  // launch, bench-comm
void add_analysis_commands(CLI::App& app, Commands& out);     // analyze
void add_export_commands(CLI::App& app, Commands& out);       // export

}  // namespace fullbatch::cli
