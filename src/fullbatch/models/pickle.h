#pragma once
// A reader of Python pickles (protocols 0-4; torch.save writes protocol 2), as far as finding a
// model's tensors in a torch.save file needs: the values it builds keep containers, strings,
// integers and tensor descriptions, and every other Python object stays opaque instead of
// failing. Used by reference_weights.cpp through torch_archive.h (the zip archive around it).
#include <c10/core/ScalarType.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace fullbatch::pickle {

// What the unpickler builds. Only containers, strings, integers and tensors keep their content;
// every other Python object (optimizer and scheduler instances, collections.Counter, an OmegaConf
// config, sets) becomes an opaque kObject, so a file reads whatever else it carries.
struct Value;
using ValuePtr = std::shared_ptr<Value>;

struct Value {
  enum class Kind {
    kNone,
    kBool,
    kInt,
    kFloat,
    kText,
    kTuple,
    kList,
    kDict,
    kGlobal,
    kStorage,
    kTensor,
    kObject
  };
  Kind kind = Kind::kNone;
  int64_t integer = 0;  // kBool, kInt; kTensor: the storage offset
  std::string text;     // kText (str or bytes); kGlobal: "module.name"; kStorage, kTensor: the
                        // storage's record key; kObject: its class
  std::vector<ValuePtr> items;                         // kTuple, kList; kObject: arguments
  std::vector<std::pair<ValuePtr, ValuePtr>> entries;  // kDict (and dict-like objects)
  c10::ScalarType dtype = c10::ScalarType::Float;      // kStorage, kTensor
  std::vector<int64_t> sizes, strides;                 // kTensor

  Value() = default;
  Value(const Value&) = delete;
  Value& operator=(const Value&) = delete;
  ~Value();
};

// Runs the pickle opcodes in [data, data + size) to its STOP and returns the value left. A
// persistent id ("storage", torch.<Type>Storage, key, ...) becomes a kStorage value naming the
// archive's record; torch._utils._rebuild_tensor_v2 a kTensor describing the view (no bytes are
// read here). Throws a one-line UserError "<origin>: damaged data.pkl at byte N: ..." on a
// malformed pickle.
ValuePtr unpickle(const char* data, size_t size, const std::string& origin);

}  // namespace fullbatch::pickle
