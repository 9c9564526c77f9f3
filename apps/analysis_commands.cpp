// analyze.
#include <cstdio>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "commands.h"
#include "fullbatch/config/config.h"
#include "fullbatch/distributed/process_group.h"
#include "fullbatch/report/analysis_plots.h"
#include "fullbatch/run/analyze.h"

namespace fullbatch::cli {
namespace {

struct AnalyzeArgs {
  AnalyzeRequest request;
  std::string what;
};

std::vector<std::string> split_commas(const std::vector<std::string>& items) {
  std::vector<std::string> out;
  for (const auto& item : items) {
    std::stringstream s(item);
    for (std::string part; std::getline(s, part, ',');)
      if (!part.empty()) out.push_back(part);
  }
  return out;
}

// One line per analysis with its headline numbers; the files hold everything.
void print_summary(const nlohmann::json& r, const std::vector<std::string>& figures) {
  std::printf("analysis of %s (%lld training images, BatchNorm %s) -> %s\n",
              r["source"].get<std::string>().c_str(), static_cast<long long>(r["images"].get<int64_t>()),
              r["batchnorm"].get<std::string>().c_str(), r["out_dir"].get<std::string>().c_str());
  if (r.contains("curvature")) {
    const auto& c = r["curvature"];
    std::printf("  curvature: top eigenvalues %s (%lld Hessian-vector products, %s)",
                c["top"]["eigenvalues"].dump().c_str(), static_cast<long long>(c["top"]["products"].get<int64_t>()),
                c["top"]["converged"].get<bool>() ? "converged" : "not converged");
    if (c.contains("trace"))
      std::printf(", trace %.6g +- %.2g", c["trace"]["estimate"].get<double>(), c["trace"]["std_error"].get<double>());
    std::printf("; %.1f s (one gradient pass %.2f s)\n", c["seconds"].get<double>(),
                c["gradient_pass_seconds"].get<double>());
  }
  if (r.contains("fd_error"))
    for (const auto& e : r["fd_error"]["relative_error"])
      std::printf("  fd-error: eps %-8g forward %.3g (max %.3g), central %.3g (max %.3g)\n",
                  e["eps"].get<double>(), e["forward_mean"].get<double>(), e["forward_max"].get<double>(),
                  e["central_mean"].get<double>(), e["central_max"].get<double>());
  if (r.contains("sam"))
    std::printf("  sam: rho %g, sharpness %.6g (loss %.6g -> %.6g)\n", r["sam"]["rho"].get<double>(),
                r["sam"]["sharpness"].get<double>(), r["sam"]["loss"].get<double>(),
                r["sam"]["perturbed_loss"].get<double>());
  if (r.contains("flatness"))
    std::printf("  flatness: %lld steps, reference value %.6g, distance %.6g%s\n",
                static_cast<long long>(r["flatness"]["steps"].get<int64_t>()),
                r["flatness"]["reference_value"].get<double>(), r["flatness"]["distance"].get<double>(),
                r["flatness"]["exceeded"].get<bool>() ? "" : " (threshold not reached)");
  if (r.contains("gradients")) {
    const auto& g = r["gradients"];
    std::printf("  gradients: |theta| %.6g, |G| %.6g, SNR %.4g", g["parameter_norm"].get<double>(),
                g["gradient_norm"].get<double>(), g["signal_to_noise"].get<double>());
    if (g["noise_scale"].is_number())
      std::printf(", noise scale %.4g", g["noise_scale"].get<double>());
    else
      std::printf(", noise scale undefined (%s)",
                  g.value("noise_scale_reason", std::string()).c_str());
    if (g.contains("momentum_cosine")) std::printf(", cos(momentum, G) %.4f", g["momentum_cosine"].get<double>());
    std::printf("\n");
  }
  for (const auto& f : r["files"]) std::printf("  wrote %s\n", f.get<std::string>().c_str());
  for (const auto& f : figures) std::printf("  wrote %s\n", f.c_str());
}

int cmd_analyze(AnalyzeArgs& a) {
  a.request.what = split_commas({a.what});
  Config transport;  // impl.dist_timeout_s for several processes
  for (const auto& o : a.request.overrides)
    if (o.rfind("impl.dist_timeout_s=", 0) == 0) apply_override(transport, o);
  auto comm = communicator_from_env(transport);
  const nlohmann::json result = run_analysis(a.request, comm);
  if (comm->is_root()) print_summary(result, write_analysis_plots(result["out_dir"].get<std::string>()));
  return 0;
}

}  // namespace

void add_analysis_commands(CLI::App& app, Commands& out) {
  auto* c = app.add_subcommand(
      "analyze", "curvature, finite-difference error, flatness, landscapes of a trained run (docs/analysis.md)");
  auto args = std::make_shared<AnalyzeArgs>();
  c->add_option("--checkpoint", args->request.source, "run directory, its model.pt, or a checkpoint (.ckpt)")
      ->required();
  c->add_option("--what", args->what,
                "comma-separated: curvature, fd-error, sam, flatness, gradients, landscape, interpolation "
                "(default curvature,fd-error,sam,gradients)");
  c->add_option("--to", args->request.other, "second run or weights for --what interpolation");
  c->add_option("--out", args->request.out_dir, "folder for the results (default RUN/analysis)");
  c->add_option("--config", args->request.configs, "YAML file(s) of config keys over the run's");
  c->add_option("overrides", args->request.overrides, "key=value, e.g. analysis.landscape.ynum=21");
  out.push_back({c, [args] { return cmd_analyze(*args); }});
}

}  // namespace fullbatch::cli
