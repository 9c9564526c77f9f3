// Tests of the image-file datasets (image folders, ImageNet's layout, TinyImageNet) on small
// folders written here with stb_image_write, of the PIL-equal resize and center crop, and of the
// random-resized-crop augmentation against a per-image oracle.
#include "fullbatch/data/image_folder.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "fullbatch/common/error.h"
#include "fullbatch/common/rng.h"
#include "fullbatch/data/augment.h"
#include "fullbatch/data/block_source.h"
#include "fullbatch/data/dataset.h"
#include "test_util.h"

// The writer's implementation lives in this test alone (static: no clash with anything linked).
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop

namespace fullbatch {
namespace {

namespace fs = std::filesystem;
using Pixel = std::function<int(int y, int x, int c)>;

// A fresh folder per test (test_util.h's), addressed with paths.
struct TempDir : testing::TempDir {
  fs::path operator/(const std::string& rel) const { return fs::path(path()) / rel; }
  std::string str() const { return path(); }
};

// height x width x comp bytes with pixel (y, x, c) = f(y, x, c).
std::vector<uint8_t> pixels_of(int h, int w, int comp, const Pixel& f) {
  std::vector<uint8_t> px(static_cast<size_t>(h * w * comp));
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < comp; ++c)
        px[static_cast<size_t>((y * w + x) * comp + c)] = uint8_t(f(y, x, c));
  return px;
}

void write_png(const fs::path& p, int h, int w, int comp, const Pixel& f) {
  fs::create_directories(p.parent_path());
  const auto px = pixels_of(h, w, comp, f);
  ASSERT_NE(stbi_write_png(p.string().c_str(), w, h, comp, px.data(), w * comp), 0) << p;
}

void write_jpg(const fs::path& p, int h, int w, int comp, const Pixel& f) {
  fs::create_directories(p.parent_path());
  const auto px = pixels_of(h, w, comp, f);
  ASSERT_NE(stbi_write_jpg(p.string().c_str(), w, h, comp, px.data(), 95), 0) << p;
}

void write_text(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary);
  out << text;
}

// Runs `f`, expecting a UserError whose message contains every one of `parts` and is one line.
void expect_user_error(const std::function<void()>& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "no UserError thrown";
  } catch (const UserError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << msg << " lacks " << p;
  }
}

DataSpec data_spec(const std::string& name, const std::string& path, int64_t pixels = 0,
                   int64_t resize = 0) {
  DataSpec s;
  s.name = name;
  s.path = path;
  s.pixels = pixels;
  s.resize = resize;
  return s;
}

// Test images whose expected bytes are known. The ramp's R grows 4 per column and G 4 per row:
// halving it with PIL's bilinear filter (weights 1/8, 3/8, 3/8, 1/8 away from the border) gives
// the value at the midpoint of each pixel pair, 8i + 2 steps above the ramp's start.
int ramp(int y, int x, int c) {
  return c == 0 ? 4 * x + 10 : c == 1 ? 4 * y + 20 : 100;
}
int wide(int y, int x, int c) {
  return (x * 37 + y * 11 + c * 70 + (x * y) % 13) % 256;
}
int tall(int y, int x, int c) {
  return (x * 29 + y * 17 + c * 50 + (x * y) % 7) % 256;
}

// PIL 9.4's Image.resize(BILINEAR) followed by torchvision's CenterCrop offsets, computed in
// Python: `wide` (12 x 20) resized to 8 x 13 and cropped to 8 and to 6, `tall` (20 x 12) resized
// to 11 x 7 and cropped to 5; channels first.
const std::vector<int> kWide8 = {
    128, 188, 130, 46,  104, 160, 203, 58,  148, 180, 63,  64,  122, 181, 207, 70,  166, 180,
    36,  81,  135, 194, 122, 53,  181, 199, 53,  96,  155, 204, 111, 67,  197, 165, 64,  114,
    171, 175, 39,  84,  204, 75,  72,  133, 187, 172, 43,  100, 140, 41,  88,  147, 201, 71,
    58,  118, 145, 47,  103, 164, 216, 68,  73,  135, 198, 159, 66,  116, 174, 173, 31,  84,
    207, 82,  76,  134, 192, 177, 49,  101, 148, 45,  92,  151, 201, 75,  65,  119, 151, 56,
    110, 166, 207, 68,  81,  137, 122, 71,  125, 184, 126, 46,  96,  154, 50,  86,  142, 203,
    129, 59,  113, 170, 57,  103, 158, 200, 106, 75,  128, 188, 58,  117, 173, 184, 39,  88,
    143, 205, 117, 72,  127, 186, 192, 76,  101, 154, 54,  92,  146, 204, 134, 65,  119, 171,
    65,  107, 162, 205, 106, 78,  135, 189, 65,  126, 180, 187, 44,  94,  151, 200, 81,  141,
    195, 154, 57,  110, 166, 164, 99,  156, 212, 74,  71,  129, 183, 173, 112, 173, 191, 69,
    89,  145, 194, 142, 128, 187, 131, 48,  105, 158, 200, 62};
const std::vector<int> kWide6 = {
    63,  64,  122, 181, 207, 70,  36,  81,  135, 194, 122, 53,  53,  96,  155, 204, 111, 67,
    64,  114, 171, 175, 39,  84,  72,  133, 187, 172, 43,  100, 88,  147, 201, 71,  58,  118,
    76,  134, 192, 177, 49,  101, 92,  151, 201, 75,  65,  119, 110, 166, 207, 68,  81,  137,
    125, 184, 126, 46,  96,  154, 142, 203, 129, 59,  113, 170, 158, 200, 106, 75,  128, 188,
    146, 204, 134, 65,  119, 171, 162, 205, 106, 78,  135, 189, 180, 187, 44,  94,  151, 200,
    195, 154, 57,  110, 166, 164, 212, 74,  71,  129, 183, 173, 191, 69,  89,  145, 194, 142};
const std::vector<int> kTall5 = {
    163, 206, 112, 53,  108, 192, 123, 50, 84,  137, 192, 61,  68,  115, 169, 133, 51,  98, 145,
    196, 40,  81,  128, 175, 187, 200, 74, 56,  103, 158, 159, 43,  88,  134, 187, 80,  71, 118,
    165, 192, 56,  101, 148, 195, 142, 79, 131, 178, 202, 70,  100, 59,  106, 153, 208, 57, 90,
    138, 184, 183, 69,  121, 168, 207, 86, 98,  151, 198, 171, 53,  129, 181, 181, 77,  74};

torch::Tensor as_image(const std::vector<int>& v, int64_t side) {
  return torch::tensor(std::vector<int64_t>(v.begin(), v.end()), torch::kLong)
      .view({3, side, side})
      .to(torch::kUInt8);
}

torch::Tensor crop_of(const Pixel& f, int h, int w, int64_t resize, int64_t crop) {
  const auto px = pixels_of(h, w, 3, f);
  auto out = torch::empty({3, crop, crop}, torch::kUInt8);
  resize_center_crop(px.data(), h, w, resize, crop, out.data_ptr<uint8_t>());
  return out;
}

// ---- resize and center crop --------------------------------------------------------------------

TEST(ResizeCenterCrop, SameBytesAsPil) {
  EXPECT_TRUE(torch::equal(crop_of(wide, 12, 20, 8, 8), as_image(kWide8, 8)));
  EXPECT_TRUE(torch::equal(crop_of(wide, 12, 20, 8, 6), as_image(kWide6, 6)));
  EXPECT_TRUE(torch::equal(crop_of(tall, 20, 12, 7, 5), as_image(kTall5, 5)));
}

TEST(ResizeCenterCrop, HandComputedRamp) {
  // 16 x 24 halved to 8 x 12, center crop 6: rows 1..6, columns 3..8 of the halved image.
  auto out = crop_of(ramp, 16, 24, 8, 6).to(torch::kLong);
  for (int64_t r = 0; r < 6; ++r) {
    for (int64_t c = 0; c < 6; ++c) {
      EXPECT_EQ(out[0][r][c].item<int64_t>(), 10 + 8 * (c + 3) + 2) << r << "," << c;
      EXPECT_EQ(out[1][r][c].item<int64_t>(), 20 + 8 * (r + 1) + 2) << r << "," << c;
      EXPECT_EQ(out[2][r][c].item<int64_t>(), 100);
    }
  }
  // Already the right size: a plain crop, no resampling.
  auto same = crop_of(ramp, 16, 24, 16, 10).to(torch::kLong);
  EXPECT_EQ(same[0][0][0].item<int64_t>(), ramp(3, 7, 0));
  EXPECT_EQ(same[1][9][9].item<int64_t>(), ramp(12, 16, 1));
}

TEST(ResizeCenterCrop, SizesAndOffsetsAsTorchvision) {
  int64_t h = 0, w = 0;
  resized_size(375, 500, 256, &h, &w);
  EXPECT_EQ(h, 256);
  EXPECT_EQ(w, 341);  // int(256 * 500 / 375) = int(341.33)
  resized_size(500, 333, 256, &h, &w);
  EXPECT_EQ(h, 384);
  EXPECT_EQ(w, 256);
  resized_size(16, 16, 8, &h, &w);
  EXPECT_EQ(h, 8);
  EXPECT_EQ(w, 8);
  // Python's round((size - crop) / 2): halves to the even neighbour.
  EXPECT_EQ(center_crop_offset(13, 6), 4);  // 3.5
  EXPECT_EQ(center_crop_offset(13, 8), 2);  // 2.5
  EXPECT_EQ(center_crop_offset(11, 6), 2);  // 2.5
  EXPECT_EQ(center_crop_offset(12, 6), 3);
  EXPECT_EQ(center_crop_offset(256, 224), 16);
}

TEST(ImageSizes, DefaultsAndErrors) {
  ImageSizes s = image_sizes(data_spec("imagenet", "x"));
  EXPECT_EQ(s.pixels, 224);
  EXPECT_EQ(s.resize, 256);
  s = image_sizes(data_spec("imagefolder", "x", 64));
  EXPECT_EQ(s.pixels, 64);
  EXPECT_EQ(s.resize, 73);  // round(64 * 256 / 224) = round(73.14)
  s = image_sizes(data_spec("tinyimagenet", "x"));
  EXPECT_EQ(s.pixels, 64);
  EXPECT_EQ(s.resize, 64);
  expect_user_error([] { image_sizes(data_spec("imagefolder", "x", 8, 6)); },
                    {"data.resize", "6", "data.pixels 8"});
  expect_user_error([] { image_sizes(data_spec("imagefolder", "x", -1)); }, {"data.pixels", "-1"});
  expect_user_error([] { image_sizes(data_spec("tinyimagenet", "x", 32)); },
                    {"data.pixels", "64x64", "32"});
  expect_user_error([] { load_dataset(data_spec("cifar10", "x", 64)); }, {"data.pixels", "32x32"});
  expect_user_error([] { load_dataset(data_spec("mnist", "x", 0, 30)); }, {"data.resize"});
}

// ---- image folders -----------------------------------------------------------------------------

// train/ant/x.jpeg              RGB JPEG 12x12, constant (200, 100, 50)       label 0
// train/bird/B.png              grayscale PNG 8x10 (upper case sorts first)   label 1
// train/bird/a.png              the ramp, RGB PNG 16x24                        label 1
// train/cat/c.png               `wide`, RGB PNG 12x20                         label 2
// train/cat/d.JPG               grayscale JPEG 9x9, constant 128               label 2
// train/cat/notes.txt           not an image: skipped
// train/cat/more/e.png          RGBA PNG 8x8 in a subfolder (after cat/'s own) label 2
// val/bird/v.png, val/cat/w.png the ramp and `wide`; val has no ant folder
void write_folder(const TempDir& dir) {
  write_jpg(dir / "train/ant/x.jpeg", 12, 12, 3,
            [](int, int, int c) { return 200 - 50 * c - 25 * (c == 2); });
  write_png(dir / "train/bird/B.png", 8, 10, 1, [](int y, int x, int) { return 3 * x + 5 * y; });
  write_png(dir / "train/bird/a.png", 16, 24, 3, ramp);
  write_png(dir / "train/cat/c.png", 12, 20, 3, wide);
  write_jpg(dir / "train/cat/d.JPG", 9, 9, 1, [](int, int, int) { return 128; });
  write_text(dir / "train/cat/notes.txt", "not an image\n");
  write_png(dir / "train/cat/more/e.png", 8, 8, 4, [](int y, int x, int c) {
    return c == 0 ? 10 * x : c == 1 ? 10 * y : c == 2 ? 7 : 30 * x;
  });
  write_png(dir / "val/bird/v.png", 16, 24, 3, ramp);
  write_png(dir / "val/cat/w.png", 12, 20, 3, wide);
}

int64_t max_distance(const torch::Tensor& image, std::vector<int64_t> rgb) {
  auto expected = torch::tensor(rgb, torch::kLong).view({3, 1, 1});
  return (image.to(torch::kLong) - expected).abs().max().item<int64_t>();
}

TEST(ImageFolder, ClassesLabelsOrderAndPixels) {
  TempDir dir;
  write_folder(dir);
  Dataset d = load_dataset(data_spec("imagefolder", dir.str(), 6, 8));
  EXPECT_EQ(d.name, "imagefolder");
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"ant", "bird", "cat"}));
  EXPECT_EQ(d.num_classes, 3);
  ASSERT_EQ(d.train.images.sizes(), torch::IntArrayRef({6, 3, 8, 8}));
  ASSERT_EQ(d.test.images.sizes(), torch::IntArrayRef({2, 3, 6, 6}));
  EXPECT_EQ(d.train.images.scalar_type(), torch::kUInt8);
  EXPECT_TRUE(torch::equal(d.train.labels, torch::tensor(std::vector<int64_t>{0, 1, 1, 2, 2, 2})));
  EXPECT_TRUE(torch::equal(d.test.labels, torch::tensor(std::vector<int64_t>{1, 2})));
  EXPECT_EQ(d.pixels, 6);
  EXPECT_EQ(d.height(), 8);  // the stored training size (data.resize)
  EXPECT_DOUBLE_EQ(d.mean[0], 0.485);
  EXPECT_DOUBLE_EQ(d.std[2], 0.225);

  const auto train = d.train.images.to(torch::kLong);
  EXPECT_LE(max_distance(train[0], {200, 150, 75}), 4);  // JPEG, 12 -> 8
  for (int64_t c = 0; c < 3; ++c) {  // grayscale 8x10: no resample, columns 1..8
    for (int64_t r = 0; r < 8; ++r) {
      for (int64_t x = 0; x < 8; ++x)
        EXPECT_EQ(train[1][c][r][x].item<int64_t>(), 3 * (x + 1) + 5 * r);
    }
  }
  for (int64_t r = 0; r < 8; ++r) {  // the ramp halved to 8x12, columns 2..9
    for (int64_t x = 0; x < 8; ++x) {
      EXPECT_EQ(train[2][0][r][x].item<int64_t>(), 10 + 8 * (x + 2) + 2);
      if (r >= 1 && r <= 6) EXPECT_EQ(train[2][1][r][x].item<int64_t>(), 20 + 8 * r + 2);
      EXPECT_EQ(train[2][2][r][x].item<int64_t>(), 100);
    }
  }
  EXPECT_TRUE(torch::equal(d.train.images[3], as_image(kWide8, 8)));
  EXPECT_LE(max_distance(train[4], {128, 128, 128}), 4);  // grayscale JPEG, 9 -> 8
  for (int64_t r = 0; r < 8; ++r) {                       // RGBA 8x8: alpha dropped, no resample
    for (int64_t x = 0; x < 8; ++x) {
      EXPECT_EQ(train[5][0][r][x].item<int64_t>(), 10 * x);
      EXPECT_EQ(train[5][1][r][x].item<int64_t>(), 10 * r);
      EXPECT_EQ(train[5][2][r][x].item<int64_t>(), 7);
    }
  }
  const auto test = d.test.images.to(torch::kLong);  // Resize(8) + CenterCrop(6)
  for (int64_t r = 0; r < 6; ++r) {
    for (int64_t x = 0; x < 6; ++x) {
      EXPECT_EQ(test[0][0][r][x].item<int64_t>(), 10 + 8 * (x + 3) + 2);
      EXPECT_EQ(test[0][1][r][x].item<int64_t>(), 20 + 8 * (r + 1) + 2);
    }
  }
  EXPECT_TRUE(torch::equal(d.test.images[1], as_image(kWide6, 6)));

  // "imagenet" is the same layout under ImageNet's name and defaults.
  Dataset n = load_dataset(data_spec("imagenet", dir.str(), 6, 8));
  EXPECT_EQ(n.name, "imagenet");
  EXPECT_TRUE(torch::equal(n.train.images, d.train.images));
}

TEST(ImageFolder, SizeTakesTheFirstFilesInClassOrder) {
  TempDir dir;
  write_folder(dir);
  Dataset all = load_dataset(data_spec("imagefolder", dir.str(), 6, 8));
  DataSpec s = data_spec("imagefolder", dir.str(), 6, 8);
  s.size = 3;
  s.test_size = 1;
  Dataset d = load_dataset(s);
  ASSERT_EQ(d.train.size(), 3);
  ASSERT_EQ(d.test.size(), 1);
  EXPECT_TRUE(torch::equal(d.train.images, all.train.images.slice(0, 0, 3)));
  EXPECT_TRUE(torch::equal(d.train.labels, torch::tensor(std::vector<int64_t>{0, 1, 1})));
  EXPECT_EQ(d.num_classes, 3);  // classes come from the folders, not from the images kept
  s.size = 7;
  expect_user_error([&] { load_dataset(s); }, {"data.size", "7", "6 training images"});
  s.size = 0;
  s.test_size = 3;
  expect_user_error([&] { load_dataset(s); }, {"data.test_size", "3", "2 test images"});
  // The test split alone still knows every class.
  s.test_size = 0;
  s.with_train = false;
  Dataset t = load_dataset(s);
  EXPECT_FALSE(t.train.images.defined());
  EXPECT_EQ(t.num_classes, 3);
  EXPECT_EQ(t.test.size(), 2);
}

// A minimal good folder: one class, one image in each split.
void write_minimal(const TempDir& dir) {
  write_png(dir / "train/a/1.png", 4, 4, 3, wide);
  write_png(dir / "val/a/1.png", 4, 4, 3, wide);
}

TEST(ImageFolder, ErrorsNameTheFileOrFolder) {
  auto load = [](const TempDir& dir) { load_dataset(data_spec("imagefolder", dir.str(), 4, 4)); };
  {
    TempDir dir;
    write_minimal(dir);
    load(dir);  // the minimal folder itself loads
    write_text(dir / "train/a/2.png", "this is not a PNG");
    expect_user_error([&] { load(dir); }, {(dir / "train/a/2.png").string(), "cannot decode"});
  }
  {
    TempDir dir;
    write_minimal(dir);
    fs::create_directories(dir / "train/b");
    expect_user_error([&] { load(dir); }, {(dir / "train/b").string(), "no .png/.jpg/.jpeg image"});
    write_text(dir / "train/b/readme.txt", "x");
    expect_user_error([&] { load(dir); }, {(dir / "train/b").string(), "1 other files"});
  }
  {
    TempDir dir;
    write_minimal(dir);
    fs::remove_all(dir / "val");
    expect_user_error([&] { load(dir); }, {(dir / "val").string(), "missing"});
  }
  {
    TempDir dir;
    write_minimal(dir);
    fs::remove_all(dir / "train");
    expect_user_error([&] { load(dir); }, {(dir / "train").string(), "missing"});
  }
  {
    TempDir dir;
    write_minimal(dir);
    write_png(dir / "val/zebra/1.png", 4, 4, 3, wide);
    expect_user_error([&] { load(dir); }, {(dir / "val/zebra").string(), "'zebra'"});
  }
  {
    TempDir dir;
    write_minimal(dir);
    write_text(dir / "train/a/3.jpg", "");
    expect_user_error([&] { load(dir); }, {(dir / "train/a/3.jpg").string()});
  }
  expect_user_error([] { load_dataset(data_spec("imagefolder", "")); },
                    {"data.path", "imagefolder", "train/<class>"});
  expect_user_error([] { load_dataset(data_spec("tinyimagenet", "")); },
                    {"data.path", "tinyimagenet", "wnids.txt"});
  expect_user_error([] { load_dataset(data_spec("imagenet", "/nonexistent/fullbatch")); },
                    {"/nonexistent/fullbatch", "missing"});
}

// ---- TinyImageNet ------------------------------------------------------------------------------

Pixel constant(int v) {
  return [v](int, int, int) { return v; };
}

// wnids n02, n01 (unsorted); train n01: _0, _1, _10, _2 (name order) and n02: _0; val_0, val_1,
// val_10, val_2 with annotations in another order. Every image a distinct constant gray.
void write_tiny(const TempDir& dir) {
  write_text(dir / "wnids.txt", "n02\nn01\n\n");
  const std::vector<std::pair<std::string, int>> train = {{"n01/images/n01_0.JPEG", 10},
                                                          {"n01/images/n01_1.JPEG", 40},
                                                          {"n01/images/n01_10.JPEG", 70},
                                                          {"n01/images/n01_2.JPEG", 100},
                                                          {"n02/images/n02_0.JPEG", 130}};
  for (const auto& [file, v] : train) write_jpg(dir / ("train/" + file), 64, 64, 3, constant(v));
  write_text(dir / "train/n01/n01_boxes.txt", "n01_0.JPEG\t0\t0\t10\t10\n");
  const std::vector<std::pair<std::string, int>> val = {
      {"val_0.JPEG", 160}, {"val_1.JPEG", 190}, {"val_10.JPEG", 220}, {"val_2.JPEG", 240}};
  for (const auto& [file, v] : val) write_jpg(dir / ("val/images/" + file), 64, 64, 3, constant(v));
  write_text(dir / "val/val_annotations.txt",
             "val_1.JPEG\tn02\t0\t0\t63\t63\n"
             "val_0.JPEG\tn01\t1\t2\t30\t40\n"
             "val_2.JPEG\tn02\t0\t0\t10\t10\r\n"
             "val_10.JPEG\tn01\t5\t5\t20\t20\n");
}

TEST(TinyImageNet, LayoutOrderAndLabels) {
  TempDir dir;
  write_tiny(dir);
  Dataset d = load_dataset(data_spec("tinyimagenet", dir.str()));
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"n01", "n02"}));
  EXPECT_EQ(d.num_classes, 2);
  ASSERT_EQ(d.train.images.sizes(), torch::IntArrayRef({5, 3, 64, 64}));
  ASSERT_EQ(d.test.images.sizes(), torch::IntArrayRef({4, 3, 64, 64}));
  EXPECT_TRUE(torch::equal(d.train.labels, torch::tensor(std::vector<int64_t>{0, 0, 0, 0, 1})));
  EXPECT_TRUE(torch::equal(d.test.labels, torch::tensor(std::vector<int64_t>{0, 1, 0, 1})));
  const std::vector<int64_t> train_values = {10, 40, 70, 100, 130},
                             test_values = {160, 190, 220, 240};
  for (int64_t i = 0; i < 5; ++i) {
    const int64_t v = train_values[static_cast<size_t>(i)];
    EXPECT_LE(max_distance(d.train.images[i], {v, v, v}), 2) << i;
  }
  for (int64_t i = 0; i < 4; ++i) {
    const int64_t v = test_values[static_cast<size_t>(i)];
    EXPECT_LE(max_distance(d.test.images[i], {v, v, v}), 2) << i;
  }
  EXPECT_EQ(d.pixels, 64);
  EXPECT_DOUBLE_EQ(d.mean[0], 0.4789886474609375);
  EXPECT_DOUBLE_EQ(d.std[1], 0.2690644860267639);
  DataSpec s = data_spec("tinyimagenet", dir.str(), 64, 64);
  s.size = 2;
  EXPECT_EQ(load_dataset(s).train.size(), 2);
}

TEST(TinyImageNet, ErrorsNameTheFile) {
  auto load = [](const TempDir& dir) { load_dataset(data_spec("tinyimagenet", dir.str())); };
  const std::string ann = "val/val_annotations.txt";
  {
    TempDir dir;
    write_tiny(dir);
    write_text(dir / ann, "val_0.JPEG\tn01\t0\t0\t1\t1\nnot a tab separated line\n");
    expect_user_error([&] { load(dir); }, {(dir / ann).string(), "line 2", "'not a tab"});
  }
  {
    TempDir dir;
    write_tiny(dir);
    write_text(dir / ann, "val_0.JPEG\tn99\t0\t0\t1\t1\n");
    expect_user_error([&] { load(dir); }, {(dir / ann).string(), "line 1", "'n99'", "wnids.txt"});
  }
  {
    TempDir dir;
    write_tiny(dir);
    write_text(dir / ann, "val_0.JPEG\tn01\nval_1.JPEG\tn02\nval_2.JPEG\tn02\n");
    expect_user_error([&] { load(dir); }, {(dir / ann).string(), "val_10.JPEG"});
  }
  {
    TempDir dir;
    write_tiny(dir);
    write_jpg(dir / "train/n01/images/n01_3.JPEG", 32, 32, 3, constant(9));
    expect_user_error([&] { load(dir); },
                      {(dir / "train/n01/images/n01_3.JPEG").string(), "32x32", "64x64"});
  }
  {
    TempDir dir;
    write_tiny(dir);
    fs::remove(dir / "wnids.txt");
    expect_user_error([&] { load(dir); }, {(dir / "wnids.txt").string()});
  }
  {
    TempDir dir;
    write_tiny(dir);
    fs::remove_all(dir / "train/n02");
    expect_user_error([&] { load(dir); }, {(dir / "train/n02").string()});
  }
}

// ---- random-resized-crop -----------------------------------------------------------------------

TEST(RandomResizedCrop, ParamsInRangeAndKeyed) {
  auto gen = keyed_generator(5, Stream::kAugment, {1, 2});
  const int64_t n = 4000, height = 160, width = 200;
  ResizedCropParams p = draw_resized_crop(n, height, width, gen);
  ASSERT_EQ(p.size(), n);
  EXPECT_EQ(p.top.scalar_type(), torch::kLong);
  EXPECT_EQ(p.flip.scalar_type(), torch::kBool);
  EXPECT_GE(p.top.min().item<int64_t>(), 0);
  EXPECT_GE(p.left.min().item<int64_t>(), 0);
  EXPECT_GE(p.height.min().item<int64_t>(), 1);
  EXPECT_GE(p.width.min().item<int64_t>(), 1);
  EXPECT_LE((p.top + p.height).max().item<int64_t>(), height);
  EXPECT_LE((p.left + p.width).max().item<int64_t>(), width);
  auto area = (p.height * p.width).to(torch::kDouble) / double(height * width);
  auto ratio = p.width.to(torch::kDouble) / p.height.to(torch::kDouble);
  // Rounding w and h to whole pixels moves the area and ratio a little past the drawn range.
  EXPECT_GE(area.min().item<double>(), 0.08 * 0.97);
  EXPECT_LE(area.max().item<double>(), 1.0);
  EXPECT_LT(area.min().item<double>(), 0.1);  // the range is used, not just its middle
  EXPECT_GT(area.max().item<double>(), 0.9);
  EXPECT_GE(ratio.min().item<double>(), 0.75 * 0.97);
  EXPECT_LE(ratio.max().item<double>(), 4.0 / 3.0 * 1.03);
  const double flips = p.flip.to(torch::kDouble).mean().item<double>();
  EXPECT_GT(flips, 0.45);
  EXPECT_LT(flips, 0.55);

  auto same = keyed_generator(5, Stream::kAugment, {1, 2});
  auto other = keyed_generator(5, Stream::kAugment, {1, 3});
  ResizedCropParams q = draw_resized_crop(n, height, width, same);
  ResizedCropParams r = draw_resized_crop(n, height, width, other);
  for (const auto& [a, b] :
       std::vector<std::pair<torch::Tensor, torch::Tensor>>{{p.top, q.top},
                                                            {p.left, q.left},
                                                            {p.height, q.height},
                                                            {p.width, q.width},
                                                            {p.flip, q.flip}}) {
    EXPECT_TRUE(torch::equal(a, b));
  }
  EXPECT_FALSE(torch::equal(p.width, r.width));
  EXPECT_EQ(draw_resized_crop(0, height, width, gen).size(), 0);
}

TEST(RandomResizedCrop, FallbackIsTheCentralCrop) {
  // A 1 x 100 strip fits no attempt (h rounds to >= 2): torchvision falls back to the whole
  // height and width = round(1 * 4/3) = 1, centred; the 100 x 1 strip likewise.
  auto gen = keyed_generator(1, Stream::kAugment, {0});
  ResizedCropParams wide_p = draw_resized_crop(3, 1, 100, gen);
  ResizedCropParams tall_p = draw_resized_crop(3, 100, 1, gen);
  auto all = [](const torch::Tensor& t, int64_t v) {
    return torch::equal(t, torch::full({3}, v, torch::kLong));
  };
  EXPECT_TRUE(all(wide_p.top, 0) && all(wide_p.height, 1) && all(wide_p.width, 1) &&
              all(wide_p.left, 49));
  EXPECT_TRUE(all(tall_p.left, 0) && all(tall_p.width, 1) && all(tall_p.height, 1) &&
              all(tall_p.top, 49));
}

ResizedCropParams box(int64_t top, int64_t left, int64_t h, int64_t w, bool flip) {
  auto one = [](int64_t v) { return torch::full({1}, v, torch::kLong); };
  return {one(top), one(left), one(h), one(w), torch::full({1}, flip, torch::kBool)};
}

TEST(RandomResizedCrop, HandExamples) {
  auto gen = keyed_generator(2, Stream::kAugment, {0});
  auto img = torch::randint(0, 256, {1, 3, 7, 7}, gen, torch::kLong).to(torch::kUInt8);
  EXPECT_TRUE(torch::equal(apply_resized_crop(img, box(0, 0, 7, 7, false), 7), img));
  EXPECT_TRUE(
      torch::equal(apply_resized_crop(img, box(0, 0, 7, 7, true), 7), torch::flip(img, {3})));
  // A 2 x 2 box doubled: bilinear at positions -0.25, 0.25, 0.75, 1.25 clamped to the box; the
  // 999s around it are never read.
  auto f = torch::full({1, 1, 4, 4}, 999.0, torch::kFloat);
  f[0][0][1][1] = 0.0;
  f[0][0][1][2] = 100.0;
  f[0][0][2][1] = 200.0;
  f[0][0][2][2] = 300.0;
  auto expected = torch::tensor(std::vector<float>{0, 25, 75, 100, 50, 75, 125, 150, 150, 175, 225,
                                                   250, 200, 225, 275, 300})
                      .view({1, 1, 4, 4});
  EXPECT_TRUE(torch::allclose(apply_resized_crop(f, box(1, 1, 2, 2, false), 4), expected, 0, 1e-3));
  EXPECT_TRUE(torch::allclose(apply_resized_crop_reference(f, box(1, 1, 2, 2, false), 4), expected,
                              0, 1e-3));
  EXPECT_TRUE(torch::allclose(apply_resized_crop(f, box(1, 1, 2, 2, true), 4),
                              torch::flip(expected, {3}), 0, 1e-3));
}

TEST(RandomResizedCrop, BlockEqualsPerImageOracle) {
  auto gen = keyed_generator(3, Stream::kAugment, {4});
  auto img = torch::randint(0, 256, {9, 3, 20, 16}, gen, torch::kLong).to(torch::kUInt8);
  ResizedCropParams p = draw_resized_crop(9, 20, 16, gen);
  for (int64_t out : {12, 24, 5}) {
    auto fast = apply_resized_crop(img, p, out);
    auto ref = apply_resized_crop_reference(img, p, out);
    ASSERT_EQ(fast.sizes(), torch::IntArrayRef({9, 3, out, out}));
    EXPECT_EQ(fast.scalar_type(), torch::kUInt8);
    // Equal up to float rounding of the sample positions: a value on a .5 may round either way.
    auto diff = (fast.to(torch::kLong) - ref.to(torch::kLong)).abs();
    EXPECT_LE(diff.max().item<int64_t>(), 1) << out;
    EXPECT_LT(diff.to(torch::kDouble).mean().item<double>(), 0.05) << out;
    auto fast_f = apply_resized_crop(img.to(torch::kFloat), p, out);
    EXPECT_EQ(fast_f.scalar_type(), torch::kFloat);
    EXPECT_TRUE(torch::allclose(fast_f, apply_resized_crop_reference(img.to(torch::kFloat), p, out),
                                0, 1e-2))
        << out;
  }
}

TEST(RandomResizedCrop, CudaMatchesCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  auto gen = keyed_generator(3, Stream::kAugment, {5});
  auto img = torch::randint(0, 256, {16, 3, 40, 40}, gen, torch::kLong).to(torch::kUInt8);
  ResizedCropParams p = draw_resized_crop(16, 40, 40, gen);
  auto gpu = apply_resized_crop(img.to(torch::kCUDA), p, 32);
  EXPECT_TRUE(gpu.is_cuda());
  auto diff = (gpu.cpu().to(torch::kLong) - apply_resized_crop(img, p, 32).to(torch::kLong)).abs();
  EXPECT_LE(diff.max().item<int64_t>(), 1);
}

// ---- BlockSource -------------------------------------------------------------------------------

Dataset random_dataset(int64_t n, int64_t side) {
  auto gen = keyed_generator(1, Stream::kAugment, {77});
  Dataset d;
  d.name = "random";
  d.train.images = torch::randint(0, 256, {n, 3, side, side}, gen, torch::kLong).to(torch::kUInt8);
  d.train.labels = torch::arange(n, torch::kLong).remainder(3);
  d.test = d.train;
  d.num_classes = 3;
  d.mean = {0.5, 0.4, 0.3};
  d.std = {0.25, 0.2, 0.3};
  return d;
}

TEST(BlockSourceResizedCrop, ShapeKeyingAndSlices) {
  Dataset data = random_dataset(10, 16);
  BlockSourceOptions o;
  o.random_resized_crop = true;
  o.pixels = 8;
  o.seed = 3;
  BlockSource src(data, o);
  torch::Tensor samples = torch::tensor(std::vector<int64_t>{4, 0, 9, 9, 2, 7});
  Block b = src.block(samples, 2, 1);
  ASSERT_EQ(b.inputs.sizes(), torch::IntArrayRef({6, 3, 8, 8}));
  EXPECT_EQ(b.inputs.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::equal(b.labels, data.train.labels.index_select(0, samples)));
  EXPECT_TRUE(torch::equal(b.inputs, src.block(samples, 2, 1).inputs));
  EXPECT_FALSE(torch::equal(b.inputs, src.block(samples, 3, 1).inputs));
  EXPECT_FALSE(torch::equal(b.inputs, src.block(samples, 2, 1, 0, -1, 1).inputs));
  // A rank's slice [2, 5) of the block gets the same crops as in the whole block.
  Block part = src.block(samples.slice(0, 2, 5), 2, 1, /*offset=*/2, /*block_size=*/6);
  EXPECT_TRUE(torch::equal(part.inputs, b.inputs.slice(0, 2, 5)));
  // The same images as drawing and applying by hand.
  auto gen = keyed_generator(3, Stream::kAugment, {2, 1});
  auto x = apply_resized_crop(data.train.images.index_select(0, samples),
                              draw_resized_crop(6, 16, 16, gen), 8);
  EXPECT_TRUE(torch::equal(b.inputs, normalize(x, data)));

  // pixels 0: the dataset's model input size.
  data.pixels = 12;
  o.pixels = 0;
  EXPECT_EQ(BlockSource(data, o).block(samples, 0, 0).inputs.size(2), 12);

  o.fixed_rounds = 2;
  expect_user_error([&] { (void)BlockSource(data, o); },
                    {"data.fixed_augmentations", "data.augmentations=random-resized-crop"});
}

TEST(BlockSourceResizedCrop, CropFlipPathUnchanged) {
  Dataset data = random_dataset(10, 16);
  BlockSourceOptions o;
  o.padding = 2;
  o.seed = 9;
  torch::Tensor samples = torch::arange(0, 10, 2);
  Block b = BlockSource(data, o).block(samples, 4, 7);
  auto gen = keyed_generator(9, Stream::kAugment, {4, 7});
  auto x =
      apply_crop_flip(data.train.images.index_select(0, samples), draw_crop_flip(5, 2, gen), 2);
  EXPECT_TRUE(torch::equal(b.inputs, normalize(x, data)));
  EXPECT_EQ(b.inputs.size(2), 16);
}

}  // namespace
}  // namespace fullbatch
