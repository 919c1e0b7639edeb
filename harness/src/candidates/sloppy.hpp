#pragma once
// A correct but less accurate candidate, the fixture of the DRIFT tests: it stays
// within the default tolerance while its errors are clearly larger than fp32-angles'.
#include "candidates/recipe.hpp"

namespace xposcheck::candidates {

// Arithmetic in the dtype (as native-dtype) with fast-math trigonometry: cos and sin
// truncated toward zero to multiples of 2^-22, about the absolute accuracy of GPU
// intrinsics such as CUDA's __sinf / __cosf.
class SloppyCandidate : public RecipeCandidate {
 public:
  SloppyCandidate(std::string name, std::string description)
      : RecipeCandidate(std::move(name), std::move(description), Recipe{.arithmetic = Arithmetic::dtype}) {}
  std::unique_ptr<Candidate> fresh() const override {
    return std::make_unique<SloppyCandidate>(name(), description());
  }

 protected:
  PositionTable table(const Frequencies& f, const Case& c, DType dtype, long position, double centre,
                      bool query) override;
};

}  // namespace xposcheck::candidates
