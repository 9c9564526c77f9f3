#include "fullbatch/distributed/launch.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "fullbatch/common/clock.h"
#include "fullbatch/common/error.h"

namespace fullbatch {
namespace {



volatile sig_atomic_t g_interrupted = 0;
void on_signal(int sig) {
  g_interrupted = sig;
}

// One child's output stream: bytes are held until a full line can be written with its prefix.
struct Stream {
  int fd = -1;
  FILE* out = nullptr;
  std::string pending;
};

struct Child {
  int rank = 0;
  pid_t pid = -1;
  Stream streams[2];
  std::optional<int> status;  // waitpid status once reaped
  bool signalled_by_us = false;
};

std::string describe_status(int status) {
  if (WIFSIGNALED(status))
    return "signal " + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")";
  return "code " + std::to_string(WEXITSTATUS(status));
}

bool failed(int status) {
  return !WIFEXITED(status) || WEXITSTATUS(status) != 0;
}

void write_lines(Stream& s, int rank, bool flush_partial) {
  const std::string prefix = "[rank " + std::to_string(rank) + "] ";
  size_t start = 0;
  for (size_t nl; (nl = s.pending.find('\n', start)) != std::string::npos; start = nl + 1)
    std::fprintf(s.out, "%s%.*s\n", prefix.c_str(), static_cast<int>(nl - start),
                 s.pending.data() + start);
  s.pending.erase(0, start);
  if (flush_partial && !s.pending.empty()) {
    std::fprintf(s.out, "%s%s\n", prefix.c_str(), s.pending.c_str());
    s.pending.clear();
  }
  std::fflush(s.out);
}

// Reads what is available; closes the stream at end of file.
void drain(Stream& s, int rank) {
  char buf[8192];
  ssize_t n = ::read(s.fd, buf, sizeof(buf));
  if (n > 0) {
    s.pending.append(buf, static_cast<size_t>(n));
    write_lines(s, rank, false);
  } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
    write_lines(s, rank, true);
    ::close(s.fd);
    s.fd = -1;
  }
}

[[noreturn]] void exec_child(const LaunchOptions& o, const std::string& exe, int local_rank,
                             int out_fd, int err_fd, int port) {
  // A launcher that dies must not leave its ranks waiting on each other forever.
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  ::dup2(out_fd, STDOUT_FILENO);
  ::dup2(err_fd, STDERR_FILENO);
  const int world = o.nproc * o.nnodes;
  ::setenv("RANK", std::to_string(o.node_rank * o.nproc + local_rank).c_str(), 1);
  ::setenv("WORLD_SIZE", std::to_string(world).c_str(), 1);
  ::setenv("LOCAL_RANK", std::to_string(local_rank).c_str(), 1);
  ::setenv("LOCAL_WORLD_SIZE", std::to_string(o.nproc).c_str(), 1);
  ::setenv("GROUP_RANK", std::to_string(o.node_rank).c_str(), 1);
  ::setenv("MASTER_ADDR", o.master_addr.c_str(), 1);
  ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(exe.c_str()));
  for (const auto& a : o.args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  ::execv(exe.c_str(), argv.data());
  std::fprintf(stderr, "fullbatch launch: cannot start %s: %s\n", exe.c_str(),
               std::strerror(errno));
  ::_exit(127);
}

std::string resolve_executable(const std::string& exe) {
  if (!exe.empty()) return exe;
  // /proc/self/exe in the child would name the same file; resolving it here keeps argv[0] real.
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) throw UserError("launch: cannot find this executable (/proc/self/exe)");
  return std::string(buf, static_cast<size_t>(n));
}

void check(const LaunchOptions& o) {
  if (o.nproc < 1) throw UserError("launch: --nproc must be at least 1");
  if (o.nnodes < 1 || o.node_rank < 0 || o.node_rank >= o.nnodes)
    throw UserError("launch: --node-rank must be in [0, --nnodes)");
  if (o.nnodes > 1 && o.master_port == 0)
    throw UserError(
        "launch: a multi-node job needs --master-port (and --master-addr) on every node");
  if (o.args.empty()) throw UserError("launch: nothing to run; give a command after --");
}

class Job {
 public:
  Job(const LaunchOptions& o) : o_(o) {}

  int run() {
    const std::string exe = resolve_executable(o_.executable);
    const int port = o_.master_port > 0 ? o_.master_port : find_free_port();
    std::fflush(stdout);
    std::fflush(stderr);
    for (int r = 0; r < o_.nproc; ++r) start(exe, r, port);
    supervise();
    return verdict();
  }

 private:
  void start(const std::string& exe, int local_rank, int port) {
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0)
      throw UserError(std::string("launch: cannot create pipes: ") + std::strerror(errno));
    pid_t pid = ::fork();
    if (pid < 0) throw UserError(std::string("launch: fork failed: ") + std::strerror(errno));
    if (pid == 0) exec_child(o_, exe, local_rank, out[1], err[1], port);
    ::close(out[1]);
    ::close(err[1]);
    Child c;
    c.rank = o_.node_rank * o_.nproc + local_rank;
    c.pid = pid;
    c.streams[0] = {out[0], stdout, {}};
    c.streams[1] = {err[0], stderr, {}};
    children_.push_back(std::move(c));
    std::fprintf(stderr, "fullbatch launch: rank %d started (pid %d)\n", children_.back().rank,
                 static_cast<int>(pid));
  }

  // Forwards output and reaps children until all have exited and their pipes are closed.
  void supervise() {
    while (true) {
      std::vector<pollfd> fds;
      std::vector<Stream*> owners;
      std::vector<int> ranks;
      for (auto& c : children_)
        for (auto& s : c.streams)
          if (s.fd >= 0) {
            fds.push_back({s.fd, POLLIN, 0});
            owners.push_back(&s);
            ranks.push_back(c.rank);
          }
      if (fds.empty() && all_reaped()) return;
      ::poll(fds.data(), fds.size(), 100);
      for (size_t i = 0; i < fds.size(); ++i)
        if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) drain(*owners[i], ranks[i]);
      reap();
      if (g_interrupted && !stopping_) stop_others(-1);
      escalate();
    }
  }

  bool all_reaped() const {
    for (const auto& c : children_)
      if (!c.status) return false;
    return true;
  }

  void reap() {
    for (auto& c : children_) {
      if (c.status) continue;
      int status = 0;
      if (::waitpid(c.pid, &status, WNOHANG) != c.pid) continue;
      c.status = status;
      if (failed(status) && !stopping_) {
        first_failure_ = c.rank;
        stop_others(c.rank);
      }
    }
  }

  void stop_others(int except_rank) {
    stopping_ = true;
    stop_since_ = Clock::now();
    for (auto& c : children_)
      if (!c.status && c.rank != except_rank) {
        ::kill(c.pid, SIGTERM);
        c.signalled_by_us = true;
      }
  }

  // Ranks that ignore SIGTERM for kill_grace_s get SIGKILL.
  void escalate() {
    if (!stopping_ || killed_) return;
    if (seconds_since(stop_since_) < o_.kill_grace_s) return;
    for (auto& c : children_)
      if (!c.status) ::kill(c.pid, SIGKILL);
    killed_ = true;
  }

  int verdict() const {
    if (g_interrupted && first_failure_ < 0) {
      std::fprintf(stderr, "fullbatch launch: interrupted (signal %d); stopped all ranks\n",
                   static_cast<int>(g_interrupted));
      return 1;
    }
    if (first_failure_ < 0) return 0;
    bool all_user_errors = true;
    for (const auto& c : children_) {
      if (c.signalled_by_us || !failed(*c.status)) continue;
      all_user_errors &= WIFEXITED(*c.status) && WEXITSTATUS(*c.status) == 2;
    }
    for (const auto& c : children_)
      if (c.rank == first_failure_)
        std::fprintf(stderr, "fullbatch launch: rank %d exited with %s; stopped the other ranks\n",
                     c.rank, describe_status(*c.status).c_str());
    return all_user_errors ? 2 : 1;
  }

  const LaunchOptions& o_;
  std::vector<Child> children_;
  bool stopping_ = false;
  bool killed_ = false;
  int first_failure_ = -1;
  Clock::time_point stop_since_;
};

}  // namespace

int find_free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw UserError(std::string("launch: cannot open a socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;  // the kernel picks a free port
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    throw UserError(std::string("launch: cannot find a free port: ") + std::strerror(errno));
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

int launch(const LaunchOptions& options) {
  check(options);
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  return Job(options).run();
}

}  // namespace fullbatch
