#include "fullbatch/training/evaluation.h"

#include <torch/torch.h>

#include "fullbatch/data/block_source.h"

namespace fullbatch {

Evaluation evaluate_model(Classifier& model, const Dataset& data, const EvalOptions& options,
                          const Execution& execution, Communicator& comm) {
  model.eval();
  torch::NoGradGuard no_grad;
  const int64_t n = data.test.size();
  const int64_t chunk = options.batch_size;
  auto stat_options = torch::TensorOptions().device(execution.device).dtype(torch::kFloat64);
  torch::Tensor loss_sum = torch::zeros({}, stat_options);
  torch::Tensor correct = torch::zeros({}, stat_options);
  int64_t index = 0;
  for (int64_t begin = 0; begin < n; begin += chunk, ++index) {
    if (!owns(comm, index)) continue;
    Block block = test_block(data, begin, std::min(n, begin + chunk), execution.channels_last);
    torch::Tensor logits;
    {
      AutocastScope autocast(execution.device, execution.autocast);
      logits = model.forward(block.inputs).to(torch::kFloat32);
      // As the reference: the sum of the two softmax outputs stands in for the logits (its
      // argmax decides, and the reported loss is the cross-entropy of it).
      if (options.test_time_flips)
        logits = torch::softmax(logits, 1) +
                 torch::softmax(model.forward(block.inputs.flip({3})).to(torch::kFloat32), 1);
    }
    loss_sum += torch::nn::functional::cross_entropy(
        logits, block.labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
    correct += logits.argmax(1).eq(block.labels).sum();
  }
  std::vector<torch::Tensor> stats{loss_sum, correct};
  comm.all_reduce_sum(stats);
  model.train();
  return {stats[0].item<double>() / n, 100.0 * stats[1].item<double>() / n, n};
}

}  // namespace fullbatch
