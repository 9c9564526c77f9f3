#include "fullbatch/run/checkpoint.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <regex>

#include "fullbatch/common/error.h"
#include "fullbatch/run/checkpoint_format.h"
#include "fullbatch/common/files.h"
#include "fullbatch/models/weights.h"

namespace fullbatch {
namespace fs = std::filesystem;
namespace {

// step_000120.ckpt -> 120; -1 for any other name (temp files of a killed writer included).
int64_t step_of(const std::string& name) {
  static const std::regex pattern("step_([0-9]{6,18})\\.ckpt");
  std::smatch m;
  if (!std::regex_match(name, m, pattern)) return -1;
  return std::stoll(m[1].str());
}

bool all_finite(const std::map<std::string, torch::Tensor>& state, std::string& bad) {
  for (const auto& [name, t] : state) {
    if (!t.is_floating_point()) continue;
    if (!torch::isfinite(t).all().item<bool>()) {
      bad = name;
      return false;
    }
  }
  return true;
}

// Temp files of a writer killed mid-write ("step_N.ckpt.tmp.PID") are garbage once it is gone.
void remove_stale_temp_files(const std::string& folder) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(folder, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.find(".ckpt.tmp.") != std::string::npos) fs::remove(entry.path(), ec);
  }
}

}  // namespace

std::string save_checkpoint(const RunDir& run, const Checkpoint& checkpoint,
                            int64_t keep) {
  const std::string path = run.checkpoint_file(checkpoint.step);
  std::string bad;
  if (!all_finite(checkpoint.state, bad))
    throw DivergenceError("checkpoint " + path + " not written: tensor '" + bad +
                          "' is not finite at step " + std::to_string(checkpoint.step));
  CheckpointFrame frame{checkpoint.step, checkpoint.finished, checkpoint.config_yaml,
                        checkpoint.metrics_jsonl, ""};
  frame.payload = pickle_state_dict(checkpoint.state);
  ensure_writable_dir(run.checkpoint_folder());
  remove_stale_temp_files(run.checkpoint_folder());
  try {
    write_file_atomic(path, encode_checkpoint(frame));
  } catch (const UserError& e) {
    // A new file has no previous version; what survives is the older checkpoints.
    std::string why = e.what();
    const std::string kept = " (the previous file is kept)";
    if (why.size() > kept.size() && why.compare(why.size() - kept.size(), kept.size(), kept) == 0)
      why.erase(why.size() - kept.size());
    throw UserError(why + "; older checkpoints are kept");
  }
  // Only after the new file is safely in place do the oldest ones go.
  std::vector<std::string> all = list_checkpoints(run);
  std::error_code ec;
  for (size_t i = static_cast<size_t>(std::max<int64_t>(keep, 1)); i < all.size(); ++i)
    fs::remove(all[i], ec);
  return path;
}

Checkpoint decode_checkpoint_bytes(const std::string& bytes, const std::string& origin) {
  CheckpointFrame frame = decode_checkpoint(bytes, origin);
  Checkpoint c{
      frame.step, frame.finished, std::move(frame.config_yaml), std::move(frame.metrics_jsonl), {}};
  c.state = unpickle_state_dict(frame.payload, "checkpoint " + origin);
  return c;
}

Checkpoint read_checkpoint(const std::string& path) {
  return decode_checkpoint_bytes(read_file(path), path);
}

std::vector<std::string> list_checkpoints(const RunDir& run) {
  std::vector<std::pair<int64_t, std::string>> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(run.checkpoint_folder(), ec)) {
    const int64_t step = step_of(entry.path().filename().string());
    if (step >= 0 && entry.is_regular_file(ec)) found.emplace_back(step, entry.path().string());
  }
  std::sort(found.begin(), found.end(),
            [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::string> out;
  for (auto& f : found) out.push_back(std::move(f.second));
  return out;
}

std::optional<FoundCheckpoint> newest_valid_checkpoint(const RunDir& run) {
  FoundCheckpoint found;
  const std::vector<std::string> all = list_checkpoints(run);
  if (all.empty()) return std::nullopt;
  for (const auto& path : all) {
    try {
      found.checkpoint = read_checkpoint(path);
      found.path = path;
      return found;
    } catch (const UserError& e) {
      found.rejected.push_back(e.what());
    }
  }
  throw UserError("cannot resume " + run.path() + ": none of its " + std::to_string(all.size()) +
                  " checkpoints is readable (newest: " + found.rejected.front() + "); delete " +
                  run.checkpoint_folder() + " to restart from step 0");
}

}  // namespace fullbatch
