#pragma once
// Evaluation on the test set: loss and accuracy of a model in eval mode (BatchNorm running
// statistics), optionally with test-time flips (the reference's sum of the softmax outputs of the
// image and its mirror), the test chunks shared over ranks. A free
// function of (model, data), so saved weights are evaluated without building a trainer.
#include <cstdint>

#include "fullbatch/data/dataset.h"
#include "fullbatch/distributed/communicator.h"
#include "fullbatch/models/model.h"
#include "fullbatch/training/options.h"
#include "fullbatch/training/runtime.h"

namespace fullbatch {

struct Evaluation {
  double loss = 0;
  double accuracy = 0;  // percent
  int64_t images = 0;
};

// Leaves the model in training mode, as it found it for training.
Evaluation evaluate_model(Classifier& model, const Dataset& data, const EvalOptions& options,
                          const Execution& execution, Communicator& comm);

}  // namespace fullbatch
