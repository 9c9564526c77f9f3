#pragma once
// Line charts as standalone SVG documents, written by hand so the report needs no plotting
// library and its HTML stays one self-contained file: axes with 1-2-5 or whole-decade ticks,
// labels, title, and a legend beside the plot. Knows nothing about runs; the report hands it
// series of points.
#include <string>
#include <utility>
#include <vector>

namespace fullbatch {

struct PlotSeries {
  std::string label;
  std::vector<std::pair<double, double>> points;  // (x, y); non-finite points are skipped
};

struct PlotSpec {
  std::string title, x_label, y_label;
  bool log_y = false;  // non-positive y values are skipped on a log axis
  std::vector<PlotSeries> series;
};

// A standalone SVG document (line chart with axes, ticks, labels, title and legend).
std::string render_svg_plot(const PlotSpec& spec);

}  // namespace fullbatch
