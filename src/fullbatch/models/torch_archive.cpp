#include "fullbatch/models/torch_archive.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/torch.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <tuple>
#include <utility>

#include "fullbatch/common/error.h"
#include "fullbatch/common/strings.h"

namespace fullbatch {
namespace {

// torch.save has written a zip archive since PyTorch 1.6; say plainly what anything else is.
void check_container(const std::string& path, const std::string& origin) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw UserError(origin + ": no such file");
  std::ifstream in(path, std::ios::binary);
  char head[4] = {0, 0, 0, 0};
  in.read(head, sizeof(head));
  if (in.gcount() == 4 && std::memcmp(head, "PK\x03\x04", 4) == 0) return;
  if (in.gcount() >= 1 && static_cast<unsigned char>(head[0]) == 0x80)
    throw UserError(origin +
                    ": a bare pickle, not the zip archive torch.save writes since "
                    "PyTorch 1.6 (a legacy torch.save file? load it in Python and "
                    "torch.save it again)");
  throw UserError(origin +
                  ": not a PyTorch checkpoint (torch.save writes a zip archive; this "
                  "file does not start like one)");
}

// PyTorch 2.x records the byte order; tensors are read as this (little-endian) machine lays
// them out.
void check_byte_order(caffe2::serialize::PyTorchStreamReader& reader, const std::string& origin) {
  if (!reader.hasRecord("byteorder")) return;
  at::DataPtr data;
  size_t size = 0;
  std::tie(data, size) = reader.getRecord("byteorder");
  const std::string order(static_cast<const char*>(data.get()), size);
  if (order.rfind("little", 0) != 0)
    throw UserError(origin + ": written on a " + printable(order) +
                    "-endian machine; only little-endian checkpoints are read");
}

}  // namespace

TorchArchive::TorchArchive(const std::string& path, std::string origin)
    : origin_(std::move(origin)) {
  check_container(path, origin_);
  reader_ = std::make_unique<caffe2::serialize::PyTorchStreamReader>(path);
  if (!reader_->hasRecord("data.pkl"))
    throw UserError(origin_ + ": a zip archive without data.pkl, so not written by torch.save");
  check_byte_order(*reader_, origin_);
}

TorchArchive::~TorchArchive() = default;

pickle::ValuePtr TorchArchive::read_pickle() {
  at::DataPtr data;
  size_t size = 0;
  std::tie(data, size) = reader_->getRecord("data.pkl");
  return pickle::unpickle(static_cast<const char*>(data.get()), size, origin_);
}

torch::Tensor TorchArchive::tensor(const std::string& name, const pickle::Value& value) {
  if (value.kind != pickle::Value::Kind::kTensor)
    throw UserError(origin_ + ": entry '" + printable(name) + "' holds " + printable(value.text) +
                    "(...), not a tensor this reader can build");
  auto outside = [&](int64_t elements) {
    return UserError(origin_ + ": entry '" + printable(name) + "' lies outside its storage (" +
                     std::to_string(elements) + " elements)");
  };
  bool empty = false;
  for (int64_t s : value.sizes) {
    if (s < 0) throw outside(0);
    empty = empty || s == 0;
  }
  for (int64_t s : value.strides)
    if (s < 0) throw outside(0);
  if (value.integer < 0) throw outside(0);
  if (empty) return torch::empty(value.sizes, torch::TensorOptions().dtype(value.dtype));

  // The view must lie inside the storage before as_strided may look at it.
  const torch::Tensor& flat = storage(name, value.text, value.dtype);
  const int64_t n = flat.numel();
  if (value.integer >= n) throw outside(n);
  int64_t room = n - 1 - value.integer;  // how far past its first element the view may reach
  for (size_t i = 0; i < value.sizes.size(); ++i) {
    const int64_t reach = value.sizes[i] - 1;
    if (reach == 0 || value.strides[i] == 0) continue;
    if (reach > room / value.strides[i]) throw outside(n);
    room -= reach * value.strides[i];
  }
  return flat.as_strided(value.sizes, value.strides, value.integer)
      .clone(at::MemoryFormat::Contiguous);
}

const torch::Tensor& TorchArchive::storage(const std::string& name, const std::string& key,
                                           c10::ScalarType dtype) {
  const std::string cache_key = key + "/" + c10::toString(dtype);
  auto it = cache_.find(cache_key);
  if (it != cache_.end()) return it->second;
  const std::string record = "data/" + key;
  if (!reader_->hasRecord(record))
    throw UserError(origin_ + ": entry '" + printable(name) + "' refers to record " +
                    printable(record) + ", which the archive lacks");
  at::DataPtr data;
  size_t bytes = 0;
  std::tie(data, bytes) = reader_->getRecord(record);
  const size_t element = c10::elementSize(dtype);
  const auto count = static_cast<int64_t>(bytes / element);
  // Bool bytes other than 0 and 1 are not valid bools: read them as bytes and compare.
  const c10::ScalarType raw_dtype = dtype == c10::ScalarType::Bool ? c10::ScalarType::Byte : dtype;
  torch::Tensor flat = torch::empty({count}, torch::TensorOptions().dtype(raw_dtype));
  if (count > 0) std::memcpy(flat.data_ptr(), data.get(), static_cast<size_t>(count) * element);
  if (dtype == c10::ScalarType::Bool) flat = flat.ne(0);
  return cache_.emplace(cache_key, std::move(flat)).first->second;
}

}  // namespace fullbatch
