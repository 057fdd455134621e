// window_reference.hpp — naive double-precision references for the windowed and clip steps of
// window_cases.h, straight from the definitions in sdnn_plan.h (no shared code with the runtime),
// plus the comparison the window tests use.
//
// Each expected element carries its tolerance: 0 for the ops that only move or select values
// (im2col, max pool, clip: the result must be bit-exact, NaN matching NaN only where expected),
// otherwise a bound on float rounding for a sum of n terms: ~ n * 2^-24 * (sum of |terms|).
#ifndef SDNN_TEST_WINDOW_REFERENCE_HPP
#define SDNN_TEST_WINDOW_REFERENCE_HPP

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "window_cases.h"

namespace sdnn_test {

struct WindowExpected {
  std::vector<double> value;
  std::vector<double> tolerance;  // 0: exact
};

inline std::vector<float> window_input(int index, uint32_t variant) {
  const tw_case& k = tw_cases[index];
  std::vector<float> x(static_cast<size_t>(tw_in_floats(&k)));
  for (size_t i = 0; i < x.size(); ++i) x[i] = tw_input(&k, variant, static_cast<int64_t>(i));
  if (k.op == SDNN_STEP_CLIP && x.size() > 8) {  // special values pass through min / max
    x[3] = std::numeric_limits<float>::quiet_NaN();
    x[4] = std::numeric_limits<float>::infinity();
    x[5] = -std::numeric_limits<float>::infinity();
    x[6] = -0.0f;
  }
  return x;
}

inline std::vector<float> window_weights(int index) {
  std::vector<float> w(static_cast<size_t>(tw_weight_floats(&tw_cases[index])));
  for (size_t i = 0; i < w.size(); ++i) w[i] = tw_weight(index, static_cast<int64_t>(i));
  return w;
}

inline std::vector<float> window_biases(int index) {
  const tw_case& k = tw_cases[index];
  std::vector<float> b(k.op == SDNN_STEP_DEPTHWISE ? static_cast<size_t>(k.g.c) : 0);
  for (size_t c = 0; c < b.size(); ++c) b[c] = tw_bias(index, static_cast<int64_t>(c));
  return b;
}

inline WindowExpected window_reference(int index, const std::vector<float>& x) {
  const tw_case& k = tw_cases[index];
  const tw_geometry& g = k.g;
  const int64_t oh = tw_out_h(&k), ow = tw_out_w(&k);
  WindowExpected e;
  e.value.assign(static_cast<size_t>(tw_out_floats(&k)), 0.0);
  e.tolerance.assign(e.value.size(), 0.0);
  const double inf = std::numeric_limits<double>::infinity();

  // x[b][c][iy][ix], or nothing when (iy, ix) is in the padding.
  auto at = [&](int64_t b, int64_t c, int64_t iy, int64_t ix, double* v) {
    if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) return false;
    *v = x[static_cast<size_t>(((b * g.c + c) * g.h + iy) * g.w + ix)];
    return true;
  };

  switch (k.op) {
    case SDNN_STEP_IM2COL: {
      const int64_t columns = oh * ow, padded = TM_PADDED(columns, k.vl);
      const int64_t rows = g.c * g.kh * g.kw;
      for (int64_t b = 0; b < g.batch; ++b)
        for (int64_t col = 0; col < padded; ++col)
          for (int64_t c = 0; c < g.c; ++c)
            for (int64_t ky = 0; ky < g.kh; ++ky)
              for (int64_t kx = 0; kx < g.kw; ++kx) {
                const int64_t row = (c * g.kh + ky) * g.kw + kx;
                double v = 0;
                if (col < columns) {
                  const int64_t oy = col / ow, ox = col % ow;
                  if (!at(b, c, oy * g.sh - g.pt + ky * g.dh, ox * g.sw - g.pl + kx * g.dw, &v))
                    v = 0;
                }
                e.value[static_cast<size_t>(
                    ((b * (padded / k.vl) + col / k.vl) * rows + row) * k.vl + col % k.vl)] = v;
              }
      break;
    }
    case SDNN_STEP_DEPTHWISE:
    case SDNN_STEP_MAXPOOL:
    case SDNN_STEP_AVGPOOL: {
      const std::vector<float> w = window_weights(index), bias = window_biases(index);
      for (int64_t b = 0; b < g.batch; ++b)
        for (int64_t c = 0; c < g.c; ++c)
          for (int64_t oy = 0; oy < oh; ++oy)
            for (int64_t ox = 0; ox < ow; ++ox) {
              double sum = k.op == SDNN_STEP_DEPTHWISE && k.bias ? bias[c] : 0.0;
              double abs_sum = std::fabs(sum), max = -inf;
              int64_t taps = 0;
              for (int64_t ky = 0; ky < g.kh; ++ky)
                for (int64_t kx = 0; kx < g.kw; ++kx) {
                  double v;
                  if (!at(b, c, oy * g.sh - g.pt + ky * g.dh, ox * g.sw - g.pl + kx * g.dw, &v))
                    continue;
                  ++taps;
                  const double term = k.op == SDNN_STEP_DEPTHWISE
                                          ? w[static_cast<size_t>((c * g.kh + ky) * g.kw + kx)] * v
                                          : v;
                  sum += term;
                  abs_sum += std::fabs(term);
                  max = std::max(max, v);
                }
              const size_t i = static_cast<size_t>(((b * g.c + c) * oh + oy) * ow + ox);
              if (k.op == SDNN_STEP_MAXPOOL) {
                e.value[i] = max;
              } else if (k.op == SDNN_STEP_AVGPOOL) {
                const int64_t divisor = k.include_pad ? g.kh * g.kw : taps;
                e.value[i] = divisor ? sum / static_cast<double>(divisor) : 0.0;
                e.tolerance[i] =
                    (4e-6 * abs_sum) / static_cast<double>(std::max<int64_t>(divisor, 1)) + 1e-6;
              } else {
                if (k.act != SDNN_ACT_NONE) sum = std::max(sum, 0.0);
                if (k.act == SDNN_ACT_RELU6) sum = std::min(sum, 6.0);
                e.value[i] = sum;
                e.tolerance[i] = 4e-6 * abs_sum + 1e-6;
              }
            }
      break;
    }
    case SDNN_STEP_GLOBAL_AVGPOOL:
      for (int64_t p = 0; p < g.batch * g.c; ++p) {
        double sum = 0, abs_sum = 0;
        for (int64_t i = 0; i < g.h * g.w; ++i) {
          sum += x[static_cast<size_t>(p * g.h * g.w + i)];
          abs_sum += std::fabs(x[static_cast<size_t>(p * g.h * g.w + i)]);
        }
        const double n = static_cast<double>(g.h * g.w);
        e.value[static_cast<size_t>(p)] = sum / n;
        e.tolerance[static_cast<size_t>(p)] = 1e-5 * abs_sum / n + 1e-6;
      }
      break;
    case SDNN_STEP_CLIP:
      for (size_t i = 0; i < x.size(); ++i) {
        double v = x[i];
        v = v < k.lo ? k.lo : v;  // NaN stays NaN
        e.value[i] = v > k.hi ? k.hi : v;
      }
      break;
  }
  return e;
}

// "" when got matches, else a description of the first mismatch.
inline std::string window_mismatch(const std::vector<float>& got, const WindowExpected& want) {
  if (got.size() != want.value.size()) return "size differs";
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = got[i], w = want.value[i], tol = want.tolerance[i];
    const bool ok = std::isnan(w) ? std::isnan(g)
                    : tol == 0    ? g == w && std::signbit(g) == std::signbit(w)
                                  : std::fabs(g - w) <= tol;
    if (!ok) {
      std::ostringstream text;
      text << "element " << i << ": got " << g << ", want " << w << " (tolerance " << tol << ")";
      return text.str();
    }
  }
  return "";
}

}  // namespace sdnn_test

#endif  // SDNN_TEST_WINDOW_REFERENCE_HPP
