#pragma once
// The typed values of the enum-like config keys. Each key's text is parsed once, in the config
// key table, into one of these; code below the config compares enums, never strings, and the
// text form exists only for config.yaml, messages and `fullbatch keys`.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace fullbatch {

// data.augmentations: random-resized-crop is torchvision's RandomResizedCrop + flip (image folders)
enum class Augmentation { kNone, kCropFlip, kRandomResizedCrop };

// hyp.scheduler: "constant", "cosine-decay", "linear-decay", or "cosine-N" (a cosine with a
// period of N steps after warm-up, as the reference's cosine-4000).
enum class ScheduleKind { kConstant, kCosineDecay, kLinearDecay, kCosinePeriod };
struct ScheduleSpec {
  ScheduleKind kind = ScheduleKind::kCosineDecay;
  int64_t period = 0;  // steps; cosine-N only

  bool operator==(const ScheduleSpec& o) const { return kind == o.kind && period == o.period; }
};

// hyp.grad_reg.implementation: how the regularizer gets its Hessian-vector product.
enum class GradRegImpl { kForwardDifferences, kCentralDifferences, kDoubleBackprop };

// impl.mixed_precision: the autocast dtype.
enum class Precision { kNone, kBf16, kFp16 };

// impl.accumulation_dtype: the dtype the full gradient is summed in.
enum class AccumulationDtype { kFloat32, kFloat64 };

// impl.channels_last: memory format of images and 4-d weights.
enum class ChannelsLast { kAuto, kOn, kOff };

// Each enum's config spelling, in the order `fullbatch keys` lists them.
template <class E>
using EnumNames = std::vector<std::pair<E, std::string>>;
const EnumNames<Augmentation>& enum_names(Augmentation);
const EnumNames<GradRegImpl>& enum_names(GradRegImpl);
const EnumNames<Precision>& enum_names(Precision);
const EnumNames<AccumulationDtype>& enum_names(AccumulationDtype);
const EnumNames<ChannelsLast>& enum_names(ChannelsLast);

// The config spelling of a value ("crop-flip", "bf16", ...).
template <class E>
std::string to_string(E value) {
  for (const auto& [e, name] : enum_names(value))
    if (e == value) return name;
  return "?";
}
std::string to_string(const ScheduleSpec& schedule);

// Parsers: false when the text is none of the spellings.
template <class E>
bool parse_enum(const std::string& text, E& out) {
  for (const auto& [e, name] : enum_names(E{}))
    if (name == text) return out = e, true;
  return false;
}
bool parse_schedule(const std::string& text, ScheduleSpec& out);

}  // namespace fullbatch
