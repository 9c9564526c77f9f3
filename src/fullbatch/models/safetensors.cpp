#include "fullbatch/models/safetensors.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>
#include <tuple>
#include <vector>

#include "fullbatch/common/error.h"
#include "fullbatch/common/files.h"
#include "fullbatch/models/weights.h"

// Tensor bytes are copied as they lie in memory; the format is little-endian.
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.cpp copies tensor bytes as they are in memory: it needs a little-endian host"
#endif

namespace fullbatch {
namespace {

using Json = nlohmann::json;

struct Dtype {
  c10::ScalarType type;
  const char* name;
  uint64_t size;  // bytes per element
};

constexpr Dtype kDtypes[] = {
    {c10::ScalarType::Double, "F64", 8}, {c10::ScalarType::Float, "F32", 4},
    {c10::ScalarType::Half, "F16", 2},   {c10::ScalarType::BFloat16, "BF16", 2},
    {c10::ScalarType::Long, "I64", 8},   {c10::ScalarType::Int, "I32", 4},
    {c10::ScalarType::Short, "I16", 2},  {c10::ScalarType::Char, "I8", 1},
    {c10::ScalarType::Byte, "U8", 1},    {c10::ScalarType::Bool, "BOOL", 1},
};
constexpr const char* kSupported = "F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL";

// The reference implementation refuses headers over 100 MB.
constexpr uint64_t kMaxHeaderBytes = 100000000;
// Bound on the product of a shape's non-zero dimensions, so that no size computation overflows,
// not even for an empty tensor whose other dimensions are huge.
constexpr uint64_t kMaxElements = uint64_t{1} << 56;

const Dtype* dtype_of(c10::ScalarType type) {
  for (const Dtype& d : kDtypes)
    if (d.type == type) return &d;
  return nullptr;
}

const Dtype* dtype_named(const std::string& name) {
  for (const Dtype& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}

// A name as JSON text: quoted, control characters escaped, so that a message stays one line.
std::string quoted(const std::string& text) {
  return Json(text).dump(-1, ' ', false, Json::error_handler_t::replace);
}

// A JSON value of the file for a message: one line, cut short.
std::string excerpt(const Json& value) {
  std::string text = value.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return text;
}

std::string range_text(uint64_t begin, uint64_t end) {
  return "[" + std::to_string(begin) + ", " + std::to_string(end) + ")";
}

void append_u64_le(std::string& out, uint64_t value) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

uint64_t read_u64_le(const char* p) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | static_cast<unsigned char>(p[i]);
  return value;
}

[[noreturn]] void fail(const std::string& origin, const std::string& why) {
  throw UserError(origin + ": " + why);
}

// One tensor's header entry, checked against itself and against the data section's size.
struct Entry {
  std::string name;
  const Dtype* dtype = nullptr;
  std::vector<int64_t> shape;
  uint64_t begin = 0;
  uint64_t end = 0;
};

Entry parse_entry(const std::string& name, const Json& value, uint64_t data_size,
                  const std::string& origin) {
  const std::string what = "tensor " + quoted(name);
  if (!value.is_object()) fail(origin, what + ": header entry is not a JSON object");
  Entry e;
  e.name = name;

  const auto dtype = value.find("dtype");
  if (dtype == value.end() || !dtype->is_string()) fail(origin, what + ": no \"dtype\" string");
  e.dtype = dtype_named(dtype->get<std::string>());
  if (e.dtype == nullptr)
    fail(origin, what + ": dtype " + quoted(dtype->get<std::string>()) +
                     " is not supported (supported: " + kSupported + ")");

  const auto shape = value.find("shape");
  if (shape == value.end() || !shape->is_array()) fail(origin, what + ": no \"shape\" array");
  uint64_t elements = 1;  // the product of the non-zero dimensions
  bool empty = false;
  for (const Json& d : *shape) {
    if (!d.is_number_unsigned())
      fail(origin, what + ": shape " + excerpt(*shape) + " holds something other than a non-negative integer");
    const uint64_t size = d.get<uint64_t>();
    if (size == 0) {
      empty = true;
    } else if (size > kMaxElements / elements) {
      fail(origin, what + ": shape " + excerpt(*shape) + " is too large");
    } else {
      elements *= size;
    }
    e.shape.push_back(static_cast<int64_t>(size));
  }

  const auto offsets = value.find("data_offsets");
  if (offsets == value.end() || !offsets->is_array() || offsets->size() != 2 ||
      !offsets->front().is_number_unsigned() || !offsets->back().is_number_unsigned())
    fail(origin, what + ": \"data_offsets\" is not a pair of non-negative integers");
  e.begin = offsets->front().get<uint64_t>();
  e.end = offsets->back().get<uint64_t>();
  if (e.begin > e.end)
    fail(origin, what + ": data_offsets " + excerpt(*offsets) + " end before they begin");
  if (e.end > data_size)
    fail(origin, what + ": data_offsets " + excerpt(*offsets) + " run past the end of the data section (" +
                     std::to_string(data_size) + " bytes; truncated file?)");
  const uint64_t needed = (empty ? 0 : elements) * e.dtype->size;  // <= 2^59: no overflow
  if (e.end - e.begin != needed)
    fail(origin, what + ": data_offsets " + excerpt(*offsets) + " hold " + std::to_string(e.end - e.begin) +
                     " bytes, shape " + excerpt(*shape) + " of " + e.dtype->name + " needs " +
                     std::to_string(needed));
  return e;
}

// The byte ranges must tile the data section: no overlap, no gap, nothing after the last one.
void check_layout(const std::vector<Entry>& entries, uint64_t data_size, const std::string& origin) {
  std::vector<const Entry*> order;
  order.reserve(entries.size());
  for (const Entry& e : entries) order.push_back(&e);
  std::sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) {
    return std::tie(a->begin, a->end) < std::tie(b->begin, b->end);
  });
  uint64_t covered = 0;
  const Entry* previous = nullptr;
  for (const Entry* e : order) {
    if (e->begin < covered)
      fail(origin, "tensors " + quoted(previous->name) + " and " + quoted(e->name) + " overlap (bytes " +
                       range_text(previous->begin, previous->end) + " and " + range_text(e->begin, e->end) +
                       " of the data section)");
    if (e->begin > covered)
      fail(origin, "bytes " + range_text(covered, e->begin) + " of the data section belong to no tensor");
    covered = e->end;
    previous = e;
  }
  if (covered != data_size)
    fail(origin, std::to_string(data_size - covered) + " bytes after the last tensor belong to no tensor");
}

torch::Tensor make_tensor(const Entry& e, const char* data, const std::string& origin) {
  torch::Tensor t = torch::empty(e.shape, torch::TensorOptions().dtype(e.dtype->type));
  const uint64_t n = e.end - e.begin;
  if (n == 0) return t;
  const char* src = data + e.begin;
  if (e.dtype->type == c10::ScalarType::Bool)
    for (uint64_t i = 0; i < n; ++i)
      if (static_cast<unsigned char>(src[i]) > 1)
        fail(origin, "tensor " + quoted(e.name) + ": BOOL element " + std::to_string(i) + " is byte " +
                         std::to_string(static_cast<unsigned char>(src[i])) + ", not 0 or 1");
  std::memcpy(t.data_ptr(), src, n);
  return t;
}

}  // namespace

std::string encode_safetensors(const std::map<std::string, torch::Tensor>& state,
                               const std::map<std::string, std::string>& metadata) {
  Json header = Json::object();
  if (!metadata.empty()) {
    Json meta = Json::object();
    for (const auto& [key, value] : metadata) meta[key] = value;
    header["__metadata__"] = std::move(meta);
  }
  // std::map and the JSON object both order names bytewise: the data follows the header's keys.
  std::vector<torch::Tensor> tensors;
  tensors.reserve(state.size());
  uint64_t offset = 0;
  for (const auto& [name, tensor] : state) {
    const std::string what = "tensor " + quoted(name);
    if (name == "__metadata__") throw UserError(what + ": the name is reserved by the safetensors format");
    if (!tensor.defined()) throw UserError(what + " is undefined");
    if (tensor.layout() != torch::kStrided)
      throw UserError(what + ": only dense tensors can be written as safetensors");
    const Dtype* dtype = dtype_of(tensor.scalar_type());
    if (dtype == nullptr)
      throw UserError(what + " has dtype " + c10::toString(tensor.scalar_type()) +
                      ", which safetensors export does not support (supported: " + kSupported + ")");
    torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) * dtype->size;
    Json entry = Json::object();
    entry["dtype"] = dtype->name;
    entry["shape"] = t.sizes().vec();
    entry["data_offsets"] = Json::array({offset, offset + bytes});
    header[name] = std::move(entry);
    offset += bytes;
    tensors.push_back(std::move(t));
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const Json::exception&) {
    throw UserError("cannot write safetensors: a tensor name or metadata entry is not valid UTF-8");
  }
  text.append((8 - text.size() % 8) % 8, ' ');  // the data section starts 8-byte aligned
  std::string out;
  out.reserve(8 + text.size() + offset);
  append_u64_le(out, text.size());
  out += text;
  for (const torch::Tensor& t : tensors) {
    const size_t n = static_cast<size_t>(t.numel()) * static_cast<size_t>(t.element_size());
    if (n > 0) out.append(static_cast<const char*>(t.data_ptr()), n);
  }
  return out;
}

std::map<std::string, torch::Tensor> decode_safetensors(const std::string& bytes,
                                                        const std::string& origin,
                                                        std::map<std::string, std::string>* metadata) {
  if (bytes.size() < 8)
    fail(origin, "not a safetensors file: " + std::to_string(bytes.size()) +
                     " bytes, fewer than the 8-byte header length");
  const uint64_t header_size = read_u64_le(bytes.data());
  const uint64_t rest = bytes.size() - 8;
  if (header_size > rest)
    fail(origin, "header length " + std::to_string(header_size) + " runs past the end of the file (" +
                     std::to_string(rest) + " bytes follow it; truncated, or not a safetensors file)");
  if (header_size > kMaxHeaderBytes)
    fail(origin, "header length " + std::to_string(header_size) + " exceeds the format's limit of " +
                     std::to_string(kMaxHeaderBytes) + " bytes");
  const char* text = bytes.data() + 8;
  if (header_size < 2 || text[0] != '{')
    fail(origin, "header does not start with '{' (not a safetensors file?)");
  Json header;
  try {
    header = Json::parse(text, text + header_size);
  } catch (const Json::parse_error& e) {
    fail(origin, "header is not valid JSON (error at byte " + std::to_string(e.byte) + " of " +
                     std::to_string(header_size) + ")");
  } catch (const Json::exception&) {
    fail(origin, "header is not valid JSON");
  }
  if (!header.is_object()) fail(origin, "header is not a JSON object");

  const uint64_t data_size = rest - header_size;
  std::vector<Entry> entries;
  entries.reserve(header.size());
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() != "__metadata__") {
      entries.push_back(parse_entry(it.key(), it.value(), data_size, origin));
      continue;
    }
    const Json& meta = it.value();
    if (meta.is_null()) continue;
    if (!meta.is_object()) fail(origin, "\"__metadata__\" is not a map of strings");
    for (auto m = meta.begin(); m != meta.end(); ++m) {
      if (!m.value().is_string()) fail(origin, "metadata entry " + quoted(m.key()) + " is not a string");
      if (metadata != nullptr) (*metadata)[m.key()] = m.value().get<std::string>();
    }
  }
  check_layout(entries, data_size, origin);

  const char* data = text + header_size;
  std::map<std::string, torch::Tensor> state;
  for (const Entry& e : entries) state[e.name] = make_tensor(e, data, origin);
  return state;
}

void save_safetensors(const torch::nn::Module& module, const std::string& path,
                      const std::map<std::string, std::string>& metadata) {
  write_file_atomic(path, encode_safetensors(state_dict(module), metadata));
}

std::map<std::string, torch::Tensor> load_safetensors(const std::string& path,
                                                      std::map<std::string, std::string>* metadata) {
  return decode_safetensors(read_file(path), "safetensors file " + path, metadata);
}

}  // namespace fullbatch
