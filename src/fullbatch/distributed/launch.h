#pragma once
// `fullbatch launch`: a small torchrun for one node. Starts one process per local rank with
// torchrun's environment variables, prefixes their output lines with the rank, and stops the job
// as soon as any rank fails, saying which one.
#include <string>
#include <vector>

namespace fullbatch {

struct LaunchOptions {
  int nproc = 1;      // processes on this node
  int nnodes = 1;     // nodes in the job
  int node_rank = 0;  // this node's index; global rank = node_rank * nproc + local rank
  std::string master_addr = "127.0.0.1";
  int master_port = 0;            // 0: pick a free port (single node only)
  std::string executable;         // program to start (default: this executable)
  std::vector<std::string> args;  // its arguments, e.g. {"train", "hyp.steps=3"}
  double kill_grace_s = 5;        // SIGTERM, then SIGKILL after this long
};

// A TCP port that was free a moment ago on the loopback interface.
int find_free_port();

// Runs the job; returns the exit code for the launcher: 0 when every rank succeeded, 2 when every
// rank that failed on its own exited with 2 (a user error), otherwise 1. The first failure is
// reported on stderr as "rank R exited with code X" or "... with signal S (NAME)".
int launch(const LaunchOptions& options);

}  // namespace fullbatch
