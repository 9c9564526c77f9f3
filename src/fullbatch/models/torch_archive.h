#pragma once
// The zip archive torch.save has written since PyTorch 1.6, read without Python: the container
// checked (a legacy bare pickle, another file type and a big-endian archive are one-line
// UserErrors), data.pkl run through pickle.h, and tensors built from the storage records the
// pickle's tensor values name, each record read once and every view checked to lie inside it.
#include <torch/types.h>

#include <map>
#include <memory>
#include <string>

#include "fullbatch/models/pickle.h"

namespace caffe2::serialize {
class PyTorchStreamReader;
}

namespace fullbatch {

class TorchArchive {
 public:
  // Opens `path`; `origin` starts every error message ("reference checkpoint <path>"). Throws
  // UserError when the file is missing, not a zip archive, has no data.pkl or was written on a
  // big-endian machine; a damaged zip surfaces as the zip reader's c10::Error.
  TorchArchive(const std::string& path, std::string origin);
  ~TorchArchive();  // out of line: the reader's type is complete only in torch_archive.cpp

  // data.pkl's value.
  pickle::ValuePtr read_pickle();

  // The tensor `value` (a pickle kTensor) describes, contiguous and owning its memory. Throws
  // UserError naming the entry `name` when the value is not a tensor this reader can build, its
  // record is missing or its view reaches outside the storage.
  torch::Tensor tensor(const std::string& name, const pickle::Value& value);

 private:
  const torch::Tensor& storage(const std::string& name, const std::string& key,
                               c10::ScalarType dtype);

  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> reader_;
  std::string origin_;
  std::map<std::string, torch::Tensor> cache_;  // record/dtype -> its elements
};

}  // namespace fullbatch
