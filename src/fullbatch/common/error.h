#pragma once
// The three kinds of failure fullbatch tells apart: an error in the user's input (UserError: one
// line, exit 2, nothing already written is touched), a run that diverged (DivergenceError, a
// UserError too: exit 2, the run directory keeps its metrics and last good checkpoint and its
// summary says "diverged"; a sweep goes on with its next run), and everything else (a bug,
// exit 3).
#include <stdexcept>
#include <string>

namespace fullbatch {

// An error caused by the user's input (a file, a config key, a value, missing data, a diverged
// loss). Its message is one line that names the input and what is wrong; the CLI prints it and
// exits with code 2. Anything else escaping to the CLI is a bug in fullbatch.
class UserError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The loss or gradient became non-finite: the run stops, keeping everything already written.
class DivergenceError : public UserError {
 public:
  using UserError::UserError;
};

// A component's precondition that its caller guarantees: a bound of a single config key, checked
// once, when the key was set (config/key_table.cpp). Failing it is a bug in the caller, not the
// user's input, so it throws std::invalid_argument (exit 3), not a UserError.
inline void expects(bool condition, const std::string& what) {
  if (!condition) throw std::invalid_argument(what);
}

}  // namespace fullbatch
