#include "fullbatch/config/config.h"

#include <gtest/gtest.h>

#include "fullbatch/common/error.h"
#include "fullbatch/common/names.h"
#include "fullbatch/common/strings.h"
#include "fullbatch/config/presets.h"
#include "fullbatch/config/resolve.h"
#include "test_util.h"

namespace fullbatch {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

// The string helpers every layer shares (common/strings.h), against values worked out by hand.
TEST(Strings, HelpersAgreeWithHandWorkedValues) {
  EXPECT_EQ(lower("L-BFGS Gradient_Descent"), "l-bfgs gradient_descent");
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);  // k->s, e->i, +g
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(edit_distance("hyp.stepz", "hyp.steps"), 1u);
  EXPECT_EQ(printable("a\nb\x7f"), "a\\x0ab\\x7f");
  EXPECT_EQ(printable(std::string(5, 'x'), 3), "xxx...");
  EXPECT_TRUE(is_printable_utf8("caf\xc3\xa9"));    // U+00E9
  EXPECT_FALSE(is_printable_utf8("caf\xc3"));       // cut short
  EXPECT_FALSE(is_printable_utf8("\xc0\xaf"));      // overlong '/'
  EXPECT_FALSE(is_printable_utf8("\xed\xa0\x80"));  // a surrogate
  EXPECT_FALSE(is_printable_utf8("tab\there"));
}

// data.name takes exactly the datasets the loader knows, and the image-folder keys apply to
// exactly the folder datasets (one list and one test, common/names.h).
TEST(Config, DatasetNamesAreTheLoadersOwn) {
  for (const std::string& name : dataset_names()) {
    Config c;
    apply_override(c, "data.name=" + name);
    apply_override(c, "data.pixels=32");
    if (is_image_folder_dataset(name))
      EXPECT_NO_THROW(validate(c)) << name;
    else
      EXPECT_THROW(validate(c), UserError) << name;
  }
  Config c;
  EXPECT_THROW(apply_override(c, "data.name=svhn"), UserError);
}

TEST(Config, OverridesSetTypedValues) {
  Config c;
  apply_override(c, "hyp.steps=3000");
  apply_override(c, "hyp.optim.lr=0.4");
  apply_override(c, "hyp.optim.nesterov=false");
  apply_override(c, "hyp.scheduler=cosine-4000");
  EXPECT_EQ(c.hyp.steps, 3000);
  EXPECT_DOUBLE_EQ(c.hyp.optim.lr, 0.4);
  EXPECT_FALSE(c.hyp.optim.nesterov);
  EXPECT_EQ(c.hyp.scheduler.kind, ScheduleKind::kCosinePeriod);
  EXPECT_EQ(c.hyp.scheduler.period, 4000);
  EXPECT_EQ(get_key(c, "hyp.scheduler"), "cosine-4000");
}

TEST(Config, UnknownKeySuggestsClosest) {
  Config c;
  std::string msg = error_of([&] { apply_override(c, "hyp.stepz=3"); });
  EXPECT_NE(msg.find("hyp.stepz"), std::string::npos) << msg;
  EXPECT_NE(msg.find("did you mean 'hyp.steps'"), std::string::npos) << msg;
  msg = error_of([&] { apply_override(c, "hyp.lr=3"); });
  EXPECT_NE(msg.find("hyp.optim.lr"), std::string::npos) << msg;
}

TEST(Config, BadValuesNameTheKey) {
  Config c;
  for (const char* bad : {"hyp.optim.lr=-1", "data.batch_size=0", "hyp.steps=ten",
                          "hyp.optim.nesterov=maybe", "hyp.scheduler=cosine-x",
                          "data.augmentations=mixup", "impl.device=tpu", "hyp.optim.momentum=2"}) {
    std::string msg = error_of([&] { apply_override(c, bad); });
    std::string key = std::string(bad).substr(0, std::string(bad).find('='));
    EXPECT_NE(msg.find("'" + key + "'"), std::string::npos) << bad << " -> " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
  EXPECT_NE(error_of([&] { apply_override(c, "novalue"); }).find("key=value"), std::string::npos);
}

TEST(Config, YamlNestedAndDottedKeys) {
  Config c;
  apply_yaml_text(c, "data:\n  size: 512\n  name: fashion-mnist\nhyp.optim.lr: 0.8\nseed: 7\n",
                  "test.yaml");
  EXPECT_EQ(c.data.size, 512);
  EXPECT_EQ(c.data.name, "fashion-mnist");
  EXPECT_DOUBLE_EQ(c.hyp.optim.lr, 0.8);
  EXPECT_EQ(c.seed, 7u);
  std::string msg = error_of([&] { apply_yaml_text(c, "hyp:\n  stepz: 3\n", "x.yaml"); });
  EXPECT_NE(msg.find("hyp.stepz"), std::string::npos);
  EXPECT_NE(msg.find("x.yaml"), std::string::npos);
  msg = error_of([&] { apply_yaml_text(c, "data: [1, 2\n", "broken.yaml"); });
  EXPECT_NE(msg.find("broken.yaml"), std::string::npos);
}

TEST(Config, YamlRoundTripIsExact) {
  Config c = resolve_config("gradreg", {}, {"hyp.grad_reg.eps=0.0123456789", "seed=42"});
  Config d;
  apply_yaml_text(d, to_yaml(c), "round trip");
  EXPECT_EQ(flatten(c), flatten(d));
}

TEST(Config, PresetsFollowThePaperLadder) {
  Config sgd = resolve_config("base_sgd", {}, {});
  EXPECT_TRUE(sgd.hyp.train_stochastic);
  EXPECT_TRUE(sgd.hyp.shuffle);
  EXPECT_EQ(sgd.hyp.steps, 300);
  Config fb2 = resolve_config("fb2", {}, {});
  EXPECT_FALSE(fb2.hyp.train_stochastic);
  EXPECT_EQ(fb2.hyp.steps, 3000);
  EXPECT_EQ(fb2.hyp.warmup, 400);
  EXPECT_DOUBLE_EQ(fb2.hyp.optim.lr, 0.4);
  EXPECT_EQ(get_key(fb2, "hyp.scheduler"), "cosine-4000");
  Config clip = resolve_config("fbclip", {}, {});
  EXPECT_DOUBLE_EQ(clip.hyp.grad_clip, 0.25);
  Config reg = resolve_config("gradreg", {}, {});
  EXPECT_DOUBLE_EQ(reg.hyp.optim.lr, 0.8);
  EXPECT_DOUBLE_EQ(reg.hyp.grad_reg.block_strength, 0.5);
  EXPECT_DOUBLE_EQ(reg.hyp.grad_clip, 0.25);
  // The reference's "FB strong reg.": blocks of 32 images (train.sh), not sub-blocks.
  EXPECT_EQ(resolve_config("gradreg_strong", {}, {}).data.batch_size, 32);
  EXPECT_EQ(resolve_config("gradreg_fixed40x", {}, {}).data.batch_size, 128);
  EXPECT_TRUE(resolve_config("gradreg_shuffle", {}, {}).hyp.shuffle);
  EXPECT_EQ(reg.name, "gradreg");
  EXPECT_NE(error_of([] { find_preset("gradregg"); }).find("gradregg"), std::string::npos);
}

TEST(Config, CrossKeyValidation) {
  EXPECT_NE(error_of([] {
              resolve_config("", {}, {"hyp.train_stochastic=true", "hyp.grad_reg.acc_strength=1"});
            }).find("hyp.grad_reg.acc_strength"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              resolve_config("", {}, {"hyp.sample_with_replacement=true"});
            }).find("hyp.sample_with_replacement"),
            std::string::npos);
}

}  // namespace
}  // namespace fullbatch
