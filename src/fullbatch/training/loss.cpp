#include "fullbatch/training/loss.h"

#include <torch/torch.h>

namespace fullbatch {

torch::Tensor training_loss(const torch::Tensor& logits, const torch::Tensor& labels, double smoothing) {
  if (smoothing == 0.0) return torch::nn::functional::cross_entropy(logits, labels);
  const torch::Tensor log_p = torch::log_softmax(logits, -1);
  const double classes = static_cast<double>(logits.size(-1));
  torch::Tensor weights = torch::full_like(logits, smoothing / (classes - 1.0));
  weights.scatter_(-1, labels.unsqueeze(-1), 1.0 - smoothing);
  return (-weights * log_p).sum(-1).mean();
}

}  // namespace fullbatch
