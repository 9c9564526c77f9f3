#include "fullbatch/data/image_folder.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "fullbatch/common/error.h"
#include "fullbatch/common/strings.h"

// stb_image's implementation lives in this file alone. Static functions, so it cannot clash with
// another copy linked into the same program; JPEG and PNG only, decoded from memory (the file is
// read here, so a missing file and a corrupt one are told apart); its user-facing messages.
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_NO_STDIO
#define STBI_FAILURE_USERMSG
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wtype-limits"
#include <stb/stb_image.h>
#pragma GCC diagnostic pop

namespace fullbatch {
namespace {

namespace fs = std::filesystem;

// TinyImageNet's images are all 64 x 64 and are used at that size (the reference's config has
// pixels: 64 and no resize).
constexpr int64_t kTinySide = 64;

// ---- PIL's bilinear resample ---------------------------------------------------------------
// torchvision's Resize on a PIL image calls PIL's resize with BILINEAR. PIL resamples each axis
// with a triangle filter stretched by the reduction factor (so a reduction averages every input
// pixel under it), with weights in fixed point and the horizontal pass rounded to bytes before the
// vertical one. The same arithmetic gives the same bytes as PIL from the same decoded pixels.

constexpr int kPrecisionBits = 32 - 8 - 2;  // PIL's PRECISION_BITS for 8-bit images

// PIL's filter weights for output samples [begin, end) of an axis resized from `in` to `out`
// samples: output i reads inputs first[i] .. first[i] + count[i] - 1 with weight[i * ksize + j].
struct Taps {
  int64_t ksize = 0;
  std::vector<int64_t> first, count;
  std::vector<int32_t> weight;
};

Taps bilinear_taps(int64_t in, int64_t out, int64_t begin, int64_t end) {
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  const double filter_scale = std::max(scale, 1.0);
  const double support = 1.0 * filter_scale;  // the triangle's half-width is 1 input pixel
  const double inv = 1.0 / filter_scale;      // PIL multiplies by the reciprocal
  Taps t;
  t.ksize = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  const int64_t n = end - begin;
  t.first.resize(static_cast<size_t>(n));
  t.count.resize(static_cast<size_t>(n));
  t.weight.assign(static_cast<size_t>(n * t.ksize), 0);
  std::vector<double> w(static_cast<size_t>(t.ksize));
  for (int64_t i = 0; i < n; ++i) {
    const double center = (static_cast<double>(begin + i) + 0.5) * scale;
    // Truncating casts, as PIL's (int) casts.
    const int64_t lo = std::max<int64_t>(static_cast<int64_t>(center - support + 0.5), 0);
    const int64_t hi = std::min<int64_t>(static_cast<int64_t>(center + support + 0.5), in);
    double total = 0.0;
    for (int64_t x = lo; x < hi; ++x) {
      const double d = std::fabs((static_cast<double>(x) - center + 0.5) * inv);
      w[static_cast<size_t>(x - lo)] = d < 1.0 ? 1.0 - d : 0.0;
      total += w[static_cast<size_t>(x - lo)];
    }
    t.first[static_cast<size_t>(i)] = lo;
    t.count[static_cast<size_t>(i)] = hi - lo;
    for (int64_t x = 0; x < hi - lo; ++x) {
      const double k = total != 0.0 ? w[static_cast<size_t>(x)] / total : w[static_cast<size_t>(x)];
      t.weight[static_cast<size_t>(i * t.ksize + x)] =
          static_cast<int32_t>(0.5 + k * static_cast<double>(1 << kPrecisionBits));
    }
  }
  return t;
}

inline uint8_t clip8(int64_t v) {
  if (v >= (int64_t{1} << kPrecisionBits << 8)) return 255;
  if (v <= 0) return 0;
  return static_cast<uint8_t>(v >> kPrecisionBits);
}

constexpr int64_t kRounding = int64_t{1} << (kPrecisionBits - 1);

// ---- files ---------------------------------------------------------------------------------

bool is_image_name(const fs::path& p) {
  const std::string ext = lower(p.extension().string());
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

void require_dir(const fs::path& dir, const std::string& expected) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw UserError("data folder " + dir.string() + ": missing or not a directory (expected " +
                    expected + ")");
  }
}

// Names of the subfolders of `dir`, sorted (torchvision's ImageFolder: sorted(entry.name for
// entry in os.scandir(dir) if entry.is_dir()), symbolic links to folders included).
std::vector<std::string> subfolders(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code ec2;
    if (it->is_directory(ec2)) names.push_back(it->path().filename().string());
  }
  if (ec) throw UserError("data folder " + dir.string() + ": cannot list: " + ec.message());
  std::sort(names.begin(), names.end());
  return names;
}

// The image files (.png, .jpg, .jpeg in any case) under `dir` at any depth, as torchvision's
// ImageFolder finds them: it walks subfolders too (following links) and sorts by folder path, then
// by file name. Other files are skipped, as there; a folder with no image at all is an error (as
// torchvision's "Found no valid file for the classes ...").
std::vector<std::string> images_under(const fs::path& dir) {
  std::vector<std::pair<std::string, std::string>> found;  // (folder, file name)
  int64_t others = 0;
  std::error_code ec;
  const auto opts = fs::directory_options::follow_directory_symlink;
  for (fs::recursive_directory_iterator it(dir, opts, ec), end; !ec && it != end;
       it.increment(ec)) {
    std::error_code ec2;
    if (!it->is_regular_file(ec2)) continue;
    if (is_image_name(it->path())) {
      found.emplace_back(it->path().parent_path().string(), it->path().filename().string());
    } else {
      ++others;
    }
  }
  if (ec) throw UserError("data folder " + dir.string() + ": cannot list: " + ec.message());
  if (found.empty()) {
    throw UserError("data folder " + dir.string() + ": no .png/.jpg/.jpeg image" +
                    (others > 0 ? " (only " + std::to_string(others) + " other files)"
                                : " (the folder is empty)"));
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> paths;
  paths.reserve(found.size());
  for (const auto& f : found) paths.push_back((fs::path(f.first) / f.second).string());
  return paths;
}

// A whole file, read plainly: image files are never gzipped, and file_reader's chunked reader
// would cost a megabyte-sized buffer per image.
std::vector<uint8_t> read_image_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw UserError("data file " + path + ": cannot open: " + std::strerror(errno));
  const std::streamoff size = in.tellg();
  if (size < 0) throw UserError("data file " + path + ": cannot read its size");
  if (size > INT_MAX) throw UserError("data file " + path + ": over 2 GiB, too large for an image");
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  in.seekg(0);
  if (size > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), size)) {
    throw UserError("data file " + path + ": read error: " + std::strerror(errno));
  }
  return bytes;
}

// Every line of `path`, blank ones too (so line numbers are right), trailing '\r' removed.
std::vector<std::string> read_lines(const fs::path& path, const std::string& expected) {
  std::ifstream in(path);
  if (!in) {
    throw UserError("data file " + path.string() + ": cannot open (expected " + expected + ")");
  }
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  return lines;
}

std::string shown(const std::string& line) {
  return "'" + (line.size() > 60 ? line.substr(0, 60) + "..." : line) + "'";
}

// ---- decoding ------------------------------------------------------------------------------

struct Listing {
  std::vector<std::string> files;
  std::vector<int64_t> labels;
  void add(const std::vector<std::string>& paths, int64_t label) {
    files.insert(files.end(), paths.begin(), paths.end());
    labels.insert(labels.end(), paths.size(), label);
  }
};

// Decodes the first `limit` files (0 = all) of `list` straight into one uint8 [n, 3, side, side]
// tensor: each image resized so its shorter side is `resize` and center-cropped to `side`, or,
// with resize == 0, required to be side x side already and copied as it is.
ImageSet decode(const Listing& list, int64_t limit, const std::string& key, const std::string& what,
                const std::string& dataset, int64_t resize, int64_t side) {
  const auto count = static_cast<int64_t>(list.files.size());
  if (limit < 0) throw UserError(key + ": must be >= 0 (0 = all), got " + std::to_string(limit));
  if (limit > count) {
    throw UserError(key + ": " + std::to_string(limit) + " is more than the " +
                    std::to_string(count) + " " + what + " images of " + dataset);
  }
  const int64_t n = limit > 0 ? limit : count;
  ImageSet set;
  set.images = torch::empty({n, 3, side, side}, torch::kUInt8);
  set.labels = torch::tensor(std::vector<int64_t>(list.labels.begin(), list.labels.begin() + n),
                             torch::kLong);
  uint8_t* out = set.images.data_ptr<uint8_t>();
  const int64_t plane = side * side;
  for (int64_t i = 0; i < n; ++i) {
    const std::string& path = list.files[static_cast<size_t>(i)];
    const std::vector<uint8_t> bytes = read_image_file(path);
    int w = 0, h = 0, channels = 0;
    // Asking for 3 channels converts grayscale, grayscale+alpha, palette and RGBA to RGB (alpha
    // dropped, as PIL's convert("RGB")); 16-bit PNGs are reduced to 8 bits.
    std::unique_ptr<stbi_uc, void (*)(void*)> rgb(
        stbi_load_from_memory(bytes.data(), static_cast<int>(bytes.size()), &w, &h, &channels, 3),
        stbi_image_free);
    if (!rgb) {
      const char* why = stbi_failure_reason();
      throw UserError("data file " + path + ": cannot decode the image (stb_image: " +
                      (why ? why : "unknown failure") + ")");
    }
    uint8_t* dst = out + i * 3 * plane;
    if (resize > 0) {
      resize_center_crop(rgb.get(), h, w, resize, side, dst);
      continue;
    }
    if (w != side || h != side) {
      throw UserError("data file " + path + ": image is " + std::to_string(w) + "x" +
                      std::to_string(h) + ", expected " + std::to_string(side) + "x" +
                      std::to_string(side));
    }
    const uint8_t* src = rgb.get();
    for (int64_t p = 0; p < plane; ++p) {
      for (int64_t c = 0; c < 3; ++c) dst[c * plane + p] = src[p * 3 + c];
    }
  }
  return set;
}

void decode_splits(Dataset& d, const DataSpec& spec, const Listing& train, const Listing& test,
                   int64_t train_resize, int64_t train_side, int64_t test_resize,
                   int64_t test_side) {
  if (spec.with_train) {
    d.train =
        decode(train, spec.size, "data.size", "training", spec.name, train_resize, train_side);
  }
  d.test =
      decode(test, spec.test_size, "data.test_size", "test", spec.name, test_resize, test_side);
}

// ---- layouts -------------------------------------------------------------------------------

const char* const kFolderLayout =
    "ROOT/train/<class>/*.jpg|jpeg|png and ROOT/val/<class>/*.jpg|jpeg|png";

// torchvision's ImageFolder over ROOT/train and ROOT/val, with one difference: the validation
// labels come from the training classes (torchvision indexes each split's own sorted folders, so a
// val folder missing a class would shift every later label), and a val class unknown to train is
// an error.
Dataset load_folder(const DataSpec& spec, const ImageSizes& sizes) {
  const fs::path root(spec.path);
  require_dir(root, std::string("an image folder: ") + kFolderLayout);
  const fs::path train = root / "train", val = root / "val";
  require_dir(train, std::string("class folders: ") + kFolderLayout);
  require_dir(val, std::string("class folders: ") + kFolderLayout);

  Dataset d;
  d.name = spec.name;
  d.class_names = subfolders(train);
  if (d.class_names.empty()) {
    throw UserError("data folder " + train.string() + ": no class folders (expected " +
                    kFolderLayout + ")");
  }
  d.num_classes = static_cast<int64_t>(d.class_names.size());
  std::map<std::string, int64_t> label_of;
  for (int64_t i = 0; i < d.num_classes; ++i) label_of[d.class_names[static_cast<size_t>(i)]] = i;

  Listing train_list, test_list;
  if (spec.with_train) {
    for (int64_t i = 0; i < d.num_classes; ++i) {
      train_list.add(images_under(train / d.class_names[static_cast<size_t>(i)]), i);
    }
  }
  const std::vector<std::string> val_classes = subfolders(val);
  if (val_classes.empty()) {
    throw UserError("data folder " + val.string() + ": no class folders (expected " +
                    kFolderLayout + ")");
  }
  for (const auto& name : val_classes) {
    const auto it = label_of.find(name);
    if (it == label_of.end()) {
      throw UserError("data folder " + (val / name).string() + ": class '" + name +
                      "' has no folder in " + train.string());
    }
    test_list.add(images_under(val / name), it->second);
  }
  decode_splits(d, spec, train_list, test_list, sizes.resize, sizes.resize, sizes.resize,
                sizes.pixels);
  return d;
}

const char* const kTinyLayout =
    "tiny-imagenet-200: wnids.txt, train/<wnid>/images/*.JPEG, val/images/*.JPEG, "
    "val/val_annotations.txt";

// The sorted WordNet ids of wnids.txt: the classes and their order.
std::vector<std::string> read_wnids(const fs::path& path) {
  std::vector<std::string> wnids;
  for (std::string line : read_lines(path, "one WordNet id per line, as in tiny-imagenet-200")) {
    // strip(), as the reference does; blank lines are skipped.
    const auto b = line.find_first_not_of(" \t");
    if (b == std::string::npos) continue;
    wnids.push_back(line.substr(b, line.find_last_not_of(" \t") + 1 - b));
  }
  if (wnids.empty()) throw UserError("data file " + path.string() + ": lists no class");
  std::sort(wnids.begin(), wnids.end());
  const auto dup = std::adjacent_find(wnids.begin(), wnids.end());
  if (dup != wnids.end()) {
    throw UserError("data file " + path.string() + ": class '" + *dup + "' is listed twice");
  }
  return wnids;
}

// val_annotations.txt: FILE <tab> WNID <tab> box..., one line per validation image.
std::map<std::string, int64_t> read_val_annotations(const fs::path& path,
                                                    const std::map<std::string, int64_t>& label_of,
                                                    const fs::path& wnids_file) {
  std::map<std::string, int64_t> labels;
  int64_t number = 0;
  for (const std::string& line : read_lines(path, "FILE<tab>WNID<tab>... per validation image")) {
    ++number;
    if (line.empty()) continue;
    const std::string where = "data file " + path.string() + ": line " + std::to_string(number);
    const auto tab1 = line.find('\t');
    if (tab1 == std::string::npos || tab1 == 0) {
      throw UserError(where + ": expected FILE<tab>WNID<tab>..., got " + shown(line));
    }
    const auto tab2 = line.find('\t', tab1 + 1);
    const std::string file = line.substr(0, tab1);
    const std::string wnid =
        line.substr(tab1 + 1, tab2 == std::string::npos ? std::string::npos : tab2 - tab1 - 1);
    const auto it = label_of.find(wnid);
    if (it == label_of.end()) {
      throw UserError(where + ": class " + shown(wnid) + " is not in " + wnids_file.string());
    }
    if (!labels.emplace(file, it->second).second) {
      throw UserError(where + ": " + file + " is annotated twice");
    }
  }
  return labels;
}

// TinyImageNet as the reference's TinyImageNet dataset reads it: classes are the sorted wnids of
// wnids.txt (the same order torchvision's ImageFolder would give over train/), files are the
// sorted paths of train/**/*.JPEG (class by class, then by name) and of val/images/*.JPEG (by
// name, so val_0, val_1, val_10, val_100, ...), validation labels from val_annotations.txt. The
// images are 64 x 64 and are stored as they are (the reference's evaluation transform is
// CenterCrop(64), the identity).
Dataset load_tiny(const DataSpec& spec) {
  const fs::path root(spec.path);
  require_dir(root, kTinyLayout);
  const fs::path wnids_file = root / "wnids.txt", train = root / "train", val = root / "val";
  Dataset d;
  d.name = spec.name;
  d.class_names = read_wnids(wnids_file);
  d.num_classes = static_cast<int64_t>(d.class_names.size());
  std::map<std::string, int64_t> label_of;
  for (int64_t i = 0; i < d.num_classes; ++i) label_of[d.class_names[static_cast<size_t>(i)]] = i;

  Listing train_list, test_list;
  if (spec.with_train) {
    require_dir(train, kTinyLayout);
    for (const auto& name : subfolders(train)) {
      if (!label_of.count(name)) {
        throw UserError("data folder " + (train / name).string() + ": class '" + name +
                        "' is not in " + wnids_file.string());
      }
    }
    for (int64_t i = 0; i < d.num_classes; ++i) {
      const fs::path dir = train / d.class_names[static_cast<size_t>(i)];
      require_dir(dir, "the class's images in images/*.JPEG");
      train_list.add(images_under(dir), i);
    }
  }
  const fs::path val_images = val / "images", annotations = val / "val_annotations.txt";
  require_dir(val_images, kTinyLayout);
  std::map<std::string, int64_t> val_labels =
      read_val_annotations(annotations, label_of, wnids_file);
  for (const std::string& path : images_under(val_images)) {
    const std::string file = fs::path(path).filename().string();
    const auto it = val_labels.find(file);
    if (it == val_labels.end()) {
      throw UserError("data file " + annotations.string() + ": has no line for " + path);
    }
    test_list.add({path}, it->second);
    val_labels.erase(it);
  }
  if (!val_labels.empty()) {
    throw UserError("data file " + annotations.string() + ": annotates " +
                    val_labels.begin()->first + ", which is not in " + val_images.string());
  }
  decode_splits(d, spec, train_list, test_list, 0, kTinySide, 0, kTinySide);
  return d;
}

}  // namespace

ImageSizes image_sizes(const DataSpec& spec) {
  if (spec.pixels < 0) {
    throw UserError("data.pixels: must be >= 0 (0 = the dataset's), got " +
                    std::to_string(spec.pixels));
  }
  if (spec.resize < 0) {
    throw UserError("data.resize: must be >= 0 (0 = the dataset's), got " +
                    std::to_string(spec.resize));
  }
  if (spec.name == "tinyimagenet") {
    for (const auto& [key, value] : {std::pair<const char*, int64_t>{"data.pixels", spec.pixels},
                                     std::pair<const char*, int64_t>{"data.resize", spec.resize}}) {
      if (value != 0 && value != kTinySide) {
        throw UserError(std::string(key) +
                        ": tinyimagenet images are stored as they are (64x64); "
                        "use 0 or 64, got " +
                        std::to_string(value));
      }
    }
    return {kTinySide, kTinySide};
  }
  ImageSizes s;
  s.pixels = spec.pixels > 0 ? spec.pixels : 224;
  // ImageNet's evaluation is Resize(256) + CenterCrop(224); other sizes keep that proportion.
  s.resize =
      spec.resize > 0 ? spec.resize : std::llround(static_cast<double>(s.pixels) * 256.0 / 224.0);
  if (s.resize < s.pixels) {
    throw UserError("data.resize: " + std::to_string(s.resize) + " is smaller than data.pixels " +
                    std::to_string(s.pixels) +
                    " (the evaluation crop is cut from the resized image)");
  }
  return s;
}

Dataset load_image_dataset(const DataSpec& spec) {
  const ImageSizes sizes = image_sizes(spec);
  if (spec.name == "tinyimagenet") return load_tiny(spec);
  return load_folder(spec, sizes);
}

int64_t center_crop_offset(int64_t size, int64_t crop) {
  const int64_t d = size - crop;
  if (d % 2 == 0) return d / 2;
  const int64_t q = (d - 1) / 2;  // d / 2 = q + 0.5: round to the even one of q, q + 1
  return q % 2 == 0 ? q : q + 1;
}

void resized_size(int64_t height, int64_t width, int64_t resize, int64_t* out_height,
                  int64_t* out_width) {
  const int64_t shorter = std::min(height, width), longer = std::max(height, width);
  // Python's int(resize * longer / shorter): a true division, then truncation.
  const auto other =
      static_cast<int64_t>(static_cast<double>(resize * longer) / static_cast<double>(shorter));
  *out_height = height <= width ? resize : other;
  *out_width = height <= width ? other : resize;
}

void resize_center_crop(const uint8_t* hwc, int64_t height, int64_t width, int64_t resize,
                        int64_t crop, uint8_t* chw_out) {
  int64_t oh = 0, ow = 0;
  resized_size(height, width, resize, &oh, &ow);
  const int64_t top = center_crop_offset(oh, crop), left = center_crop_offset(ow, crop);
  const bool horizontal = ow != width, vertical = oh != height;
  Taps vt;
  if (vertical) vt = bilinear_taps(height, oh, top, top + crop);

  // Stage 1: the crop's columns of every source row the vertical pass reads, resampled
  // horizontally if the width changes (then into `tmp`, rounded to bytes as PIL does).
  int64_t row0 = top, row1 = top + crop;  // source rows needed
  if (vertical) {
    row0 = vt.first.front();
    row1 = vt.first.back() + vt.count.back();
  }
  std::vector<uint8_t> tmp;
  const uint8_t* mid = hwc + left * 3;  // pixel (r, x) of the crop's columns: mid[r * stride + 3x]
  int64_t stride = width * 3, mid_row0 = 0;
  if (horizontal) {
    const Taps ht = bilinear_taps(width, ow, left, left + crop);
    tmp.resize(static_cast<size_t>((row1 - row0) * crop * 3));
    for (int64_t r = row0; r < row1; ++r) {
      const uint8_t* src = hwc + r * width * 3;
      uint8_t* dst = tmp.data() + (r - row0) * crop * 3;
      for (int64_t x = 0; x < crop; ++x) {
        const int32_t* k = ht.weight.data() + x * ht.ksize;
        const uint8_t* p = src + ht.first[static_cast<size_t>(x)] * 3;
        int64_t acc[3] = {kRounding, kRounding, kRounding};
        for (int64_t j = 0; j < ht.count[static_cast<size_t>(x)]; ++j, p += 3) {
          for (int c = 0; c < 3; ++c) acc[c] += int64_t{p[c]} * k[j];
        }
        for (int c = 0; c < 3; ++c) dst[x * 3 + c] = clip8(acc[c]);
      }
    }
    mid = tmp.data();
    stride = crop * 3;
    mid_row0 = row0;
  }

  // Stage 2: the vertical pass (or a copy), written channels first.
  const int64_t plane = crop * crop;
  std::vector<int64_t> acc(static_cast<size_t>(crop * 3));
  for (int64_t y = 0; y < crop; ++y) {
    const uint8_t* row = nullptr;  // the unresampled row, when the height does not change
    if (vertical) {
      std::fill(acc.begin(), acc.end(), kRounding);
      const int32_t* k = vt.weight.data() + y * vt.ksize;
      const uint8_t* p = mid + (vt.first[static_cast<size_t>(y)] - mid_row0) * stride;
      for (int64_t j = 0; j < vt.count[static_cast<size_t>(y)]; ++j, p += stride) {
        for (int64_t i = 0; i < crop * 3; ++i) acc[static_cast<size_t>(i)] += int64_t{p[i]} * k[j];
      }
    } else {
      row = mid + (top + y - mid_row0) * stride;
    }
    for (int64_t x = 0; x < crop; ++x) {
      for (int64_t c = 0; c < 3; ++c) {
        const int64_t i = x * 3 + c;
        chw_out[c * plane + y * crop + x] = vertical ? clip8(acc[static_cast<size_t>(i)]) : row[i];
      }
    }
  }
}

}  // namespace fullbatch
