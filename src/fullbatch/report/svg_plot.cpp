// The SVG line chart (declared in svg_plot.h): axis ranges and tick labels first, then a frame
// that maps data to pixels, then one small writer per part of the picture (bands are drawn
// before the lines, so a line is never hidden under another series' band).
#include "fullbatch/report/svg_plot.h"

#include "fullbatch/report/statistics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "fullbatch/report/format.h"

namespace fullbatch {

using detail::escape_xml;
using detail::format_compact;
using detail::format_fixed;

namespace {


// ---------------------------------------------------------------------------------------------
// Axes

// Largest 1-2-5 multiple of a power of ten not far above `raw`, so ticks read 0, 20, 40 rather
// than 0, 17.3, 34.6.
double nice_step(double raw) {
  if (!(raw > 0) || !std::isfinite(raw)) return 1;
  double p = std::pow(10.0, std::floor(std::log10(raw)));
  double f = raw / p;
  double m = f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10;
  return m * p;
}

struct Axis {
  double lo = 0, hi = 1;
  std::vector<std::pair<double, std::string>> ticks;  // position in axis units, label
};

int decimals_for(double step) {
  if (step >= 1) return 0;
  return static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
}

std::string tick_label(double v, double step) {
  if (std::fabs(v) < step * 1e-6) v = 0;
  if (std::fabs(v) >= 10000 && std::fmod(std::fabs(v), 1000.0) == 0)
    return format_compact(v / 1000, 0) + "k";
  return format_fixed(v, decimals_for(step));
}

Axis linear_axis(double lo, double hi) {
  Axis a;
  if (!(std::isfinite(lo) && std::isfinite(hi))) lo = 0, hi = 1;
  if (hi - lo <= 1e-9 * std::max(std::fabs(lo), std::fabs(hi))) {
    // A constant series needs some height; pad relative to its magnitude. "Constant" allows for
    // rounding (a mean over seeds can differ from their common value in the last bit), which
    // would otherwise give a tick step too small to advance the tick loop.
    double pad = lo != 0 ? std::fabs(lo) * 0.1 : 1.0;
    lo -= pad;
    hi += pad;
  }
  double step = nice_step((hi - lo) / 5);
  double first = std::floor(lo / step), last = std::ceil(hi / step);
  a.lo = first * step;
  a.hi = last * step;
  for (double k = first; k <= last + 0.5; k += 1)
    a.ticks.emplace_back(k * step, tick_label(k * step, step));
  return a;
}

std::string decade_label(int e) {
  if (e >= -3 && e <= 4) return format_compact(std::pow(10.0, e), 3);
  return "1e" + std::to_string(e);
}

// Whole decades (lo/hi and tick positions are log10 values), so every log plot has at least two
// labelled ticks however narrow its range.
Axis log_axis(double lo, double hi) {
  Axis a;
  if (!(lo > 0 && hi > 0 && std::isfinite(lo) && std::isfinite(hi))) lo = 0.1, hi = 1;
  int e_lo = static_cast<int>(std::floor(std::log10(lo) + 1e-9));
  int e_hi = static_cast<int>(std::ceil(std::log10(hi) - 1e-9));
  if (e_hi <= e_lo) e_hi = e_lo + 1;
  a.lo = e_lo;
  a.hi = e_hi;
  int every = std::max(1, (e_hi - e_lo + 7) / 8);
  for (int e = e_lo; e <= e_hi; e += every) a.ticks.emplace_back(e, decade_label(e));
  if (e_hi - e_lo == 1) {
    for (double m : {2.0, 5.0}) {
      double v = m * std::pow(10.0, e_lo);
      std::string label = (e_lo >= -3 && e_lo <= 4)
                              ? format_compact(v, 4)
                              : format_compact(m, 0) + "e" + std::to_string(e_lo);
      a.ticks.emplace_back(std::log10(v), label);
    }
  }
  return a;
}

// ---------------------------------------------------------------------------------------------
// Data and layout

// The range of the drawable points; empty (NaN) until the first point.
struct Bounds {
  double x_lo = kNaN, x_hi = kNaN, y_lo = kNaN, y_hi = kNaN;

  bool empty() const { return !std::isfinite(x_lo); }
  void add(double x, double y) {
    x_lo = std::isfinite(x_lo) ? std::min(x_lo, x) : x;
    x_hi = std::isfinite(x_hi) ? std::max(x_hi, x) : x;
    y_lo = std::isfinite(y_lo) ? std::min(y_lo, y) : y;
    y_hi = std::isfinite(y_hi) ? std::max(y_hi, y) : y;
  }
};

bool drawable(double x, double y, bool log_y) {
  return std::isfinite(x) && std::isfinite(y) && (!log_y || y > 0);
}

// The drawable part of a band; empty when fewer than two points remain or it has no width.
std::vector<BandPoint> drawable_band(const std::vector<BandPoint>& in, bool log_y, Bounds& bounds) {
  std::vector<BandPoint> band;
  bool flat = true;
  for (const BandPoint& b : in) {
    if (!drawable(b.x, b.lo, log_y) || !drawable(b.x, b.hi, log_y)) continue;
    band.push_back(b);
    bounds.add(b.x, b.lo);
    bounds.add(b.x, b.hi);
    flat = flat && b.lo == b.hi;
  }
  if (band.size() < 2 || flat) band.clear();
  return band;
}

// Keeps only drawable points, so that scaling never sees NaN, inf or log(<=0).
std::vector<PlotSeries> drawable_series(const PlotSpec& spec, Bounds& bounds) {
  std::vector<PlotSeries> series;
  for (const PlotSeries& in : spec.series) {
    PlotSeries s;
    s.label = in.label;
    for (const auto& [x, y] : in.points) {
      if (!drawable(x, y, spec.log_y)) continue;
      s.points.emplace_back(x, y);
      bounds.add(x, y);
    }
    s.band = drawable_band(in.band, spec.log_y, bounds);
    series.push_back(std::move(s));
  }
  return series;
}

// The legend's entry for the bands: the spec's label when some band is drawn, else "".
std::string band_legend(const PlotSpec& spec, const std::vector<PlotSeries>& series) {
  for (const PlotSeries& s : series)
    if (!s.band.empty()) return spec.band_label;
  return "";
}

// The plot area in pixels and the axes that map data onto it.
struct Frame {
  Axis xa, ya;
  bool log_y = false;
  double left = 70, top = 40, plot_w = 560, plot_h = 320, width = 0, height = 0;

  double px(double x) const { return left + (x - xa.lo) / (xa.hi - xa.lo) * plot_w; }
  // `v` in axis units (log10 on a log axis).
  double py_axis(double v) const { return top + plot_h - (v - ya.lo) / (ya.hi - ya.lo) * plot_h; }
  double py(double y) const { return py_axis(log_y ? std::log10(y) : y); }
};

Frame make_frame(const PlotSpec& spec, const std::vector<PlotSeries>& series, const Bounds& b,
                 const std::string& band_entry) {
  Frame f;
  const bool empty = b.empty();
  f.log_y = spec.log_y;
  f.xa = linear_axis(empty ? 0 : b.x_lo, empty ? 1 : b.x_hi);
  f.ya = spec.log_y ? log_axis(empty ? 0.1 : b.y_lo, empty ? 1 : b.y_hi)
                    : linear_axis(empty ? 0 : b.y_lo, empty ? 1 : b.y_hi);
  std::size_t longest = band_entry.size();
  for (const PlotSeries& s : series) longest = std::max(longest, s.label.size());
  const double legend_w = series.empty() ? 0 : 40 + 7.0 * static_cast<double>(longest);
  const double right = 20 + legend_w, bottom = 55;
  const std::size_t entries = series.size() + (band_entry.empty() ? 0 : 1);
  // Grow the plot rather than let a long ladder's legend run off the bottom.
  f.plot_h = std::max(320.0, 20 + 18.0 * static_cast<double>(entries));
  f.width = f.left + f.plot_w + right;
  f.height = f.top + f.plot_h + bottom;
  return f;
}

// ---------------------------------------------------------------------------------------------
// SVG elements

const char* kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                          "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};

const char* color(std::size_t i) {
  return kPalette[i % (sizeof kPalette / sizeof kPalette[0])];
}

std::string coord(double v) {
  return detail::printf_double("%.2f", v);
}

// `<line x1=".." y1=".." x2=".." y2=".."`; the caller adds attributes and closes it.
std::string line_from(double x1, double y1, double x2, double y2) {
  return "<line x1=\"" + coord(x1) + "\" y1=\"" + coord(y1) + "\" x2=\"" + coord(x2) + "\" y2=\"" +
         coord(y2) + "\"";
}

// A text element at (x, y); `attributes` starts with a space when not empty.
std::string text_at(double x, double y, const std::string& attributes, const std::string& text) {
  return "<text x=\"" + coord(x) + "\" y=\"" + coord(y) + "\"" + attributes + ">" +
         escape_xml(text) + "</text>\n";
}

void write_header(std::ostream& o, const Frame& f, const std::string& title) {
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << coord(f.width) << "\" height=\""
    << coord(f.height) << "\" viewBox=\"0 0 " << coord(f.width) << " " << coord(f.height)
    << "\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n";
  o << "<title>" << escape_xml(title) << "</title>\n";
  o << "<rect x=\"0\" y=\"0\" width=\"" << coord(f.width) << "\" height=\"" << coord(f.height)
    << "\" fill=\"white\"/>\n";
  o << "<text x=\"" << coord(f.left + f.plot_w / 2) << "\" y=\"22\" text-anchor=\"middle\" "
    << "font-size=\"15\" font-weight=\"bold\">" << escape_xml(title) << "</text>\n";
}

void write_grid(std::ostream& o, const Frame& f) {
  const double bottom = f.top + f.plot_h, right = f.left + f.plot_w;
  o << "<g stroke=\"#e0e0e0\" stroke-width=\"1\">\n";
  for (const auto& [v, label] : f.xa.ticks)
    o << line_from(f.px(v), f.top, f.px(v), bottom) << "/>\n";
  for (const auto& [v, label] : f.ya.ticks)
    o << line_from(f.left, f.py_axis(v), right, f.py_axis(v)) << "/>\n";
  o << "</g>\n";
  o << "<rect x=\"" << coord(f.left) << "\" y=\"" << coord(f.top) << "\" width=\""
    << coord(f.plot_w) << "\" height=\"" << coord(f.plot_h)
    << "\" fill=\"none\" stroke=\"#333\"/>\n";
}

void write_ticks(std::ostream& o, const Frame& f) {
  const double bottom = f.top + f.plot_h;
  o << "<g fill=\"#333\">\n";
  for (const auto& [v, label] : f.xa.ticks) {
    o << line_from(f.px(v), bottom, f.px(v), bottom + 5) << " stroke=\"#333\"/>\n";
    o << text_at(f.px(v), bottom + 18, " text-anchor=\"middle\"", label);
  }
  for (const auto& [v, label] : f.ya.ticks) {
    o << line_from(f.left - 5, f.py_axis(v), f.left, f.py_axis(v)) << " stroke=\"#333\"/>\n";
    o << text_at(f.left - 8, f.py_axis(v) + 4, " text-anchor=\"end\"", label);
  }
  o << "</g>\n";
}

void write_axis_labels(std::ostream& o, const Frame& f, const PlotSpec& spec, bool empty) {
  const double mid_x = f.left + f.plot_w / 2, mid_y = f.top + f.plot_h / 2;
  o << text_at(mid_x, f.height - 12, " text-anchor=\"middle\"", spec.x_label);
  o << "<text x=\"16\" y=\"" << coord(mid_y) << "\" text-anchor=\"middle\" "
    << "transform=\"rotate(-90 16 " << coord(mid_y) << ")\">" << escape_xml(spec.y_label)
    << "</text>\n";
  if (empty) o << text_at(mid_x, mid_y, " text-anchor=\"middle\" fill=\"#888\"", "no data");
}

// Each band as one closed path: along its upper edge left to right, back along its lower edge.
void write_bands(std::ostream& o, const Frame& f, const std::vector<PlotSeries>& series) {
  for (std::size_t i = 0; i < series.size(); ++i) {
    const std::vector<BandPoint>& band = series[i].band;
    if (band.empty()) continue;
    o << "<path fill=\"" << color(i) << "\" fill-opacity=\"0.18\" stroke=\"none\" d=\"";
    for (std::size_t k = 0; k < band.size(); ++k)
      o << (k ? " L" : "M") << coord(f.px(band[k].x)) << "," << coord(f.py(band[k].hi));
    for (std::size_t k = band.size(); k-- > 0;)
      o << " L" << coord(f.px(band[k].x)) << "," << coord(f.py(band[k].lo));
    o << " Z\"/>\n";
  }
}

// Sparse series (e.g. evaluated every few hundred steps) also get markers, and a single point,
// which a polyline cannot show, gets only its marker.
void write_curves(std::ostream& o, const Frame& f, const std::vector<PlotSeries>& series) {
  for (std::size_t i = 0; i < series.size(); ++i) {
    const std::vector<std::pair<double, double>>& pts = series[i].points;
    if (pts.size() >= 2) {
      o << "<polyline fill=\"none\" stroke=\"" << color(i) << "\" stroke-width=\"1.8\" points=\"";
      for (std::size_t k = 0; k < pts.size(); ++k)
        o << (k ? " " : "") << coord(f.px(pts[k].first)) << "," << coord(f.py(pts[k].second));
      o << "\"/>\n";
    }
    if (pts.size() <= 60) {
      o << "<g fill=\"" << color(i) << "\">";
      for (const auto& [x, y] : pts)
        o << "<circle cx=\"" << coord(f.px(x)) << "\" cy=\"" << coord(f.py(y)) << "\" r=\"2.5\"/>";
      o << "</g>\n";
    }
  }
}

// To the right of the plot so it never hides a curve; the bands' entry, if any, comes last.
void write_legend(std::ostream& o, const Frame& f, const std::vector<PlotSeries>& series,
                  const std::string& band_entry) {
  const double lx = f.left + f.plot_w + 15;
  auto entry_y = [&](std::size_t i) { return f.top + 10 + 18.0 * static_cast<double>(i); };
  for (std::size_t i = 0; i < series.size(); ++i) {
    const double ly = entry_y(i);
    o << line_from(lx, ly, lx + 22, ly) << " stroke=\"" << color(i) << "\" stroke-width=\"2.5\"/>";
    o << text_at(lx + 28, ly + 4, "",
                 series[i].label + (series[i].points.empty() ? " (no data)" : ""));
  }
  if (band_entry.empty()) return;
  const double ly = entry_y(series.size());
  o << "<rect x=\"" << coord(lx) << "\" y=\"" << coord(ly - 6)
    << "\" width=\"22\" height=\"12\" fill=\"#777\" fill-opacity=\"0.3\"/>";
  o << text_at(lx + 28, ly + 4, "", band_entry);
}

}  // namespace

std::string render_svg_plot(const PlotSpec& spec) {
  Bounds bounds;
  const std::vector<PlotSeries> series = drawable_series(spec, bounds);
  const std::string band_entry = band_legend(spec, series);
  const Frame frame = make_frame(spec, series, bounds, band_entry);
  std::ostringstream o;
  write_header(o, frame, spec.title);
  write_grid(o, frame);
  write_ticks(o, frame);
  write_axis_labels(o, frame, spec, bounds.empty());
  write_bands(o, frame, series);
  write_curves(o, frame, series);
  write_legend(o, frame, series, band_entry);
  o << "</svg>\n";
  return o.str();
}

}  // namespace fullbatch
