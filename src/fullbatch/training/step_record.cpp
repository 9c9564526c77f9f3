#include "fullbatch/training/step_record.h"

#include <cmath>

namespace fullbatch {

nlohmann::json StepRecord::to_json() const {
  nlohmann::json j = {{"step", step},
                      {"epoch", epoch},
                      {"lr", lr},
                      {"train_loss", train_loss},
                      {"train_accuracy", train_accuracy},
                      {"grad_norm", grad_norm},
                      {"step_time_s", step_time_s},
                      {"time_s", time_s},
                      {"images_per_s", images_per_s}};
  if (clipped_blocks > 0) j["clipped_blocks"] = clipped_blocks;
  for (auto& item : j.items())
    if (item.value().is_number_float() && !std::isfinite(item.value().get<double>()))
      item.value() = nullptr;
  if (val_loss) j["val_loss"] = std::isfinite(*val_loss) ? nlohmann::json(*val_loss) : nullptr;
  if (val_accuracy) j["val_accuracy"] = *val_accuracy;
  if (reached_val_accuracy) j["reached_val_accuracy"] = *reached_val_accuracy;
  return j;
}

}  // namespace fullbatch
