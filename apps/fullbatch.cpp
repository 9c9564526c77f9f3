// The fullbatch command line: a thin layer over the library. Every user-facing failure ends as
// one line on stderr and exit code 2; anything else is a bug and exits with 3.
#include <c10/util/Exception.h>
#include <malloc.h>

#include <cstdio>

#include "commands.h"
#include "fullbatch/common/error.h"

namespace {

// glibc returns large freed blocks to the kernel (munmap, heap trimming); every training block
// would then page-fault its activations and workspaces in afresh. Keeping freed memory in the
// heap avoids that; the measured gain is in docs/performance.md.
void keep_freed_memory() {
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's maximum: larger blocks still use mmap
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace fullbatch;
  keep_freed_memory();
  CLI::App app{"fullbatch: full-batch gradient descent vs SGD for image classifiers"};
  app.require_subcommand(1);
  cli::Commands commands;
  cli::add_training_commands(app, commands);
  cli::add_experiment_commands(app, commands);
  cli::add_bench_commands(app, commands);
  cli::add_distributed_commands(app, commands);
  cli::add_analysis_commands(app, commands);
  cli::add_export_commands(app, commands);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& err) {
    return app.exit(err);
  } catch (const CLI::ParseError& err) {
    std::fprintf(stderr, "fullbatch: error: %s (see --help)\n", err.what());
    return 2;
  }
  try {
    for (const auto& command : commands)
      if (command.app->parsed()) return command.run();
  } catch (const UserError& err) {
    std::fprintf(stderr, "fullbatch: error: %s\n", err.what());
    return 2;
  } catch (const c10::Error& err) {
    std::fprintf(stderr, "fullbatch: internal error (torch): %s\n", err.what_without_backtrace());
    return 3;
  } catch (const std::exception& err) {
    std::fprintf(stderr, "fullbatch: internal error: %s\n", err.what());
    return 3;
  }
  return 0;
}
