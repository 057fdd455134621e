// test_tensor_ops.cpp — the tensor steps (tensor_ops.c, tensor_matmul.c) and the vector math
// (vmath.c) called directly, on each variant the CPU has (AVX-512, AVX2 + FMA, portable; a
// missing ISA is skipped with a WARN), against double / long double references written here:
//
//   - every unary function over float bit patterns (every 9973rd), a dense sweep of [-12, 12]
//     (exp: [-87, 88]) and special values (+-0, subnormals, +-inf, NaN, branch edges): relative
//     error bounds (below FLT_MIN, 1e-30 for the GELUs: an absolute bound), NaN and inf limits,
//     in place, every tail length;
//   - ELEMENTWISE: broadcasting binaries ([2,3,4] op [4], [2,1,4] op [1,3,1], scalars, columns),
//     strided operands, transposes (perm [0,2,1,3], [0,2,3,1] of [2,5,3,7]), slices and reversed
//     slices through strides, broadcast and strided unaries, POW against powf, constants, in place;
//   - REDUCE_MEAN, SOFTMAX (-3.4e38 masks, -inf / +inf rows, an axis that is not innermost),
//     MATMUL (m, n, k in {1, 3, 16, 17, 33, 64, 128}, batch broadcast, b_const, leading
//     dimensions, several K blocks), LAYERNORM (row-major and FeatureBlocked with VL 8 / 16,
//     tokens not a multiple of VL, no beta, in place);
//   - each op's units cut into 1, 2, 3, 5 and 16 uneven ranges, run in reverse order, give
//     bitwise the same output.
// A hidden test, `[.report]`, prints the measured maximum errors per function and variant.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

extern "C" {
#include "tensor_ops.h"
#include "vmath.h"
}

namespace {

const float kInf = std::numeric_limits<float>::infinity();
const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kMask = -3.4028235e38f;  // -FLT_MAX, BERT's additive mask value

struct Isa {
  uint32_t cpu;
  const char* name;
};

// The variants to test here; warns once per test case about the ones this CPU lacks.
std::vector<Isa> isas() {
  std::vector<Isa> list;
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (avx2 && __builtin_cpu_supports("avx512f"))
    list.push_back({SDNN_CPU_AVX512F | SDNN_CPU_AVX2, "avx512"});
  else
    WARN("no AVX-512F on this CPU: the AVX-512 variant is not tested");
  if (avx2)
    list.push_back({SDNN_CPU_AVX2, "avx2"});
  else
    WARN("no AVX2 + FMA on this CPU: the AVX2 variant is not tested");
  list.push_back({0, "portable"});
  return list;
}

// Cuts [0, units) into `pieces` uneven ranges (quadratic cut points) and runs them last first.
void run_split(int64_t units, int pieces, const std::function<void(int64_t, int64_t)>& run) {
  std::vector<int64_t> cuts;
  for (int p = 0; p <= pieces; ++p) cuts.push_back(units * p * p / (pieces * pieces));
  for (int p = pieces - 1; p >= 0; --p)
    if (cuts[p] < cuts[p + 1]) run(cuts[p], cuts[p + 1]);
}

// Runs `run` over all units at once into `dst`, then split 2, 3, 5 and 16 ways into fresh
// buffers pre-filled from `init`, each of which must equal the one-shot output bitwise.
void check_splits(int64_t units, std::vector<float>& dst, const std::vector<float>& init,
                  const std::function<void(float*, int64_t, int64_t)>& run) {
  dst = init;
  run(dst.data(), 0, units);
  for (int pieces : {2, 3, 5, 16}) {
    std::vector<float> other = init;
    run_split(units, pieces, [&](int64_t u0, int64_t u1) { run(other.data(), u0, u1); });
    INFO("split into " << pieces << " ranges");
    REQUIRE(std::memcmp(other.data(), dst.data(), dst.size() * sizeof(float)) == 0);
  }
}

uint32_t lcg_state = 12345u;
float uniform(float lo, float hi) {
  lcg_state = lcg_state * 1664525u + 1013904223u;
  return lo + (hi - lo) * static_cast<float>((lcg_state >> 8) * (1.0 / 16777216.0));
}

std::vector<float> random_vector(size_t n, float lo, float hi) {
  std::vector<float> v(n);
  for (float& x : v) x = uniform(lo, hi);
  return v;
}

// ---- unary functions ------------------------------------------------------------------------

const char* fn_name(uint32_t fn) {
  static const char* names[] = {"copy", "add",        "sub",       "mul",  "div", "pow",
                                "relu", "leaky_relu", "sigmoid",   "tanh", "erf", "sqrt",
                                "exp",  "gelu",       "gelu_tanh", "clip", "neg"};
  return fn < SDNN_FN_COUNT ? names[fn] : "?";
}

const uint32_t kUnary[] = {SDNN_FN_COPY, SDNN_FN_RELU,      SDNN_FN_LEAKY_RELU, SDNN_FN_SIGMOID,
                           SDNN_FN_TANH, SDNN_FN_ERF,       SDNN_FN_SQRT,       SDNN_FN_EXP,
                           SDNN_FN_GELU, SDNN_FN_GELU_TANH, SDNN_FN_CLIP,       SDNN_FN_NEG};
const float kAlpha = 0.1f, kLo = -1.5f, kHi = 2.25f;

// The alpha / beta every test passes: LEAKY_RELU's slope, CLIP's [lo, hi].
float fn_alpha(uint32_t fn) { return fn == SDNN_FN_CLIP ? kLo : kAlpha; }
const float kBeta = kHi;

long double ref_unary(uint32_t fn, float xf, float alpha, float beta) {
  const long double x = xf;
  switch (fn) {
    case SDNN_FN_COPY:
      return x;
    case SDNN_FN_RELU:
      return x < 0 ? 0.0L : x;
    case SDNN_FN_LEAKY_RELU:
      return x < 0 ? static_cast<long double>(alpha) * x : x;
    case SDNN_FN_SIGMOID:
      return 1.0L / (1.0L + expl(-x));
    case SDNN_FN_TANH:
      return tanhl(x);
    case SDNN_FN_ERF:
      return erfl(x);
    case SDNN_FN_SQRT:
      return sqrtl(x);
    case SDNN_FN_EXP:
      return expl(x);
    case SDNN_FN_GELU:
      if (x < -40) return -0.0L;  // the limit; the formula would give -inf * 0
      return 0.5L * x * erfcl(-x / sqrtl(2.0L));
    case SDNN_FN_GELU_TANH: {
      if (x < -40) return -0.0L;
      const long double u = sqrtl(2.0L / acosl(-1.0L)) * (x + 0.044715L * x * x * x);
      return x / (1.0L + expl(-2.0L * u));  // = 0.5 x (1 + tanh u), without cancellation
    }
    case SDNN_FN_CLIP: {
      const long double v = x < alpha ? static_cast<long double>(alpha) : x;
      return v > beta ? static_cast<long double>(beta) : v;
    }
    case SDNN_FN_NEG:
      return -x;
    default:
      return std::numeric_limits<long double>::quiet_NaN();
  }
}

// Relative error bound, and the magnitude below which the bound is absolute (tol * tiny).
struct Bound {
  double tol, tiny;
};

Bound bound_of(uint32_t fn) {
  switch (fn) {
    // Required: exp 2e-6, erf "well below" 1e-5, tanh / sigmoid / GELUs 1e-5. Measured (every
    // variant) at most 4.3e-7 (gelu), 2e-7 or less for the others: about 5x headroom or more.
    case SDNN_FN_EXP:
      return {1e-6, FLT_MIN};
    case SDNN_FN_ERF:
      return {1e-6, FLT_MIN};
    case SDNN_FN_TANH:
      return {1e-6, FLT_MIN};
    case SDNN_FN_SIGMOID:
      return {1e-6, FLT_MIN};
    case SDNN_FN_GELU:
      return {2e-6, 1e-30};
    case SDNN_FN_GELU_TANH:
      return {1e-6, 1e-30};
    case SDNN_FN_SQRT:
      return {6e-8, FLT_MIN};
    case SDNN_FN_LEAKY_RELU:
      return {6e-8, FLT_MIN};
    default:
      return {0.0, FLT_MIN};  // exact
  }
}

// Error of `got` against `ref` in units of the bound (<= 1 passes); NaN must match NaN, and
// results beyond the float range must be the right infinity (either near the edge).
double scaled_error(long double ref, float got, const Bound& b, double* rel) {
  *rel = 0;
  if (std::isnan(static_cast<double>(ref))) return std::isnan(got) ? 0.0 : INFINITY;
  if (std::isnan(got)) return INFINITY;
  const long double mag = fabsl(ref);
  if (mag > static_cast<long double>(FLT_MAX)) {
    const bool right_inf = std::isinf(got) && (got > 0) == (ref > 0);
    if (right_inf) return 0.0;
    if (mag > static_cast<long double>(FLT_MAX) * (1 + 1e-5L)) return INFINITY;
  }
  if (std::isinf(got)) return INFINITY;
  const long double diff = fabsl(static_cast<long double>(got) - ref);
  if (mag < b.tiny) {
    const double limit = (b.tol > 0 ? b.tol : 1e-7) * b.tiny;
    return static_cast<double>(diff) / limit;
  }
  *rel = static_cast<double>(diff / mag);
  if (b.tol == 0) return diff == 0 ? 0.0 : INFINITY;
  return *rel / b.tol;
}

std::vector<float> unary_inputs(uint32_t fn) {
  std::vector<float> v = {0.0f,
                          -0.0f,
                          std::numeric_limits<float>::denorm_min(),
                          -std::numeric_limits<float>::denorm_min(),
                          FLT_MIN,
                          -FLT_MIN,
                          1e-30f,
                          -1e-30f,
                          1e-10f,
                          -1e-10f,
                          1e-4f,
                          -1e-4f,
                          0.5f,
                          -0.5f,
                          0.625f,
                          -0.625f,
                          0.75f,
                          -0.75f,
                          1.06066f,
                          -1.06066f,
                          1.0606602f,
                          -1.0606602f,
                          3.92f,
                          -3.92f,
                          9.0f,
                          -9.0f,
                          10.0f,
                          -10.0f,
                          11.7f,
                          -11.7f,
                          14.2f,
                          -14.2f,
                          20.0f,
                          -20.0f,
                          40.0f,
                          -40.0f,
                          87.0f,
                          -87.0f,
                          88.0f,
                          -88.0f,
                          88.72f,
                          -88.72f,
                          89.0f,
                          -89.0f,
                          104.0f,
                          -104.0f,
                          1e10f,
                          -1e10f,
                          FLT_MAX,
                          -FLT_MAX,
                          kInf,
                          -kInf,
                          kNaN,
                          -kNaN};
  for (uint64_t bits = 0; bits < (1ull << 32); bits += 9973) {
    const uint32_t b = static_cast<uint32_t>(bits);
    float f;
    std::memcpy(&f, &b, sizeof f);
    v.push_back(f);
  }
  const float lo = fn == SDNN_FN_EXP ? -87.0f : -12.0f, hi = fn == SDNN_FN_EXP ? 88.0f : 12.0f;
  const int points = 200001;
  for (int i = 0; i < points; ++i)
    v.push_back(lo + (hi - lo) * static_cast<float>(i) / (points - 1));
  for (int i = 0; i < 20001; ++i) v.push_back(-1.0f + 2.0f * static_cast<float>(i) / 20000);
  return v;
}

struct UnaryStats {
  double max_rel = 0, max_scaled = 0;
  float worst_x = 0;
};

UnaryStats unary_stats(uint32_t fn, const Isa& isa, const std::vector<float>& x,
                       std::vector<float>* out) {
  std::vector<float> y(x.size(), 12345.0f);
  sdnn_vmath_unary(fn, y.data(), x.data(), static_cast<int64_t>(x.size()), fn_alpha(fn), kBeta,
                   isa.cpu);
  UnaryStats s;
  const Bound bound = bound_of(fn);
  for (size_t i = 0; i < x.size(); ++i) {
    double rel;
    const double e = scaled_error(ref_unary(fn, x[i], fn_alpha(fn), kBeta), y[i], bound, &rel);
    if (e > s.max_scaled) {
      s.max_scaled = e;
      s.worst_x = x[i];
    }
    s.max_rel = std::max(s.max_rel, rel);
  }
  if (out) *out = y;
  return s;
}

// ---- elementwise helpers --------------------------------------------------------------------

using Shape = std::vector<int64_t>;

int64_t numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

// Strides of a row-major tensor of `shape` read as the broadcast output `out` (ONNX / numpy
// rules, right-aligned): 0 for broadcast dims.
Shape broadcast_strides(const Shape& shape, const Shape& out) {
  Shape strides(out.size(), 0);
  int64_t stride = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    const size_t d = shape.size() - 1 - i, o = out.size() - 1 - i;
    strides[o] = shape[d] == 1 ? 0 : stride;
    stride *= shape[d];
  }
  return strides;
}

sdnn_elementwise_params make_params(uint32_t fn, const Shape& dims, const Shape& dst_strides,
                                    const Shape& a_strides, const Shape& b_strides) {
  sdnn_elementwise_params p{};
  p.fn = fn;
  p.rank = static_cast<uint32_t>(dims.size());
  p.alpha = fn_alpha(fn);
  p.beta = kBeta;
  for (size_t d = 0; d < dims.size(); ++d) {
    p.dims[d] = dims[d];
    p.dst_strides[d] = dst_strides[d];
    p.src0_strides[d] = a_strides[d];
    p.src1_strides[d] = b_strides.empty() ? 0 : b_strides[d];
  }
  return p;
}

// Calls f(dst offset, a offset, b offset) for every index of p's space.
void for_each_index(const sdnn_elementwise_params& p,
                    const std::function<void(int64_t, int64_t, int64_t)>& f) {
  std::vector<int64_t> index(p.rank, 0);
  const int64_t total = [&] {
    int64_t n = 1;
    for (uint32_t d = 0; d < p.rank; ++d) n *= p.dims[d];
    return n;
  }();
  for (int64_t flat = 0; flat < total; ++flat) {
    int64_t rest = flat, od = 0, oa = 0, ob = 0;
    for (int d = static_cast<int>(p.rank) - 1; d >= 0; --d) {
      const int64_t i = rest % p.dims[d];
      rest /= p.dims[d];
      od += i * p.dst_strides[d];
      oa += i * p.src0_strides[d];
      ob += i * p.src1_strides[d];
    }
    f(od, oa, ob);
  }
}

float ref_binary(uint32_t fn, float a, float b) {
  const double x = a, y = b;
  switch (fn) {
    case SDNN_FN_ADD:
      return static_cast<float>(x + y);
    case SDNN_FN_SUB:
      return static_cast<float>(x - y);
    case SDNN_FN_MUL:
      return static_cast<float>(x * y);
    case SDNN_FN_DIV:
      return static_cast<float>(x / y);
    default:
      return ::powf(a, b);
  }
}

int64_t ulp_distance(float a, float b) {
  if (a == b || (std::isnan(a) && std::isnan(b))) return 0;
  if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<int64_t>::max();
  int32_t ia, ib;
  std::memcpy(&ia, &a, sizeof ia);
  std::memcpy(&ib, &b, sizeof ib);
  const int64_t ma = ia < 0 ? static_cast<int64_t>(INT32_MIN) - ia : ia;
  const int64_t mb = ib < 0 ? static_cast<int64_t>(INT32_MIN) - ib : ib;
  return std::llabs(ma - mb);
}

// Runs an elementwise step over all units and under splits; dst starts as `init` (which must
// cover every dst offset). Returns the one-shot output.
std::vector<float> run_elementwise(const sdnn_elementwise_params& p, const std::vector<float>& init,
                                   const float* a, const float* b, uint32_t cpu,
                                   int64_t dst_base = 0) {
  std::vector<float> out;
  const int64_t units = sdnn_elementwise_units(&p);
  check_splits(units, out, init, [&](float* dst, int64_t u0, int64_t u1) {
    sdnn_elementwise_run(&p, dst + dst_base, a, b, u0, u1, cpu);
  });
  return out;
}

// A binary op on broadcast shapes, checked against ref_binary element by element (exact for
// + - * /, within 1 ulp of powf for POW).
void check_binary(uint32_t fn, const Shape& a_shape, const Shape& b_shape, const Shape& out_shape,
                  uint32_t cpu, float lo = -4.0f, float hi = 4.0f) {
  INFO(fn_name(fn) << " a " << a_shape.size() << "-d (" << numel(a_shape) << ") b "
                   << b_shape.size() << "-d (" << numel(b_shape) << ") out " << numel(out_shape));
  const std::vector<float> a = random_vector(static_cast<size_t>(numel(a_shape)), lo, hi);
  std::vector<float> b = random_vector(static_cast<size_t>(numel(b_shape)), lo, hi);
  if (fn == SDNN_FN_DIV)
    for (float& v : b) v = v < 0 ? v - 0.5f : v + 0.5f;
  const Shape dst_strides = broadcast_strides(out_shape, out_shape);
  const sdnn_elementwise_params p =
      make_params(fn, out_shape, dst_strides, broadcast_strides(a_shape, out_shape),
                  broadcast_strides(b_shape, out_shape));
  REQUIRE(sdnn_elementwise_units(&p) == numel(out_shape) / out_shape.back());
  const std::vector<float> init(static_cast<size_t>(numel(out_shape)), kNaN);
  const std::vector<float> got = run_elementwise(p, init, a.data(), b.data(), cpu);
  for_each_index(p, [&](int64_t od, int64_t oa, int64_t ob) {
    const float want = ref_binary(fn, a[oa], b[ob]);
    if (fn == SDNN_FN_POW)
      REQUIRE(ulp_distance(got[od], want) <= 1);
    else if (!(got[od] == want || (std::isnan(got[od]) && std::isnan(want))))
      FAIL("at " << od << ": " << got[od] << " != " << want);
  });
}

}  // namespace

// ---- vector math ----------------------------------------------------------------------------

TEST_CASE("unary functions meet their error bounds on every variant", "[tensor][vmath]") {
  for (const Isa& isa : isas())
    for (uint32_t fn : kUnary) {
      INFO(isa.name << " " << fn_name(fn));
      const std::vector<float> x = unary_inputs(fn);
      std::vector<float> y;
      const UnaryStats s = unary_stats(fn, isa, x, &y);
      INFO("max relative error " << s.max_rel << ", worst input " << s.worst_x);
      CHECK(s.max_scaled <= 1.0);

      // In place gives the same bits; so does every tail length of a short array.
      std::vector<float> z = x;
      sdnn_vmath_unary(fn, z.data(), z.data(), static_cast<int64_t>(z.size()), fn_alpha(fn), kBeta,
                       isa.cpu);
      CHECK(std::memcmp(z.data(), y.data(), y.size() * sizeof(float)) == 0);
      for (int64_t n = 1; n <= 40; ++n) {
        std::vector<float> t(static_cast<size_t>(n) + 1, 777.0f);
        sdnn_vmath_unary(fn, t.data(), x.data(), n, fn_alpha(fn), kBeta, isa.cpu);
        REQUIRE(std::memcmp(t.data(), y.data(), static_cast<size_t>(n) * sizeof(float)) == 0);
        REQUIRE(t[static_cast<size_t>(n)] == 777.0f);
      }
    }
}

TEST_CASE("unary functions: special values", "[tensor][vmath]") {
  struct Case {
    uint32_t fn;
    float x, want;
  };
  const Case cases[] = {
      {SDNN_FN_EXP, -kInf, 0.0f},        {SDNN_FN_EXP, kInf, kInf},
      {SDNN_FN_EXP, -1000.0f, 0.0f},     {SDNN_FN_EXP, 100.0f, kInf},
      {SDNN_FN_EXP, 0.0f, 1.0f},         {SDNN_FN_ERF, kInf, 1.0f},
      {SDNN_FN_ERF, -kInf, -1.0f},       {SDNN_FN_ERF, -0.0f, -0.0f},
      {SDNN_FN_TANH, kInf, 1.0f},        {SDNN_FN_TANH, -kInf, -1.0f},
      {SDNN_FN_TANH, -0.0f, -0.0f},      {SDNN_FN_SIGMOID, kInf, 1.0f},
      {SDNN_FN_SIGMOID, -kInf, 0.0f},    {SDNN_FN_SIGMOID, 0.0f, 0.5f},
      {SDNN_FN_GELU, kInf, kInf},        {SDNN_FN_GELU, -kInf, -0.0f},
      {SDNN_FN_GELU, 0.0f, 0.0f},        {SDNN_FN_GELU_TANH, kInf, kInf},
      {SDNN_FN_GELU_TANH, -kInf, -0.0f}, {SDNN_FN_GELU_TANH, 0.0f, 0.0f},
      {SDNN_FN_RELU, -kInf, 0.0f},       {SDNN_FN_SQRT, kInf, kInf},
  };
  for (const Isa& isa : isas()) {
    for (const Case& c : cases) {
      INFO(isa.name << " " << fn_name(c.fn) << "(" << c.x << ")");
      float y = 1.0f;
      sdnn_vmath_unary(c.fn, &y, &c.x, 1, fn_alpha(c.fn), kBeta, isa.cpu);
      CHECK(y == c.want);
      if (c.want == 0.0f) CHECK(std::signbit(y) == std::signbit(c.want));
    }
    for (uint32_t fn : kUnary) {
      INFO(isa.name << " " << fn_name(fn) << "(NaN)");
      const float x[2] = {kNaN, -kNaN};
      float y[2] = {0.0f, 0.0f};
      sdnn_vmath_unary(fn, y, x, 2, fn_alpha(fn), kBeta, isa.cpu);
      CHECK(std::isnan(y[0]));
      CHECK(std::isnan(y[1]));
    }
  }
}

TEST_CASE("vector math accuracy report", "[.report]") {
  std::printf("%-10s", "function");
  const std::vector<Isa> list = isas();
  for (const Isa& isa : list) std::printf(" %24s", isa.name);
  std::printf("\n");
  for (uint32_t fn : kUnary) {
    const std::vector<float> x = unary_inputs(fn);
    std::printf("%-10s", fn_name(fn));
    for (const Isa& isa : list) {
      const UnaryStats s = unary_stats(fn, isa, x, nullptr);
      std::printf(" %10.3g (bound x%5.2f)", s.max_rel, s.max_scaled);
    }
    std::printf("\n");
  }
}

// ---- ELEMENTWISE ----------------------------------------------------------------------------

TEST_CASE("elementwise binary ops broadcast like ONNX", "[tensor][elementwise]") {
  for (const Isa& isa : isas()) {
    INFO(isa.name);
    for (uint32_t fn : {SDNN_FN_ADD, SDNN_FN_SUB, SDNN_FN_MUL, SDNN_FN_DIV, SDNN_FN_POW}) {
      const float lo = fn == SDNN_FN_POW ? 0.0f : -4.0f;
      check_binary(fn, {2, 3, 4}, {4}, {2, 3, 4}, isa.cpu, lo);
      check_binary(fn, {2, 1, 4}, {1, 3, 1}, {2, 3, 4}, isa.cpu, lo);
      check_binary(fn, {2, 3, 4}, {1}, {2, 3, 4}, isa.cpu, lo);
      check_binary(fn, {1}, {2, 3, 4}, {2, 3, 4}, isa.cpu, lo);
      check_binary(fn, {2, 3, 1}, {1}, {2, 3, 5}, isa.cpu, lo);
      check_binary(fn, {3, 1000}, {1000}, {3, 1000}, isa.cpu, lo);
      check_binary(fn, {3, 1000}, {3, 1}, {3, 1000}, isa.cpu, lo);
      check_binary(fn, {3, 1}, {3, 1000}, {3, 1000}, isa.cpu, lo);
      check_binary(fn, {77}, {77}, {77}, isa.cpu, lo);
      check_binary(fn, {2, 1, 3, 1, 2, 5}, {1, 2, 1, 3, 2, 1}, {2, 2, 3, 3, 2, 5}, isa.cpu, lo);
      check_binary(fn, {4, 1}, {1, 1}, {4, 1}, isa.cpu, lo);
    }
  }
}

TEST_CASE("elementwise binary op with strided operands and constants", "[tensor][elementwise]") {
  for (const Isa& isa : isas()) {
    INFO(isa.name);
    // dst [3, 5] = a^T + b where a is [5, 3] row-major (a strides {1, 3}), b a constant [5].
    const std::vector<float> a = random_vector(15, -2, 2), b = random_vector(5, -2, 2);
    for (uint32_t fn : {SDNN_FN_ADD, SDNN_FN_SUB, SDNN_FN_MUL, SDNN_FN_DIV}) {
      sdnn_elementwise_params p = make_params(fn, {3, 5}, {5, 1}, {1, 3}, {0, 1});
      p.src1_const = b.data();
      const std::vector<float> got =
          run_elementwise(p, std::vector<float>(15, kNaN), a.data(), nullptr, isa.cpu);
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 5; ++j) REQUIRE(got[i * 5 + j] == ref_binary(fn, a[j * 3 + i], b[j]));
      // The same with the constant as a: dst = b - a^T.
      sdnn_elementwise_params q = make_params(fn, {3, 5}, {5, 1}, {0, 1}, {1, 3});
      q.src0_const = b.data();
      const std::vector<float> got2 =
          run_elementwise(q, std::vector<float>(15, kNaN), nullptr, a.data(), isa.cpu);
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 5; ++j) REQUIRE(got2[i * 5 + j] == ref_binary(fn, b[j], a[j * 3 + i]));
    }
    // In place: x += bias, x *= 3 (a scalar), over [4, 300].
    std::vector<float> x = random_vector(1200, -3, 3);
    const std::vector<float> bias = random_vector(300, -1, 1), three = {3.0f};
    std::vector<float> want(1200);
    for (int i = 0; i < 1200; ++i) want[i] = (x[i] + bias[i % 300]) * 3.0f;
    const sdnn_elementwise_params add =
        make_params(SDNN_FN_ADD, {4, 300}, {300, 1}, {300, 1}, {0, 1});
    const sdnn_elementwise_params mul =
        make_params(SDNN_FN_MUL, {4, 300}, {300, 1}, {300, 1}, {0, 0});
    run_split(4, 3, [&](int64_t u0, int64_t u1) {
      sdnn_elementwise_run(&add, x.data(), x.data(), bias.data(), u0, u1, isa.cpu);
    });
    sdnn_elementwise_run(&mul, x.data(), x.data(), three.data(), 0, 4, isa.cpu);
    REQUIRE(x == want);
  }
}

TEST_CASE("POW matches powf, with its special exponents", "[tensor][elementwise]") {
  std::vector<float> a = random_vector(200, -3, 3);
  const float specials[] = {0.0f, -0.0f, -kInf, kInf, kNaN, -1.0f, 1.0f, -2.5f, 1e-30f, 1e30f};
  for (size_t i = 0; i < sizeof specials / sizeof specials[0]; ++i) a[i] = specials[i];
  for (const Isa& isa : isas())
    for (float e : {2.0f, 0.5f, 1.0f, 3.0f, -1.5f, 0.0f, kNaN}) {
      INFO(isa.name << " exponent " << e);
      const sdnn_elementwise_params p = make_params(SDNN_FN_POW, {4, 50}, {50, 1}, {50, 1}, {0, 0});
      const std::vector<float> got =
          run_elementwise(p, std::vector<float>(200, 0.0f), a.data(), &e, isa.cpu);
      for (size_t i = 0; i < 200; ++i) {
        INFO(a[i] << " ** " << e << " = " << got[i] << ", powf " << ::powf(a[i], e));
        REQUIRE(ulp_distance(got[i], ::powf(a[i], e)) <= (e == 2.0f || e == 0.5f ? 0 : 1));
      }
    }
}

TEST_CASE("COPY transposes and slices through strides", "[tensor][elementwise]") {
  const Shape in = {2, 5, 3, 7};
  std::vector<float> x(static_cast<size_t>(numel(in)));
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i);
  const Shape in_strides = {105, 21, 7, 1};
  for (const Isa& isa : isas())
    for (const Shape& perm : {Shape{0, 2, 1, 3}, Shape{0, 2, 3, 1}, Shape{3, 1, 0, 2}}) {
      INFO(isa.name << " perm " << perm[0] << perm[1] << perm[2] << perm[3]);
      Shape out(4), src_strides(4);
      for (int d = 0; d < 4; ++d) {
        out[d] = in[perm[d]];
        src_strides[d] = in_strides[perm[d]];
      }
      const sdnn_elementwise_params p =
          make_params(SDNN_FN_COPY, out, broadcast_strides(out, out), src_strides, {});
      const std::vector<float> got =
          run_elementwise(p, std::vector<float>(x.size(), kNaN), x.data(), nullptr, isa.cpu);
      int64_t flat = 0;
      for (int64_t i0 = 0; i0 < out[0]; ++i0)
        for (int64_t i1 = 0; i1 < out[1]; ++i1)
          for (int64_t i2 = 0; i2 < out[2]; ++i2)
            for (int64_t i3 = 0; i3 < out[3]; ++i3) {
              int64_t src_index[4];
              const int64_t o[4] = {i0, i1, i2, i3};
              for (int d = 0; d < 4; ++d) src_index[perm[d]] = o[d];
              const int64_t s =
                  ((src_index[0] * 5 + src_index[1]) * 3 + src_index[2]) * 7 + src_index[3];
              REQUIRE(got[flat++] == x[s]);
            }
    }
  // Slices of a [6, 10] matrix: rows 1:6:2, columns 2:9:3, and columns 8:0:-2 (negative
  // stride), written into the middle of a larger dst (a concat slot) with a dst row stride.
  std::vector<float> m(60);
  for (int i = 0; i < 60; ++i) m[i] = static_cast<float>(i);
  for (const Isa& isa : isas()) {
    INFO(isa.name);
    const sdnn_elementwise_params s1 = make_params(SDNN_FN_COPY, {3, 3}, {8, 1}, {20, 3}, {});
    std::vector<float> got =
        run_elementwise(s1, std::vector<float>(24, -1.0f), m.data() + 12, nullptr, isa.cpu, 2);
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j) REQUIRE(got[2 + i * 8 + j] == m[(1 + 2 * i) * 10 + 2 + 3 * j]);
    REQUIRE(got[0] == -1.0f);
    REQUIRE(got[5] == -1.0f);
    const sdnn_elementwise_params s2 = make_params(SDNN_FN_COPY, {6, 4}, {4, 1}, {10, -2}, {});
    got = run_elementwise(s2, std::vector<float>(24, -1.0f), m.data() + 8, nullptr, isa.cpu);
    for (int i = 0; i < 6; ++i)
      for (int j = 0; j < 4; ++j) REQUIRE(got[i * 4 + j] == m[i * 10 + 8 - 2 * j]);
  }
}

TEST_CASE("elementwise unary functions on contiguous, strided and broadcast rows",
          "[tensor][elementwise]") {
  const std::vector<float> x = random_vector(2 * 5 * 3 * 7, -6, 6);
  const std::vector<float> col = random_vector(3, -6, 6);
  for (const Isa& isa : isas())
    for (uint32_t fn : kUnary) {
      INFO(isa.name << " " << fn_name(fn));
      // Reference: the vmath kernel on the same values (checked against long double above).
      auto f = [&](float v) {
        float y;
        sdnn_vmath_unary(fn, &y, &v, 1, fn_alpha(fn), kBeta, isa.cpu);
        return y;
      };
      // Contiguous [6, 35]; transposed [2, 3, 7, 5] view (perm 0, 2, 3, 1); broadcast [3, 17].
      const sdnn_elementwise_params c = make_params(fn, {6, 35}, {35, 1}, {35, 1}, {});
      std::vector<float> got =
          run_elementwise(c, std::vector<float>(210, kNaN), x.data(), nullptr, isa.cpu);
      for (size_t i = 0; i < 210; ++i) REQUIRE(ulp_distance(got[i], f(x[i])) == 0);
      const sdnn_elementwise_params t =
          make_params(fn, {2, 3, 7, 5}, {105, 35, 5, 1}, {105, 7, 1, 21}, {});
      got = run_elementwise(t, std::vector<float>(210, kNaN), x.data(), nullptr, isa.cpu);
      for_each_index(t, [&](int64_t od, int64_t oa, int64_t) {
        REQUIRE(ulp_distance(got[od], f(x[oa])) == 0);
      });
      const sdnn_elementwise_params b = make_params(fn, {3, 17}, {17, 1}, {1, 0}, {});
      got = run_elementwise(b, std::vector<float>(51, kNaN), col.data(), nullptr, isa.cpu);
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 17; ++j) REQUIRE(ulp_distance(got[i * 17 + j], f(col[i])) == 0);
      // Long strided rows go through several gather chunks: [2, 600] read from a [600, 2].
      const std::vector<float> big = random_vector(1200, -6, 6);
      const sdnn_elementwise_params g = make_params(fn, {2, 600}, {600, 1}, {1, 2}, {});
      got = run_elementwise(g, std::vector<float>(1200, kNaN), big.data(), nullptr, isa.cpu);
      for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 600; ++j)
          REQUIRE(ulp_distance(got[i * 600 + j], f(big[j * 2 + i])) == 0);
    }
}

// ---- REDUCE_MEAN / SOFTMAX ------------------------------------------------------------------

TEST_CASE("reduce mean over the middle axis", "[tensor][reduce]") {
  const int64_t shapes[][3] = {{3, 1000, 1}, {2, 7, 37}, {1, 100000, 1}, {5, 3, 130},
                               {1, 1, 1},    {4, 1, 9},  {2, 300, 64}};
  for (const auto& s : shapes) {
    const int64_t dims[3] = {s[0], s[1], s[2]};
    INFO("dims " << dims[0] << " x " << dims[1] << " x " << dims[2]);
    REQUIRE(sdnn_reduce_mean_units(dims) == dims[0] * dims[2]);
    const std::vector<float> x =
        random_vector(static_cast<size_t>(dims[0] * dims[1] * dims[2]), 100.0f, 101.0f);
    std::vector<float> got;
    check_splits(dims[0] * dims[2], got,
                 std::vector<float>(static_cast<size_t>(dims[0] * dims[2]), kNaN),
                 [&](float* dst, int64_t u0, int64_t u1) {
                   sdnn_reduce_mean_run(dims, dst, x.data(), u0, u1);
                 });
    for (int64_t o = 0; o < dims[0]; ++o)
      for (int64_t i = 0; i < dims[2]; ++i) {
        double sum = 0;
        for (int64_t r = 0; r < dims[1]; ++r) sum += x[(o * dims[1] + r) * dims[2] + i];
        const float want = static_cast<float>(sum / static_cast<double>(dims[1]));
        REQUIRE(ulp_distance(got[o * dims[2] + i], want) <= 1);
      }
  }
}

namespace {

// Softmax over the middle axis in long double.
std::vector<float> ref_softmax(const int64_t dims[3], const std::vector<float>& x) {
  std::vector<float> y(x.size());
  for (int64_t o = 0; o < dims[0]; ++o)
    for (int64_t i = 0; i < dims[2]; ++i) {
      auto at = [&](int64_t a) { return (o * dims[1] + a) * dims[2] + i; };
      long double m = -INFINITY;
      for (int64_t a = 0; a < dims[1]; ++a) m = std::max<long double>(m, x[at(a)]);
      long double sum = 0;
      for (int64_t a = 0; a < dims[1]; ++a) sum += expl(x[at(a)] - m);
      for (int64_t a = 0; a < dims[1]; ++a) y[at(a)] = static_cast<float>(expl(x[at(a)] - m) / sum);
    }
  return y;
}

}  // namespace

TEST_CASE("softmax over the last and a middle axis, with masks", "[tensor][softmax]") {
  const int64_t shapes[][3] = {{4, 37, 1}, {3, 20, 70}, {2, 1, 5}, {1, 513, 1}, {2, 9, 3}};
  for (const Isa& isa : isas())
    for (const auto& s : shapes) {
      const int64_t dims[3] = {s[0], s[1], s[2]};
      INFO(isa.name << " dims " << dims[0] << " x " << dims[1] << " x " << dims[2]);
      REQUIRE(sdnn_softmax_units(dims) == dims[0] * dims[2]);
      std::vector<float> x =
          random_vector(static_cast<size_t>(dims[0] * dims[1] * dims[2]), -10, 10);
      // Mask roughly a third of the entries with -3.4e38, but never a vector's first.
      for (size_t i = 0; i < x.size(); ++i)
        if (i % 3 == 1 && (static_cast<int64_t>(i) / dims[2]) % dims[1] != 0) x[i] = kMask;
      const std::vector<float> want = ref_softmax(dims, x);
      std::vector<float> got;
      check_splits(dims[0] * dims[2], got, std::vector<float>(x.size(), kNaN),
                   [&](float* dst, int64_t u0, int64_t u1) {
                     sdnn_softmax_run(dims, dst, x.data(), u0, u1, isa.cpu);
                   });
      for (size_t i = 0; i < x.size(); ++i) {
        INFO("entry " << i << " x " << x[i] << " got " << got[i] << " want " << want[i]);
        if (x[i] == kMask) REQUIRE(got[i] == 0.0f);
        REQUIRE(std::fabs(got[i] - want[i]) <= 1e-5 * want[i] + 1e-9);
      }
      // In place gives the same bits.
      std::vector<float> inplace = x;
      sdnn_softmax_run(dims, inplace.data(), inplace.data(), 0, dims[0] * dims[2], isa.cpu);
      REQUIRE(inplace == got);
    }
}

TEST_CASE("softmax of -inf, +inf and all-mask vectors behaves like ONNX Runtime",
          "[tensor][softmax]") {
  // Rows: all -inf -> NaN; all -FLT_MAX -> uniform; finite + masks -> masks exactly 0;
  // a +inf -> NaN; a NaN -> NaN. As rows (inner 1) and as columns (inner 5).
  const int64_t axis = 4;
  const std::vector<std::vector<float>> rows = {{-kInf, -kInf, -kInf, -kInf},
                                                {kMask, kMask, kMask, kMask},
                                                {1, 2, kMask, kMask},
                                                {kInf, 1, 2, 3},
                                                {0, kNaN, 1, 2}};
  for (const Isa& isa : isas())
    for (int64_t inner : {1, 5}) {
      INFO(isa.name << " inner " << inner);
      const int64_t outer = static_cast<int64_t>(rows.size());
      std::vector<float> x(static_cast<size_t>(outer * axis * inner));
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t a = 0; a < axis; ++a)
          for (int64_t i = 0; i < inner; ++i) x[(o * axis + a) * inner + i] = rows[o][a];
      const int64_t dims[3] = {outer, axis, inner};
      std::vector<float> y(x.size(), 0.0f);
      sdnn_softmax_run(dims, y.data(), x.data(), 0, outer * inner, isa.cpu);
      for (int64_t i = 0; i < inner; ++i) {
        auto at = [&](int64_t o, int64_t a) { return y[(o * axis + a) * inner + i]; };
        for (int64_t a = 0; a < axis; ++a) {
          CHECK(std::isnan(at(0, a)));
          CHECK(at(1, a) == 0.25f);
          CHECK(std::isnan(at(3, a)));
          CHECK(std::isnan(at(4, a)));
        }
        CHECK(std::fabs(at(2, 0) - 0.268941421f) < 1e-6f);
        CHECK(std::fabs(at(2, 1) - 0.731058579f) < 1e-6f);
        CHECK(at(2, 2) == 0.0f);
        CHECK(at(2, 3) == 0.0f);
      }
    }
}

// ---- MATMUL ---------------------------------------------------------------------------------

namespace {

struct MatmulCase {
  int64_t m, n, k;
  int64_t lda, ldb, ldc;
  Shape batch, a_batch, b_batch;  // batch dims of dst, a, b (a / b broadcast to dst's)
  bool b_const;
};

// Checks one case on one variant: every element within the float accumulation bound of a double
// reference, and bitwise identical under unit splits. Pads of dst (ldc > n) stay untouched.
void check_matmul(const MatmulCase& c, uint32_t cpu) {
  INFO("m " << c.m << " n " << c.n << " k " << c.k << " lda " << c.lda << " ldb " << c.ldb
            << " ldc " << c.ldc << " batch rank " << c.batch.size()
            << (c.b_const ? " b_const" : ""));
  const int64_t a_items = numel(c.a_batch), b_items = numel(c.b_batch), items = numel(c.batch);
  const int64_t a_size = c.m * c.lda, b_size = c.k * c.ldb, c_size = c.m * c.ldc;
  const std::vector<float> a = random_vector(static_cast<size_t>(a_items * a_size), -1, 1);
  const std::vector<float> b = random_vector(static_cast<size_t>(b_items * b_size), -1, 1);
  sdnn_matmul_params p{};
  p.m = c.m;
  p.n = c.n;
  p.k = c.k;
  p.lda = c.lda;
  p.ldb = c.ldb;
  p.ldc = c.ldc;
  p.batch_rank = static_cast<uint32_t>(c.batch.size());
  const Shape as = broadcast_strides(c.a_batch, c.batch),
              bs = broadcast_strides(c.b_batch, c.batch), cs = broadcast_strides(c.batch, c.batch);
  for (size_t d = 0; d < c.batch.size(); ++d) {
    p.batch_dims[d] = c.batch[d];
    p.a_batch_strides[d] = as[d] * a_size;
    p.b_batch_strides[d] = bs[d] * b_size;
    p.c_batch_strides[d] = cs[d] * c_size;
  }
  p.b_const = c.b_const ? b.data() : nullptr;
  const int64_t units = sdnn_matmul_units(&p);
  REQUIRE(units == items * ((c.m + 15) / 16));
  std::vector<float> got;
  check_splits(units, got, std::vector<float>(static_cast<size_t>(items * c_size), -7.0f),
               [&](float* dst, int64_t u0, int64_t u1) {
                 sdnn_matmul_run(&p, dst, a.data(), c.b_const ? nullptr : b.data(), u0, u1, cpu);
               });
  for (int64_t item = 0; item < items; ++item) {
    int64_t rest = item, ao = 0, bo = 0;
    for (int d = static_cast<int>(c.batch.size()) - 1; d >= 0; --d) {
      const int64_t i = rest % c.batch[d];
      rest /= c.batch[d];
      ao += i * p.a_batch_strides[d];
      bo += i * p.b_batch_strides[d];
    }
    for (int64_t i = 0; i < c.m; ++i)
      for (int64_t j = 0; j < c.ldc; ++j) {
        const float g = got[item * c_size + i * c.ldc + j];
        if (j >= c.n) {
          REQUIRE(g == -7.0f);
          continue;
        }
        double sum = 0, mag = 0;
        for (int64_t kk = 0; kk < c.k; ++kk) {
          const double t = static_cast<double>(a[ao + i * c.lda + kk]) * b[bo + kk * c.ldb + j];
          sum += t;
          mag += std::fabs(t);
        }
        const double bound = (static_cast<double>(c.k) + 2) * 6e-8 * mag + 1e-30;
        if (!(std::fabs(g - sum) <= bound))
          FAIL("C[" << item << "][" << i << "][" << j << "] = " << g << ", want " << sum);
      }
  }
}

}  // namespace

TEST_CASE("matmul over odd sizes", "[tensor][matmul]") {
  const int64_t sizes[] = {1, 3, 16, 17, 33, 64, 128};
  for (const Isa& isa : isas()) {
    INFO(isa.name);
    for (int64_t m : sizes)
      for (int64_t n : sizes)
        for (int64_t k : sizes) check_matmul({m, n, k, k, n, n, {}, {}, {}, false}, isa.cpu);
  }
}

TEST_CASE("matmul with batch broadcast, b_const, leading dims and K blocks", "[tensor][matmul]") {
  for (const Isa& isa : isas()) {
    INFO(isa.name);
    // a batch [2, 3], b batch [1, 3] (broadcast over the first dim).
    check_matmul({17, 33, 16, 16, 33, 33, {2, 3}, {2, 3}, {1, 3}, false}, isa.cpu);
    check_matmul({40, 20, 9, 9, 20, 20, {2, 3}, {2, 3}, {1, 3}, false}, isa.cpu);
    // a broadcast instead, and a rank-3 batch.
    check_matmul({5, 31, 7, 7, 31, 31, {2, 2, 2}, {1, 2, 1}, {2, 2, 2}, false}, isa.cpu);
    // A weight: b_const, shared by every batch item.
    check_matmul({33, 47, 65, 65, 47, 47, {3}, {3}, {1}, true}, isa.cpu);
    check_matmul({1, 1, 1, 1, 1, 1, {}, {}, {}, true}, isa.cpu);
    // Leading dimensions larger than the rows (sub-matrix views; dst pads untouched).
    check_matmul({19, 21, 23, 30, 40, 50, {2}, {2}, {2}, false}, isa.cpu);
    // Several K blocks (K > 256), a long thin and a wide one.
    check_matmul({20, 35, 600, 600, 35, 35, {}, {}, {}, false}, isa.cpu);
    check_matmul({3, 300, 257, 257, 300, 300, {}, {}, {}, false}, isa.cpu);
    check_matmul({64, 1, 1000, 1000, 1, 1, {}, {}, {}, true}, isa.cpu);
  }
}

// ---- LAYERNORM ------------------------------------------------------------------------------

namespace {

// Checks one layer norm on one variant against a double reference (real tokens only).
void check_layernorm(int64_t tokens, int64_t features, int64_t vl, bool blocked, bool with_beta,
                     uint32_t cpu) {
  INFO("tokens " << tokens << " features " << features << " vl " << vl
                 << (blocked ? " blocked" : " rows") << (with_beta ? "" : " no beta"));
  const std::vector<float> gamma = random_vector(static_cast<size_t>(features), 0.5f, 2.0f);
  const std::vector<float> beta = random_vector(static_cast<size_t>(features), -1.0f, 1.0f);
  sdnn_norm_params p{};
  p.tokens = tokens;
  p.features = features;
  p.vl = vl;
  p.blocked = blocked ? 1u : 0u;
  p.epsilon = 1e-5f;
  p.gamma = gamma.data();
  p.beta = with_beta ? beta.data() : nullptr;
  const int64_t blocks = (tokens + vl - 1) / vl;
  const int64_t padded = blocked ? blocks * vl : tokens;
  // x[t][f] with a large common offset (the two-pass variance must not cancel), at its layout
  // position; pad columns are zero, as after a pack.
  std::vector<float> rows = random_vector(static_cast<size_t>(tokens * features), 99.0f, 101.0f);
  auto pos = [&](int64_t t, int64_t f) {
    return blocked ? (t / vl) * features * vl + f * vl + t % vl : t * features + f;
  };
  std::vector<float> x(static_cast<size_t>(padded * features), 0.0f);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t f = 0; f < features; ++f) x[pos(t, f)] = rows[t * features + f];
  const int64_t units = sdnn_layernorm_units(&p);
  REQUIRE(units == (blocked ? blocks : tokens));
  std::vector<float> got;
  check_splits(units, got, std::vector<float>(x.size(), kNaN),
               [&](float* dst, int64_t u0, int64_t u1) {
                 sdnn_layernorm_run(&p, dst, x.data(), u0, u1, cpu);
               });
  for (int64_t t = 0; t < tokens; ++t) {
    double mean = 0, var = 0;
    for (int64_t f = 0; f < features; ++f) mean += rows[t * features + f];
    mean /= static_cast<double>(features);
    for (int64_t f = 0; f < features; ++f)
      var += (rows[t * features + f] - mean) * (rows[t * features + f] - mean);
    var /= static_cast<double>(features);
    const double r = 1.0 / std::sqrt(var + 1e-5);
    for (int64_t f = 0; f < features; ++f) {
      const double want =
          (rows[t * features + f] - mean) * r * gamma[f] + (with_beta ? beta[f] : 0.0);
      const float g = got[pos(t, f)];
      if (!(std::fabs(g - want) <= 2e-5 * (std::fabs(gamma[f]) + 1.0)))
        FAIL("token " << t << " feature " << f << ": " << g << ", want " << want);
    }
  }
  // In place gives the same bits.
  std::vector<float> inplace = x;
  sdnn_layernorm_run(&p, inplace.data(), inplace.data(), 0, units, cpu);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t f = 0; f < features; ++f) REQUIRE(inplace[pos(t, f)] == got[pos(t, f)]);
}

}  // namespace

TEST_CASE("layer norm, row-major and FeatureBlocked", "[tensor][layernorm]") {
  for (const Isa& isa : isas()) {
    INFO(isa.name);
    for (int64_t features : {1, 7, 16, 33, 768}) {
      check_layernorm(5, features, 16, false, true, isa.cpu);
      for (int64_t vl : {8, 16}) {
        check_layernorm(37, features, vl, true, true, isa.cpu);
        check_layernorm(vl, features, vl, true, false, isa.cpu);
      }
    }
    check_layernorm(3, 45, 16, false, false, isa.cpu);
  }
}

TEST_CASE("tensor step unit counts", "[tensor]") {
  sdnn_elementwise_params e =
      make_params(SDNN_FN_ADD, {2, 3, 4}, {12, 4, 1}, {12, 4, 1}, {0, 0, 1});
  CHECK(sdnn_elementwise_units(&e) == 6);
  e.rank = 1;
  CHECK(sdnn_elementwise_units(&e) == 1);
  const int64_t dims[3] = {3, 5, 7};
  CHECK(sdnn_reduce_mean_units(dims) == 21);
  CHECK(sdnn_softmax_units(dims) == 21);
  sdnn_matmul_params m{};
  m.m = 33;
  m.batch_rank = 2;
  m.batch_dims[0] = 2;
  m.batch_dims[1] = 3;
  CHECK(sdnn_matmul_units(&m) == 18);
  sdnn_norm_params n{};
  n.tokens = 37;
  n.vl = 16;
  CHECK(sdnn_layernorm_units(&n) == 37);
  n.blocked = 1;
  CHECK(sdnn_layernorm_units(&n) == 3);
}
