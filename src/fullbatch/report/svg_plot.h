#pragma once
// Line charts as standalone SVG documents, written by hand so the report needs no plotting
// library and its HTML stays one self-contained file: axes with 1-2-5 or whole-decade ticks,
// labels, title, a legend beside the plot, and an optional shaded band under each line (e.g. the
// range over seeds). Knows nothing about runs; the report hands it series of points.
#include <string>
#include <utility>
#include <vector>

namespace fullbatch {

// The shaded range at one x, from lo to hi.
struct BandPoint {
  double x, lo, hi;
};

struct PlotSeries {
  std::string label;
  std::vector<std::pair<double, double>> points;  // (x, y); non-finite points are skipped
  // Drawn as a closed, faint area in the series' colour under its line when it has two or more
  // drawable points and is not flat (lo == hi everywhere); non-finite points are skipped.
  std::vector<BandPoint> band = {};
};

struct PlotSpec {
  std::string title, x_label, y_label;
  bool log_y = false;  // non-positive y values (and band bounds) are skipped on a log axis
  std::vector<PlotSeries> series;
  std::string band_label;  // legend entry for the bands, e.g. "shaded: min-max over seeds"
};

// A standalone SVG document (line chart with axes, ticks, labels, title, legend and bands).
std::string render_svg_plot(const PlotSpec& spec);

}  // namespace fullbatch
