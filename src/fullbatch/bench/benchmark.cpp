#include "fullbatch/bench/benchmark.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <sstream>

#include "fullbatch/common/clock.h"
#include "fullbatch/common/error.h"
#include "fullbatch/common/parse.h"
#include "fullbatch/data/block_source.h"
#include "fullbatch/data/data_order.h"
#include "fullbatch/training/runtime.h"
#include "fullbatch/training/trainer.h"

#ifdef FULLBATCH_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#endif

namespace fullbatch {
namespace {


double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

std::string device_name(const torch::Device& device) {
#ifdef FULLBATCH_WITH_CUDA
  if (device.is_cuda()) return at::cuda::getCurrentDeviceProperties()->name;
#endif
  return device.is_cuda() ? "cuda" : "cpu";
}

// Dense tensor-core peak of the card for 16-bit inputs (vendor data sheets), 0 when unknown.
double peak_tflops_16bit(const std::string& name) {
  auto has = [&](const char* s) { return name.find(s) != std::string::npos; };
  if (has("H100") && has("PCIe")) return 756.0;
  if (has("H100") || has("H200")) return 989.4;
  if (has("A100")) return 312.0;
  return 0.0;
}

// Options that only train: no evaluation inside the timed steps, a schedule long enough that
// the learning rate never reaches zero.
TrainerOptions timing_options(const Config& config) {
  Config c = config;
  c.hyp.steps = 1000000;
  c.impl.validate_every_nth_step = 1000000;
  c.hyp.stop_at_full_training_accuracy = 0;
  return trainer_options(c);
}

// Process CPU time (all threads): on a shared, oversubscribed machine it varies less than wall
// time, so both are reported.
double cpu_seconds() {
  return static_cast<double>(std::clock()) / CLOCKS_PER_SEC;
}

struct StepTimes {
  std::vector<double> seconds;
  std::vector<double> cpu_seconds;
  int64_t images = 0;  // per step
  int64_t peak_memory = 0;
};

StepTimes time_steps(Trainer& trainer, int64_t warmup, int64_t steps) {
  for (int64_t i = 0; i < warmup; ++i) trainer.train_step();
  reset_peak_memory(trainer.device());
  StepTimes t;
  t.images = trainer.train_images_per_step();
  for (int64_t i = 0; i < steps; ++i) {
    const double c0 = cpu_seconds();
    t.seconds.push_back(trainer.train_step().step_time_s);
    t.cpu_seconds.push_back(cpu_seconds() - c0);
  }
  t.peak_memory = peak_memory_bytes(trainer.device());
  return t;
}

nlohmann::json summarize(const StepTimes& t, double flops_per_image) {
  const double med = median(t.seconds);
  nlohmann::json j = {{"step_s_median", med},
                      {"step_s_best", *std::min_element(t.seconds.begin(), t.seconds.end())},
                      {"steps_timed", t.seconds.size()},
                      {"cpu_s_median", median(t.cpu_seconds)},
                      {"images", t.images},
                      {"images_per_s", static_cast<double>(t.images) / med},
                      {"peak_memory_bytes", t.peak_memory}};
  if (flops_per_image > 0)
    j["tflops"] = flops_per_image * static_cast<double>(t.images) / med / 1e12;
  return j;
}

// The data pipeline of one full-batch step alone: index_select of the uint8 images, crop-flip,
// normalize (and channels-last), for every block. Same options as the trainer's BlockSource.
double time_data_pipeline(const Trainer& trainer, int64_t repeats) {
  const TrainerOptions& o = trainer.options();
  BlockSourceOptions blocks = o.blocks;
  blocks.channels_last = trainer.channels_last();
  BlockSource source(trainer.data(), blocks);
  OrderSettings order;
  order.num_samples = source.num_samples();
  order.batch_size = o.order.batch_size;
  order.seed = o.seed;
  std::vector<double> times;
  for (int64_t r = 0; r < repeats; ++r) {
    const auto blocks = block_order(order, r);
    synchronize(trainer.device());
    const auto t0 = Clock::now();
    for (size_t b = 0; b < blocks.size(); ++b) {
      Block block = source.block(blocks[b], static_cast<uint64_t>(r), b);
      (void)block;
    }
    synchronize(trainer.device());
    times.push_back(seconds_since(t0));
  }
  return median(times);
}

std::string human_bytes(int64_t b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f MiB", static_cast<double>(b) / (1024.0 * 1024.0));
  return buf;
}

}  // namespace

int64_t resnet18_forward_macs(int64_t width, int64_t in_channels, int64_t size, int64_t classes) {
  int64_t s = size, w = width;
  int64_t macs = 9 * in_channels * w * s * s;  // stem
  macs += 4 * 9 * w * w * s * s;               // stage 1: two blocks of two 3x3 convs
  for (int stage = 1; stage < 4; ++stage) {
    s = (s + 1) / 2;  // stride 2 with padding 1: ceil(s / 2)
    const int64_t in = w;
    w *= 2;
    macs += 9 * in * w * s * s;     // first conv of the stage, strided
    macs += 3 * 9 * w * w * s * s;  // the other three 3x3 convs
    macs += in * w * s * s;         // 1x1 projection shortcut (after average pooling)
  }
  return macs + w * classes;
}

BenchOptions take_bench_options(std::vector<std::string>& overrides) {
  BenchOptions o;
  std::vector<std::string> rest;
  for (const auto& kv : overrides) {
    const auto eq = kv.find('=');
    const std::string key = kv.substr(0, eq),
                      value = eq == std::string::npos ? "" : kv.substr(eq + 1);
    auto to_int = [&](int64_t lo) {
      int64_t v = 0;
      if (parse_int(value, v) && v >= lo) return v;
      throw UserError("bench argument '" + key + "': '" + value + "' is not an integer >= " +
                      std::to_string(lo));
    };
    auto to_float = [&](double lo) {
      double v = 0;
      if (parse_float(value, v) && v >= lo) return v;
      throw UserError("bench argument '" + key + "': '" + value + "' is not a number >= " +
                      format_double(lo));
    };
    if (key == "steps") {
      o.steps = to_int(1);
    } else if (key == "warmup") {
      o.warmup = to_int(0);
    } else if (key == "reg_strength") {
      o.reg_strength = to_float(0.0);
    } else if (key == "parts") {
      auto has = [&](const std::string& p) {
        return ("," + value + ",").find("," + p + ",") != std::string::npos;
      };
      o.regularized = has("reg");
      o.sgd = has("sgd");
      o.eval = has("eval");
      o.profile = has("profile");
    } else {
      rest.push_back(kv);
    }
  }
  overrides = rest;
  return o;
}

nlohmann::json run_benchmark(const Config& config, const BenchOptions& options,
                             const std::function<void(const std::string&)>& log) {
  const TrainerOptions base = timing_options(config);
  const Execution execution = resolve_execution(base.execution, base.model);
  for (const auto& warning : apply_process_settings(base.execution, execution))
    log("warning: " + warning);
  auto comm = std::make_shared<LocalCommunicator>();
  Trainer trainer(base, comm);
  trainer.set_validation(false);
  const auto& data = trainer.data();
  const int64_t macs = config.model.name == "resnet18"
                           ? resnet18_forward_macs(config.model.width, data.channels(),
                                                   data.pixels > 0 ? data.pixels : data.train.images.size(2),
                                                   data.num_classes)
                           : 0;
  const double flops_per_image = 6.0 * static_cast<double>(macs);
  const std::string name = device_name(trainer.device());

  nlohmann::json out = {{"implementation", "fullbatch-cpp"},
                        {"torch_version", TORCH_VERSION},
                        {"device", trainer.device().str()},
                        {"device_name", name},
                        {"threads", torch::get_num_threads()},
                        {"data.name", config.data.name},
                        {"data.size", data.train.size()},
                        {"data.batch_size", config.data.batch_size},
                        {"model.name", config.model.name},
                        {"model.width", config.model.width},
                        {"impl.mixed_precision", to_string(config.impl.mixed_precision)},
                        {"impl.accumulation_dtype", to_string(config.impl.accumulation_dtype)},
                        {"impl.channels_last", trainer.channels_last()},
                        {"impl.deterministic", config.impl.deterministic},
                        {"impl.blocks_per_pass", trainer.blocks_per_pass()}};
  if (macs > 0) out["model_gflops_per_image"] = flops_per_image / 1e9;

  log("full-batch step: " + std::to_string(options.warmup) + " warm-up + " +
      std::to_string(options.steps) + " timed");
  out["full_batch"] =
      summarize(time_steps(trainer, options.warmup, options.steps), flops_per_image);
  const double full_s = out["full_batch"]["step_s_median"].get<double>();
  out["images_per_s"] = out["full_batch"]["images_per_s"];
  if (macs > 0 && config.impl.mixed_precision != Precision::kNone) {
    const double peak = peak_tflops_16bit(name);
    if (peak > 0) {
      out["peak_tflops"] = peak;
      out["fraction_of_peak"] = out["full_batch"]["tflops"].get<double>() / peak;
    }
  }

  if (options.profile) {
    log("profile: data pipeline of one step alone");
    const double data_s = time_data_pipeline(trainer, options.steps);
    out["profile"] = {
        {"data_s", data_s}, {"rest_s", full_s - data_s}, {"data_fraction", data_s / full_s}};
  }
  if (options.eval) {
    log("evaluation: one pass over the test set");
    reset_peak_memory(trainer.device());
    const auto t0 = Clock::now();
    Evaluation e = trainer.evaluate();
    const double s = seconds_since(t0);
    out["eval"] = {{"eval_s", s},
                   {"images", e.images},
                   {"images_per_s", static_cast<double>(e.images) / s},
                   {"peak_memory_bytes", peak_memory_bytes(trainer.device())}};
  }
  if (options.regularized) {
    log("regularized step (hyp.grad_reg.block_strength=" + std::to_string(options.reg_strength) +
        ")");
    TrainerOptions o = base;
    o.gradient.reg.block_strength = options.reg_strength;
    Trainer reg(o, comm);
    reg.set_validation(false);
    nlohmann::json r = summarize(time_steps(reg, options.warmup, options.steps), flops_per_image);
    r["ratio_to_full_batch"] = r["step_s_median"].get<double>() / full_s;
    out["regularized"] = r;
  }
  if (options.sgd) {
    log("SGD epoch (batch size " + std::to_string(config.data.batch_size) + ")");
    TrainerOptions o = base;
    o.order.stochastic = true;
    Trainer sgd(o, comm);
    sgd.set_validation(false);
    // The process is already warm (allocator, kernel choice): one timed epoch, no warm-up.
    out["sgd_epoch"] = summarize(time_steps(sgd, 0, 1), flops_per_image);
  }
  return out;
}

std::string format_benchmark(const nlohmann::json& r) {
  std::ostringstream s;
  char line[256];
  s << "fullbatch bench: " << r.value("model.name", "") << " width " << r.value("model.width", 0)
    << ", " << r.value("data.name", "") << " " << r.value("data.size", 0) << " images, "
    << r.value("device_name", "") << " (" << r.value("threads", 0) << " threads), precision "
    << r.value("impl.mixed_precision", "") << ", channels-last "
    << (r.value("impl.channels_last", false) ? "on" : "off") << "\n";
  std::snprintf(line, sizeof line, "%-20s %10s %12s %10s %12s\n", "part", "time (s)", "images/s",
                "TFLOP/s", "peak memory");
  s << line;
  auto row = [&](const char* name, const char* key, const char* time_key) {
    if (!r.contains(key)) return;
    const auto& p = r[key];
    const std::string tflops =
        p.contains("tflops") ? std::to_string(p["tflops"].get<double>()).substr(0, 6) : "-";
    std::snprintf(line, sizeof line, "%-20s %10.3f %12.1f %10s %12s\n", name,
                  p[time_key].get<double>(), p["images_per_s"].get<double>(), tflops.c_str(),
                  human_bytes(p.value("peak_memory_bytes", int64_t{0})).c_str());
    s << line;
  };
  row("full-batch step", "full_batch", "step_s_median");
  row("regularized step", "regularized", "step_s_median");
  row("SGD epoch", "sgd_epoch", "step_s_median");
  row("evaluation", "eval", "eval_s");
  if (r.contains("regularized")) {
    std::snprintf(line, sizeof line, "regularized / full-batch step time: %.2fx\n",
                  r["regularized"]["ratio_to_full_batch"].get<double>());
    s << line;
  }
  if (r.contains("profile")) {
    const auto& p = r["profile"];
    std::snprintf(
        line, sizeof line,
        "data pipeline (gather, crop-flip, normalize): %.3f s of the %.3f s step (%.1f%%)\n",
        p["data_s"].get<double>(), r["full_batch"]["step_s_median"].get<double>(),
        100.0 * p["data_fraction"].get<double>());
    s << line;
  }
  if (r.contains("fraction_of_peak")) {
    std::snprintf(line, sizeof line,
                  "achieved %.1f%% of the card's %.0f TFLOP/s dense 16-bit peak\n",
                  100.0 * r["fraction_of_peak"].get<double>(), r["peak_tflops"].get<double>());
    s << line;
  }
  return s.str();
}

}  // namespace fullbatch
