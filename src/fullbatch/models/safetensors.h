#pragma once
// Weights in the safetensors format (github.com/huggingface/safetensors), the exchange format of
// `fullbatch export`: an 8-byte little-endian header length N, N bytes of JSON naming each
// tensor's dtype, shape and byte range (plus an optional "__metadata__" map of strings), then the
// tensors' raw little-endian bytes. Any safetensors reader (Python, Rust, JAX, candle) loads it
// without pickle and without running code. The decoder checks every field of a file, so a
// truncated, corrupt or hostile file is a one-line UserError naming it, never a crash.
#include <torch/nn/module.h>

#include <map>
#include <string>

namespace fullbatch {

// The file's bytes: header padded with spaces so the data section starts 8-byte aligned (as the
// reference implementation writes it), tensors laid out in the order of their names (the
// header's keys, sorted), each as a contiguous CPU copy. "__metadata__" is written only when
// `metadata` is not empty. Throws UserError naming the tensor for a dtype safetensors export does
// not support (supported: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL) or a non-dense tensor.
std::string encode_safetensors(const std::map<std::string, torch::Tensor>& state,
                               const std::map<std::string, std::string>& metadata = {});

// Parses and validates a safetensors file: header length within the file, JSON valid, every
// entry's dtype known, shape and byte range consistent, ranges covering the data section exactly
// once (no overlap, no gap, nothing after the last tensor), BOOL bytes 0 or 1. Every problem is
// a one-line UserError starting with `origin`. `metadata`, when given, receives "__metadata__".
std::map<std::string, torch::Tensor> decode_safetensors(
    const std::string& bytes, const std::string& origin,
    std::map<std::string, std::string>* metadata = nullptr);

// The module's parameters and buffers (state_dict in weights.h), written atomically.
void save_safetensors(const torch::nn::Module& module, const std::string& path,
                      const std::map<std::string, std::string>& metadata = {});

// Reads and decodes the file at `path`; errors name "safetensors file <path>".
std::map<std::string, torch::Tensor> load_safetensors(
    const std::string& path, std::map<std::string, std::string>* metadata = nullptr);

}  // namespace fullbatch
