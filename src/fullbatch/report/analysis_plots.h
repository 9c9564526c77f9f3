#pragma once
// Figures of `fullbatch analyze`'s results (run/analyze.h): the 1-D landscape and the
// interpolation between checkpoints as line charts, the 2-D landscape as a heat map with its
// level values, the finite-difference error against eps on log axes. Each is a standalone SVG
// beside its data file; a report of runs links those it finds in each run's analysis/ folder.
#include <string>
#include <vector>

namespace fullbatch {

// Renders a figure for every result file found in `analysis_dir`; returns the SVG paths written.
std::vector<std::string> write_analysis_plots(const std::string& analysis_dir);

// A heat map of z over a grid (rows: y, columns: x), values that are not finite drawn grey.
std::string render_svg_heatmap(const std::string& title, const std::string& x_label,
                               const std::string& y_label, const std::vector<double>& xs,
                               const std::vector<double>& ys, const std::vector<std::vector<double>>& z);

}  // namespace fullbatch
