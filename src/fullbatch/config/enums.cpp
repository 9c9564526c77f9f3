#include "fullbatch/config/enums.h"

#include <cstdlib>

namespace fullbatch {

// One table per enum, in the order `fullbatch keys` lists the spellings.
const EnumNames<Augmentation>& enum_names(Augmentation) {
  static const EnumNames<Augmentation> n{{Augmentation::kCropFlip, "crop-flip"},
                                         {Augmentation::kRandomResizedCrop, "random-resized-crop"},
                                         {Augmentation::kNone, "none"}};
  return n;
}
const EnumNames<GradRegImpl>& enum_names(GradRegImpl) {
  static const EnumNames<GradRegImpl> n{{GradRegImpl::kForwardDifferences, "forward-differences"},
                                        {GradRegImpl::kCentralDifferences, "central-differences"},
                                        {GradRegImpl::kDoubleBackprop, "double-backprop"}};
  return n;
}
const EnumNames<Precision>& enum_names(Precision) {
  static const EnumNames<Precision> n{{Precision::kNone, "none"}, {Precision::kBf16, "bf16"}, {Precision::kFp16, "fp16"}};
  return n;
}
const EnumNames<AccumulationDtype>& enum_names(AccumulationDtype) {
  static const EnumNames<AccumulationDtype> n{{AccumulationDtype::kFloat32, "float32"},
                                              {AccumulationDtype::kFloat64, "float64"}};
  return n;
}
const EnumNames<ChannelsLast>& enum_names(ChannelsLast) {
  static const EnumNames<ChannelsLast> n{{ChannelsLast::kAuto, "auto"}, {ChannelsLast::kOn, "true"}, {ChannelsLast::kOff, "false"}};
  return n;
}

std::string to_string(const ScheduleSpec& s) {
  switch (s.kind) {
    case ScheduleKind::kConstant:
      return "constant";
    case ScheduleKind::kCosineDecay:
      return "cosine-decay";
    case ScheduleKind::kLinearDecay:
      return "linear-decay";
    case ScheduleKind::kCosinePeriod:
      return "cosine-" + std::to_string(s.period);
  }
  return "?";
}

bool parse_schedule(const std::string& text, ScheduleSpec& out) {
  for (ScheduleKind kind : {ScheduleKind::kConstant, ScheduleKind::kCosineDecay, ScheduleKind::kLinearDecay}) {
    if (text == to_string(ScheduleSpec{kind, 0})) return out = {kind, 0}, true;
  }
  const std::string prefix = "cosine-";
  if (text.rfind(prefix, 0) != 0) return false;
  const std::string digits = text.substr(prefix.size());
  if (digits.empty() || digits.size() > 12 || digits.find_first_not_of("0123456789") != std::string::npos)
    return false;
  const int64_t period = std::strtoll(digits.c_str(), nullptr, 10);
  if (period <= 0) return false;
  out = {ScheduleKind::kCosinePeriod, period};
  return true;
}

}  // namespace fullbatch
