// reference.hpp — expected outputs of the hand-made test models (test_model.h), computed in double
// precision from the same weight formulas the plan files pack, plus the comparison the tests use.
#ifndef SDNN_TEST_REFERENCE_HPP
#define SDNN_TEST_REFERENCE_HPP

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "test_model.h"

namespace sdnn_test {

inline std::vector<float> make_input(size_t count, uint32_t variant) {
  std::vector<float> x(count);
  for (size_t i = 0; i < count; ++i) x[i] = tm_input(variant, static_cast<int64_t>(i));
  return x;
}

// y[t][m] = relu(sum_k A[m][k] x[t][k] + bias[m]) + x[t][m]
inline std::vector<double> mlp_reference(const std::vector<float>& x) {
  const int tokens = TM_MLP_TOKENS, features = TM_MLP_FEATURES;
  std::vector<double> y(static_cast<size_t>(tokens) * features);
  for (int t = 0; t < tokens; ++t)
    for (int m = 0; m < features; ++m) {
      double acc = tm_bias(TM_MLP_SEED, m);
      for (int k = 0; k < features; ++k)
        acc += static_cast<double>(tm_weight(TM_MLP_SEED, m, k)) * x[t * features + k];
      y[t * features + m] = std::max(acc, 0.0) + x[t * features + m];
    }
  return y;
}

// out[b][m][p] = relu(sum_k A[m][k] img[b][k][p] + bias[m])
inline std::vector<double> conv_reference(const std::vector<float>& img) {
  const int hw = TM_CONV_HW;
  std::vector<double> out(static_cast<size_t>(TM_CONV_BATCH) * TM_CONV_OUT * hw);
  for (int b = 0; b < TM_CONV_BATCH; ++b)
    for (int m = 0; m < TM_CONV_OUT; ++m)
      for (int p = 0; p < hw; ++p) {
        double acc = tm_bias(TM_CONV_SEED, m);
        for (int k = 0; k < TM_CONV_IN; ++k)
          acc += static_cast<double>(tm_weight(TM_CONV_SEED, m, k)) *
                 img[(static_cast<size_t>(b) * TM_CONV_IN + k) * hw + p];
        out[(static_cast<size_t>(b) * TM_CONV_OUT + m) * hw + p] = std::max(acc, 0.0);
      }
  return out;
}

// Index of the first element outside rtol/atol 1e-5 (NaN never matches), or -1; 0 when the
// sizes differ.
template <typename Want>
long first_mismatch(const std::vector<float>& got, const std::vector<Want>& want) {
  if (got.size() != want.size()) return 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = got[i], w = static_cast<double>(want[i]);
    if (!(std::fabs(g - w) <= 1e-5 + 1e-5 * std::fabs(w))) return static_cast<long>(i);
  }
  return -1;
}

}  // namespace sdnn_test

#endif  // SDNN_TEST_REFERENCE_HPP
