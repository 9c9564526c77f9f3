#pragma once
// Files that must never be half-written: results, configs and checkpoints are written to a
// temporary file, synced and renamed, so a crash or a full disk leaves the previous version.
#include <string>

namespace fullbatch {

// Writes `bytes` to `path` atomically: a temporary file beside it, fsync, rename, fsync of the
// folder. A failure (full disk, no permission) throws UserError naming the path and leaves any
// previous file at `path` untouched.
void write_file_atomic(const std::string& path, const std::string& bytes);

std::string read_file(const std::string& path);  // throws UserError naming the path

// Creates the folder (and parents); throws UserError when it cannot be created or written.
void ensure_writable_dir(const std::string& path);

}  // namespace fullbatch
