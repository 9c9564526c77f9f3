#pragma once
// The names a config key chooses among that more than one layer must know, written once: the
// datasets (config/ checks data.name, data/ loads them) and the optimizers and modifications
// with the other spellings each accepts (config/ stores the canonical spelling, optim/ builds
// from it). They live here, below config/, data/ and optim/, because those layers may not include
// each other; a name added here is accepted by the key and by the component alike.
#include <string>
#include <vector>

namespace fullbatch {

// A name in its canonical (the reference's) spelling and the lower-case aliases that mean it.
struct Spelling {
  std::string name;
  std::vector<std::string> aliases;
};

// hyp.optim.name: Gradient Descent, Adam, L-BFGS, FISTA, GD-AGC, Adaptive Gradient Descent.
const std::vector<Spelling>& optimizer_spellings();
// hyp.optim_modification.name: none, SAM, LARS, LARC.
const std::vector<Spelling>& modification_spellings();
// hyp.optim.line_search (L-BFGS): Wolfe, none.
const std::vector<Spelling>& line_search_spellings();

// The entry `text` names: its canonical name in any case, or one of its aliases in any case;
// nullptr when none does.
const Spelling* find_spelling(const std::string& text, const std::vector<Spelling>& spellings);
// The canonical names, in table order.
std::vector<std::string> names_of(const std::vector<Spelling>& spellings);

// data.name: every dataset fullbatch loads.
const std::vector<std::string>& dataset_names();
// Whether data.name is read from a folder of image files (imagefolder, imagenet,
// tinyimagenet), where data.pixels, data.resize and random-resized-crop apply.
bool is_image_folder_dataset(const std::string& name);

}  // namespace fullbatch
