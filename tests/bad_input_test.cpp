// Every bad input the CLI is known to meet, each with the one-line error (exit code 2) it must
// give and a check that earlier outputs survive it. docs/reliability.md lists the same table.
#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>
#include <functional>
#include <map>

#include "cli_util.h"
#include "fullbatch/run/checkpoint.h"
#include "fullbatch/common/files.h"
#include "test_util.h"

namespace fullbatch {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

// A synthetic Fashion-MNIST-shaped set ({D}/tiny) keeps every evaluation cheap; the data cases
// point data.path at broken copies of the real files instead (a later override wins).
const std::vector<std::string> kTiny = {"data.name=fashion-mnist",
                                        "data.path={D}/tiny",
                                        "data.batch_size=64",
                                        "model.name=simplecnn",
                                        "model.width=4",
                                        "hyp.steps=4",
                                        "hyp.warmup=1",
                                        "impl.threads=2",
                                        "impl.progress=false",
                                        "impl.device=cpu",
                                        "impl.validate_every_nth_step=4",
                                        "impl.checkpoint.save_every_nth_step=1",
                                        "impl.checkpoint.keep=10"};

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += " '" + x + "'";
  return s;
}

// Every file under `dir` with its bytes: "earlier outputs intact" means this does not change.
std::map<std::string, std::string> snapshot(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) files[e.path().string()] = testing::read_text(e.path().string());
  return files;
}

struct Case {
  std::string name;
  std::string command;   // after the fullbatch binary; {T} = tiny config overrides
  std::string expected;  // substring of the one-line message
  std::string shell_prefix = "";
};

class BadInput : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!testing::have_fashion_mnist()) return;
    dir_ = new TempDir();
    fs::create_directories(*dir_ / "tiny");
    testing::write_tiny_idx_dataset(*dir_ / "tiny", 256, 64);
    // An earlier run that crashed after step 2: checkpoints 1 and 2, metrics up to step 3.
    std::string out;
    ASSERT_EQ(testing::run_command(expand(cli() + " train --quiet --out {D}/earlier {T}"), &out), 0)
        << out;
    for (int s : {3, 4}) fs::remove(RunDir(*dir_ / "earlier").checkpoint_file(s));
    fs::remove(*dir_ / "earlier/model.pt");
    fs::remove(*dir_ / "earlier/summary.json");
    // Data folders with broken copies of Fashion-MNIST.
    const std::string fm = testing::fashion_mnist_dir();
    for (const char* name : {"truncated", "corrupt", "badmagic", "empty"})
      fs::create_directories(*dir_ / name);
    for (const char* d : {"truncated", "corrupt", "badmagic"})
      for (const auto& e : fs::directory_iterator(fm))
        fs::copy(e.path(), *dir_ / (std::string(d) + "/" + e.path().filename().string()));
    const std::string gz = "train-images-idx3-ubyte.gz";
    fs::resize_file(*dir_ / ("truncated/" + gz), fs::file_size(*dir_ / ("truncated/" + gz)) / 2);
    std::string bytes = testing::read_text(*dir_ / ("corrupt/" + gz));
    for (size_t i = 100; i < 400; ++i) bytes[i] = static_cast<char>(bytes[i] ^ 0x33);
    write_file_atomic(*dir_ / ("corrupt/" + gz), bytes);
    // Plain files win over .gz: a label file with an image file's magic.
    fs::remove(*dir_ / "badmagic/train-labels-idx1-ubyte.gz");
    write_file_atomic(*dir_ / "badmagic/train-labels-idx1-ubyte",
                      std::string("\x00\x00\x08\x03\x00\x00\x00\x01x", 9));
    write_file_atomic(*dir_ / "bad.yaml", "hyp:\n  steps: [1,\n");
    write_file_atomic(*dir_ / "a_file", "x");
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::string cli() { return FULLBATCH_CLI_PATH; }
  static std::string expand(std::string cmd) {
    for (size_t at; (at = cmd.find("{T}")) != std::string::npos;) cmd.replace(at, 3, join(kTiny));
    for (size_t at; (at = cmd.find("{D}")) != std::string::npos;) cmd.replace(at, 3, dir_->path());
    return cmd;
  }

  void expect_one_line_error(const Case& c) {
    SCOPED_TRACE(c.name);
    const std::string cmd = expand(c.command);
    const auto before = snapshot(*dir_ / "earlier");
    std::string out;
    const int rc = testing::run_command(c.shell_prefix + cli() + " " + cmd, &out);
    EXPECT_EQ(rc, 2) << out;
    ASSERT_FALSE(out.empty());
    EXPECT_EQ(out.find('\n'), out.size() - 1) << "not one line: " << out;
    EXPECT_EQ(out.rfind("fullbatch: error: ", 0), 0u) << out;
    EXPECT_NE(out.find(c.expected), std::string::npos) << out;
    EXPECT_EQ(snapshot(*dir_ / "earlier"), before) << "the earlier run was changed";
    std::printf("[bad input] %-28s -> %s", c.name.c_str(), out.c_str());
  }

  static TempDir* dir_;
};
TempDir* BadInput::dir_ = nullptr;

TEST_F(BadInput, EachGivesItsOneLineMessageAndLeavesEarlierOutputsIntact) {
  FULLBATCH_REQUIRE_FASHION_MNIST();
  const std::vector<Case> cases = {
      {"missing data folder", "train --out {D}/o1 {T} data.path={D}/nowhere",
       "data.path: {D}/nowhere is not a directory"},
      {"missing data file", "train --out {D}/o2 {T} data.path={D}/empty",
       "data file missing in {D}/empty: looked for train-"},
      {"truncated data file", "train --out {D}/o3 {T} data.path={D}/truncated",
       "train-images-idx3-ubyte.gz: gzip data is corrupt or truncated"},
      {"corrupt data file", "train --out {D}/o4 {T} data.path={D}/corrupt",
       "data file {D}/corrupt/train-images-idx3-ubyte.gz"},
      {"wrong magic in a data file", "train --out {D}/o5 {T} data.path={D}/badmagic",
       "train-labels-idx1-ubyte: bad IDX magic 2051, expected 2049"},
      {"wrong dataset layout", "train --out {D}/o6 {T} data.name=cifar10 data.path={D}/corrupt",
       "data file missing in {D}/corrupt: looked for data_batch_1.bin"},
      {"unknown config key", "train --out {D}/o7 {T} hyp.lr=0.1",
       "unknown config key 'hyp.lr' (command line); did you mean 'hyp.optim.lr'?"},
      {"wrong type", "train --out {D}/o8 {T} hyp.steps=ten",
       "config key 'hyp.steps' (command line): bad value 'ten': expected an integer"},
      {"negative learning rate", "train --out {D}/o9 {T} hyp.optim.lr=-0.1",
       "config key 'hyp.optim.lr' (command line): bad value '-0.1': must be >= 0"},
      {"block size 0", "train --out {D}/o10 {T} data.batch_size=0",
       "config key 'data.batch_size' (command line): bad value '0': must be >= 1"},
      {"more blocks than images", "train --out {D}/o11 {T} data.batch_size=512",
       "config key 'data.batch_size': a block of 512 images (x 1 ranks) is larger than the 256"},
      {"malformed override", "train --out {D}/o12 {T} steps", "bad override 'steps'"},
      {"invalid YAML file", "train --out {D}/o13 --config {D}/bad.yaml {T}",
       "config {D}/bad.yaml: invalid YAML at line"},
      {"missing config file", "train --out {D}/o14 --config {D}/none.yaml {T}",
       "config file {D}/none.yaml: cannot be read"},
      {"unwritable output directory", "train --out {D}/a_file/run {T}",
       "output directory {D}/a_file/run: cannot be created"},
      {"output holds a run", "train --out {D}/earlier {T}",
       "output directory {D}/earlier already holds a run"},
      {"resume: no such directory", "train --resume {D}/missing",
       "cannot resume {D}/missing: no such run directory"},
      {"resume: not a run", "train --resume {D}/empty",
       "cannot resume {D}/empty: not a run directory (no config.yaml)"},
      {"resume: result key changed", "train --resume {D}/earlier hyp.optim.lr=0.2",
       "cannot resume {D}/earlier: config key 'hyp.optim.lr' is '0.1' in the run but '0.2' now"},
      {"resume: with a preset", "train --resume {D}/earlier --preset fb-baseline",
       "--resume takes the config from {D}/earlier/config.yaml"},
      {"resume: bad override", "train --resume {D}/earlier hyp.nesterov=1",
       "unknown config key 'hyp.nesterov'"},
      {"diverged loss", "train --out {D}/o15 {T} hyp.optim.lr=1e30 hyp.warmup=3",
       "training diverged: non-finite train loss at step 3"},
  };
  for (Case c : cases) {
    for (size_t at; (at = c.expected.find("{D}")) != std::string::npos;)
      c.expected.replace(at, 3, dir_->path());
    expect_one_line_error(c);
  }
  // A diverged run keeps its last good checkpoint (steps 1 and 2 were finite) and says so.
  EXPECT_EQ(list_checkpoints(*dir_ / "o15").size(), 2u);
  EXPECT_EQ(read_checkpoint(RunDir(*dir_ / "o15").checkpoint_file(2)).step, 2);
  EXPECT_NE(testing::read_text(*dir_ / "o15/summary.json").find("step_000002.ckpt"),
            std::string::npos);
}

TEST_F(BadInput, FullDiskWhileCheckpointingKeepsThePreviousCheckpoint) {
  FULLBATCH_REQUIRE_FASHION_MNIST();
  fs::copy(*dir_ / "earlier", *dir_ / "full", fs::copy_options::recursive);
  const auto ckpt_size = fs::file_size(RunDir(*dir_ / "full").checkpoint_file(2));
  // A file-size limit below one checkpoint (but above the text files) makes the next checkpoint
  // write fail with EFBIG, as a full disk would with ENOSPC; SIGXFSZ is ignored so write() fails.
  const std::string limit = std::to_string(ckpt_size / 2);
  Case c{"full disk during checkpoint", "train --quiet --resume {D}/full",
         "cannot write {D}/full/checkpoints/step_000003.ckpt: File too large; older checkpoints "
         "are kept",
         "trap '' XFSZ; prlimit --fsize=" + limit + " "};
  c.expected.replace(c.expected.find("{D}"), 3, dir_->path());
  expect_one_line_error(c);
  EXPECT_EQ(read_checkpoint(RunDir(*dir_ / "full").checkpoint_file(2)).step, 2);
  EXPECT_FALSE(fs::exists(RunDir(*dir_ / "full").checkpoint_file(3)));
  // With room again the run finishes from that checkpoint.
  std::string out;
  EXPECT_EQ(testing::run_command(cli() + " train --quiet --resume " + (*dir_ / "full"), &out), 0)
      << out;
}

}  // namespace
}  // namespace fullbatch
