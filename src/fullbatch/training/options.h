#pragma once
// Everything a Trainer reads, typed and checked once. trainer_options() is the one place where
// the training layer reads a Config: below it, each part (data, model, optimizer, schedule,
// regularizer, clipping, evaluation, execution) gets its own small settings struct, so no
// function deep in a step looks a key up, and a test can build a trainer without a Config.
#include <cstdint>

#include "fullbatch/config/config.h"
#include "fullbatch/data/block_source.h"
#include "fullbatch/data/dataset.h"
#include "fullbatch/models/model.h"
#include "fullbatch/optim/clip_noise.h"
#include "fullbatch/optim/regularizer.h"
#include "fullbatch/optim/schedule.h"
#include "fullbatch/optim/optimizer.h"
#include "fullbatch/training/runtime.h"

namespace fullbatch {

// How the training samples are dealt into blocks, step by step.
struct OrderOptions {
  int64_t batch_size = 128;              // data.batch_size: a block (an SGD batch per rank)
  bool stochastic = false;               // hyp.train_stochastic
  bool semi_stochastic = false;          // hyp.train_semi_stochastic
  bool shuffle = false;                  // hyp.shuffle
  bool with_replacement = false;         // hyp.sample_with_replacement
  int64_t switch_to_stochastic_at = 0;   // hyp.train_switch_stochastic; 0 = never
};

// What is done to each block's gradient and to the full gradient.
struct GradientOptions {
  GradRegSettings reg;        // hyp.grad_reg.*: block_strength, acc_strength, eps, implementation
  int64_t sub_batch = 128;    // hyp.sub_batch: a block is cut into max(n / sub_batch, 1) chunks
  // hyp.grad_reg.every_nth_block: the penalty on block b of step s only when (b + s) % N == 0,
  // its term scaled by N (rotating, so every block is penalized once in N steps).
  int64_t reg_every_nth_block = 1;
  ClipSettings clip;
  NoiseSettings noise;
  double label_smoothing = 0.0;
};

struct EvalOptions {
  int64_t every_nth_step = 100;  // impl.validate_every_nth_step
  int64_t batch_size = 1000;     // impl.eval_batch_size
  bool test_time_flips = false;  // impl.test_time_flips
  bool ema = false;              // hyp.evaluate_ema
  // hyp.eval_ema_momentum; its default is the key's (the reference's 0.99), taken from the
  // config so that a trainer built without a Config averages as a run does.
  double ema_momentum = Config::Hyp{}.eval_ema_momentum;
};

struct TrainerOptions {
  uint64_t seed = 0;
  int64_t steps = 1;                            // hyp.steps
  int64_t stop_at_full_training_accuracy = 0;  // stop after K steps at 100% train accuracy
  double stop_at_val_accuracy = 0;  // stop at the first evaluation reaching this % (0 = off)
  DataSpec data;
  BlockSourceOptions blocks;  // augmentation; channels_last is filled in from the execution
  OrderOptions order;
  ModelSpec model;            // in_channels and num_classes are filled in from the data
  OptimizerSettings optimizer;  // hyp.optim.* and hyp.optim_modification.*
  ScheduleSettings schedule;
  GradientOptions gradient;
  EvalOptions eval;
  ExecutionOptions execution;
};

// Validates the config (validate() and model.name against the zoo) and splits it up.
TrainerOptions trainer_options(const Config& config);

}  // namespace fullbatch
