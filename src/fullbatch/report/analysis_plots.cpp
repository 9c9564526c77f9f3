#include "fullbatch/report/analysis_plots.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "fullbatch/analysis/landscape.h"
#include "fullbatch/common/error.h"
#include "fullbatch/common/files.h"
#include "fullbatch/report/format.h"
#include "fullbatch/report/svg_plot.h"

namespace fullbatch {
namespace fs = std::filesystem;
namespace {
using detail::escape_xml;
using detail::format_fixed;

double field(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : std::nan("");
}

PlotSeries series_of(const std::vector<nlohmann::json>& rows, const char* x, const char* y,
                     const std::string& label) {
  PlotSeries s;
  s.label = label;
  for (const auto& r : rows) s.points.emplace_back(field(r, x), field(r, y));
  return s;
}

std::string landscape_1d(const std::vector<nlohmann::json>& rows, const nlohmann::json& header) {
  PlotSpec spec;
  spec.title = "Loss along a " + header.value("norm", std::string("filter")) +
               "-normalized random direction (x = 0: the checkpoint)";
  spec.x_label = "x (step along the direction)";
  spec.y_label = "training loss (log)";
  spec.log_y = true;
  spec.series.push_back(series_of(rows, "x", "loss", "loss"));
  if (header.value("full_loss", false)) spec.series.push_back(series_of(rows, "x", "full_loss", "full loss"));
  return render_svg_plot(spec);
}

std::string landscape_2d(const std::vector<nlohmann::json>& rows, const nlohmann::json& header) {
  const std::vector<double> xs = header.at("x").get<std::vector<double>>();
  const std::vector<double> ys = header.at("y").get<std::vector<double>>();
  std::vector<std::vector<double>> z(ys.size(), std::vector<double>(xs.size(), std::nan("")));
  for (const auto& r : rows) {
    const int64_t i = r.value("index", int64_t{-1});
    if (i < 0 || i >= static_cast<int64_t>(xs.size() * ys.size())) continue;
    z[i / xs.size()][i % xs.size()] = std::log10(field(r, "loss"));
  }
  return render_svg_heatmap("log10 training loss on a 2-D slice (centre: the checkpoint)", "x", "y", xs, ys, z);
}

std::string fd_error(const nlohmann::json& j) {
  PlotSpec spec;
  spec.title = "Finite-difference H v against double backprop, per block, v = g";
  spec.x_label = "log10 eps";
  spec.y_label = "relative error ||Hv_fd - Hv|| / ||Hv|| (log)";
  spec.log_y = true;
  PlotSeries fwd{"forward (mean over blocks)", {}}, cen{"central (mean over blocks)", {}};
  for (const auto& r : j.at("relative_error")) {
    const double e = std::log10(field(r, "eps"));
    fwd.points.emplace_back(e, field(r, "forward_mean"));
    cen.points.emplace_back(e, field(r, "central_mean"));
    fwd.band.push_back({e, field(r, "forward_mean"), field(r, "forward_max")});
    cen.band.push_back({e, field(r, "central_mean"), field(r, "central_max")});
  }
  spec.series = {fwd, cen};
  spec.band_label = "shaded: up to the worst block";
  return render_svg_plot(spec);
}

// One quantity on the line between the checkpoints, on the training and the test set.
std::string interpolation(const std::vector<nlohmann::json>& rows, const std::string& title,
                          const std::string& y_label, bool log_y, const char* train_key, const char* test_key) {
  PlotSpec spec;
  spec.title = title;
  spec.x_label = "t";
  spec.y_label = y_label;
  spec.log_y = log_y;
  spec.series.push_back(series_of(rows, "t", train_key, "training set"));
  spec.series.push_back(series_of(rows, "t", test_key, "test set"));
  return render_svg_plot(spec);
}

// Light yellow (low) to dark blue (high).
std::string colour(double f) {
  f = std::clamp(f, 0.0, 1.0);
  const int r = static_cast<int>(255 - 230 * f), g = static_cast<int>(250 - 190 * f),
            b = static_cast<int>(200 - 60 * f + 40 * f * f);
  char buf[16];
  std::snprintf(buf, sizeof(buf), "#%02x%02x%02x", r, g, std::clamp(b, 0, 255));
  return buf;
}

}  // namespace

std::string render_svg_heatmap(const std::string& title, const std::string& x_label,
                               const std::string& y_label, const std::vector<double>& xs,
                               const std::vector<double>& ys, const std::vector<std::vector<double>>& z) {
  const double left = 70, top = 40, size = 400, legend = 60;
  double lo = INFINITY, hi = -INFINITY;
  for (const auto& row : z)
    for (double v : row)
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  if (!(hi > lo)) hi = lo + 1;
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << left + size + legend + 70
    << "\" height=\"" << top + size + 60 << "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  s << "<text x=\"" << left << "\" y=\"20\" font-size=\"14\">" << escape_xml(title) << "</text>\n";
  const double cw = size / std::max<size_t>(xs.size(), 1), ch = size / std::max<size_t>(ys.size(), 1);
  for (size_t j = 0; j < ys.size(); ++j)
    for (size_t i = 0; i < xs.size(); ++i) {
      const double v = z[j][i];
      // y grows upwards: row j is drawn from the bottom.
      s << "<rect x=\"" << left + i * cw << "\" y=\"" << top + size - (j + 1) * ch << "\" width=\"" << cw + 0.5
        << "\" height=\"" << ch + 0.5 << "\" fill=\"" << (std::isfinite(v) ? colour((v - lo) / (hi - lo)) : "#999999")
        << "\"/>\n";
    }
  s << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << size << "\" height=\"" << size
    << "\" fill=\"none\" stroke=\"black\"/>\n";
  auto label = [&](double x, double y, const std::string& text, const char* anchor) {
    s << "<text x=\"" << x << "\" y=\"" << y << "\" text-anchor=\"" << anchor << "\">" << escape_xml(text) << "</text>\n";
  };
  if (!xs.empty()) {
    label(left, top + size + 16, format_fixed(xs.front(), 2), "start");
    label(left + size, top + size + 16, format_fixed(xs.back(), 2), "end");
  }
  if (!ys.empty()) {
    label(left - 6, top + size, format_fixed(ys.front(), 2), "end");
    label(left - 6, top + 12, format_fixed(ys.back(), 2), "end");
  }
  label(left + size / 2, top + size + 36, x_label, "middle");
  label(20, top + size / 2, y_label, "middle");
  // Colour scale.
  const double lx = left + size + 20;
  for (int k = 0; k < 50; ++k)
    s << "<rect x=\"" << lx << "\" y=\"" << top + size - (k + 1) * size / 50 << "\" width=\"20\" height=\""
      << size / 50 + 0.5 << "\" fill=\"" << colour(k / 49.0) << "\"/>\n";
  label(lx + 24, top + 12, format_fixed(hi, 3), "start");
  label(lx + 24, top + size, format_fixed(lo, 3), "start");
  s << "</svg>\n";
  return s.str();
}

std::vector<std::string> write_analysis_plots(const std::string& analysis_dir) {
  std::vector<std::string> written;
  const fs::path dir(analysis_dir);
  auto write = [&](const std::string& name, const std::string& svg) {
    const std::string path = (dir / name).string();
    write_file_atomic(path, svg);
    written.push_back(path);
  };
  nlohmann::json header;
  if (fs::exists(dir / "landscape_1d.jsonl")) {
    const auto rows = read_table((dir / "landscape_1d.jsonl").string(), &header);
    if (!rows.empty()) write("landscape_1d.svg", landscape_1d(rows, header));
  }
  if (fs::exists(dir / "landscape_2d.jsonl")) {
    const auto rows = read_table((dir / "landscape_2d.jsonl").string(), &header);
    if (!rows.empty()) write("landscape_2d.svg", landscape_2d(rows, header));
  }
  if (fs::exists(dir / "fd_error.json")) {
    const nlohmann::json j = nlohmann::json::parse(read_file((dir / "fd_error.json").string()), nullptr, false);
    if (j.is_object() && j.contains("relative_error")) write("fd_error.svg", fd_error(j));
  }
  if (fs::exists(dir / "interpolation.jsonl")) {
    const auto rows = read_table((dir / "interpolation.jsonl").string(), &header);
    if (!rows.empty()) {
      write("interpolation_loss.svg",
            interpolation(rows, "Loss from the first checkpoint (t = 0) to the second (t = 1), BatchNorm buffers too",
                          "loss (log)", true, "loss", "test_loss"));
      write("interpolation_accuracy.svg", interpolation(rows, "Accuracy between the two checkpoints",
                                                        "accuracy (%)", false, "accuracy", "test_accuracy"));
    }
  }
  return written;
}

}  // namespace fullbatch
