// test_window_internals.cpp — the windowed ops (window.c) and clip (ops.c) called directly, and
// the plan check of their parameters (plan_check.c), linked statically.
//
//   - every case of window_cases.h, its units cut into 1, 2, 3, 5 and 16 contiguous ranges run
//     in reverse order (as threads would, in any order), against the double-precision reference;
//     so small shapes see the splits the executor only gives big ones;
//   - the unit counts are the documented ones (window.h);
//   - sdnn_plan_is_valid accepts each op's valid step and rejects each bad parameter.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "window_reference.hpp"

extern "C" {
#include "ops.h"
#include "plan_check.h"
#include "window.h"
}

using sdnn_test::window_input;
using sdnn_test::window_mismatch;
using sdnn_test::window_reference;

namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();

// A plan of one step from input 0 to output 0 (the pointers must outlive it).
sdnn_plan single_step_plan(const sdnn_tensor_info* in, const sdnn_tensor_info* out, const sdnn_step* step) {
  sdnn_plan plan{};
  plan.magic = SDNN_PLAN_MAGIC;
  plan.version = SDNN_PLAN_VERSION;
  plan.num_inputs = plan.num_outputs = plan.num_steps = 1;
  plan.inputs = in;
  plan.outputs = out;
  plan.steps = step;
  return plan;
}

// The CPU bits a plan may carry that this CPU can run (0: the portable code), each with the units
// run whole (1 part) and split like 3 threads.
std::vector<std::pair<uint32_t, int>> cpu_parts() {
  std::vector<std::pair<uint32_t, int>> out;
  std::vector<uint32_t> cpus = {0};
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) cpus.push_back(SDNN_CPU_AVX2);
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2"))
    cpus.push_back(SDNN_CPU_AVX2 | SDNN_CPU_AVX512F);
  for (uint32_t cpu : cpus)
    for (int parts : {1, 3, 7}) out.emplace_back(cpu, parts);
  return out;
}

// Runs a pad_planes / crop step on `x` for every cpu_parts() entry into a NaN-filled buffer and
// requires exactly `want`.
void check_planes_run(const sdnn_step& step, const std::vector<float>& x, const std::vector<float>& want) {
  const int64_t units = sdnn_window_units(&step);
  std::vector<float> scratch(static_cast<size_t>(sdnn_window_scratch_floats(step.conv)) + 1);
  for (const auto& [cpu, parts] : cpu_parts()) {
    // Threads run their parts at once: every float must be written by exactly one part (each part
    // alone into a NaN-filled buffer; all values written are finite).
    std::vector<int> writes(want.size(), 0);
    for (int t = 0; t < parts; ++t) {
      std::vector<float> alone(want.size(), kNaN);
      sdnn_planes_run(&step, x.data(), nullptr, alone.data(), scratch.data(), units * t / parts,
                      units * (t + 1) / parts, cpu);
      for (size_t i = 0; i < alone.size(); ++i) writes[i] += !std::isnan(alone[i]);
    }
    const auto twice = std::find_if(writes.begin(), writes.end(), [](int n) { return n != 1; });
    INFO(parts << " parts, cpu " << cpu << ": element " << (twice - writes.begin()) << " written "
               << (twice == writes.end() ? 1 : *twice) << " times");
    REQUIRE(twice == writes.end());
    std::vector<float> dst(want.size(), kNaN);
    for (int t = parts - 1; t >= 0; --t)
      sdnn_planes_run(&step, x.data(), nullptr, dst.data(), scratch.data(), units * t / parts, units * (t + 1) / parts,
                      cpu);
    INFO(parts << " parts, cpu " << cpu);
    for (size_t i = 0; i < dst.size(); ++i) {
      INFO("element " << i);
      REQUIRE(dst[i] == want[i]);
    }
  }
}

int64_t expected_units(const tw_case& k) {
  const tw_geometry& g = k.g;
  switch (k.op) {
    case SDNN_STEP_IM2COL:
      return g.batch * (TM_PADDED(tw_out_h(&k) * tw_out_w(&k), k.vl) / k.vl) * g.c;
    case SDNN_STEP_GLOBAL_AVGPOOL:
      return g.batch * g.c;
    default:
      return g.batch * g.c * tw_out_h(&k);
  }
}

}  // namespace

TEST_CASE("window ops match the reference for any split of their units", "[window]") {
  for (int index = 0; index < TW_NUM_CASES; ++index) {
    const tw_case& k = tw_cases[index];
    INFO("case " << k.name);
    const std::vector<float> x = window_input(index, 3);
    const sdnn_test::WindowExpected want = window_reference(index, x);
    const std::vector<float> w = sdnn_test::window_weights(index);
    const std::vector<float> b = sdnn_test::window_biases(index);
    const sdnn_window_params p = tw_params(&k, w.data(), b.data());
    sdnn_step step{};
    step.op = k.op;
    step.conv = &p;
    step.alpha = k.lo;
    step.beta = k.hi;
    const int64_t units =
        k.op == SDNN_STEP_CLIP ? static_cast<int64_t>(x.size()) : sdnn_window_units(&step);
    if (k.op != SDNN_STEP_CLIP) CHECK(units == expected_units(k));

    // The plan's CPU bits: the portable code, and AVX-512 (a 3-wide stride-2 max pool) where the
    // CPU has it.
    const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2");
    for (uint32_t cpu : {0u, static_cast<uint32_t>(SDNN_CPU_AVX512F)}) {
      if (cpu && !avx512) continue;
      for (int64_t parts : {1, 2, 3, 5, 16}) {
        INFO("parts " << parts << " cpu " << cpu);
        std::vector<float> y(want.value.size(), -777.0f);
        if (k.in_place) y = x;
        for (int64_t part = parts - 1; part >= 0; --part) {
          const int64_t u0 = units * part / parts, u1 = units * (part + 1) / parts;
          if (k.op == SDNN_STEP_CLIP)
            sdnn_clip_range(y.data(), k.in_place ? y.data() : x.data(), k.lo, k.hi, u0, u1);
          else
            sdnn_window_run(&step, x.data(), y.data(), u0, u1, cpu);
        }
        CHECK(window_mismatch(y, want) == "");
      }
    }
  }
}

TEST_CASE("window work estimates scale with the step", "[window]") {
  // The executor wakes threads by work: big cases must count as big, tiny ones as tiny.
  for (int index = 0; index < TW_NUM_CASES; ++index) {
    const tw_case& k = tw_cases[index];
    if (k.op == SDNN_STEP_CLIP) continue;
    const sdnn_window_params p = tw_params(&k, nullptr, nullptr);
    sdnn_step step{};
    step.op = k.op;
    step.conv = &p;
    INFO("case " << k.name);
    const std::string name = k.name;
    const int64_t work = sdnn_window_work(&step);
    CHECK(work >= tw_out_floats(&k));
    if (name.find("big") != std::string::npos) CHECK(work >= 3 * (1 << 13));
    if (name.find("1x1") != std::string::npos) CHECK(work < (1 << 13));
  }
}

namespace {

// A one-step plan: input 0 -> output 0 (or arena), sized for the case, valid as built.
struct OneStepPlan {
  int64_t in_dims[1], out_dims[1];
  sdnn_tensor_info in, out;
  std::vector<float> weights, biases;
  sdnn_window_params params;
  sdnn_step step;
  sdnn_plan plan;

  explicit OneStepPlan(int index) {
    const tw_case& k = tw_cases[index];
    in_dims[0] = tw_in_floats(&k);
    out_dims[0] = tw_out_floats(&k);
    in = {"x", 1, in_dims, SDNN_F32};
    out = {"y", 1, out_dims, SDNN_F32};
    weights = sdnn_test::window_weights(index);
    biases = sdnn_test::window_biases(index);
    params = tw_params(&k, weights.empty() ? nullptr : weights.data(),
                       biases.empty() ? nullptr : biases.data());
    step = sdnn_step{};
    step.op = k.op;
    step.src0 = {SDNN_BUF_INPUT, 0, 0};
    step.dst = {SDNN_BUF_OUTPUT, 0, 0};
    if (k.op == SDNN_STEP_CLIP) {
      step.dims[0] = out_dims[0];
      step.alpha = k.lo;
      step.beta = k.hi;
    } else {
      step.conv = &params;
    }
    plan = single_step_plan(&in, &out, &step);
    plan.arena_bytes = static_cast<uint64_t>(in_dims[0] + out_dims[0]) * 4 + 64;
  }
  OneStepPlan(const OneStepPlan&) = delete;
  OneStepPlan& operator=(const OneStepPlan&) = delete;

  bool valid() const { return sdnn_plan_is_valid(&plan) != 0; }
};

int case_named(const std::string& name) {
  for (int i = 0; i < TW_NUM_CASES; ++i)
    if (name == tw_cases[i].name) return i;
  FAIL("no case " << name);
  return -1;
}

using Mutation = std::function<void(OneStepPlan&)>;

// Every mutation must make the plan of case `name` invalid; the unmutated plan is valid.
void check_rejected(const std::string& name,
                    const std::vector<std::pair<std::string, Mutation>>& mutations) {
  const int index = case_named(name);
  {
    OneStepPlan plan(index);
    INFO("case " << name << " unmodified");
    CHECK(plan.valid());
  }
  for (const auto& [what, mutate] : mutations) {
    OneStepPlan plan(index);
    mutate(plan);
    INFO("case " << name << ": " << what);
    CHECK_FALSE(plan.valid());
  }
}

#define MUTATION(expr)                   \
  {                                      \
#expr, [](OneStepPlan & t) { expr; } \
  }

// Parameter errors every window step with a kernel checks.
std::vector<std::pair<std::string, Mutation>> window_mutations() {
  return {
      MUTATION(t.step.conv = nullptr),
      MUTATION(t.params.batch = 0),
      MUTATION(t.params.channels = -1),
      MUTATION(t.params.in_h = 0),
      MUTATION(t.params.in_w = -3),
      MUTATION(t.params.out_h = 0),
      MUTATION(t.params.out_w = -1),
      MUTATION(t.params.kernel_h = 0),
      MUTATION(t.params.kernel_w = -2),
      MUTATION(t.params.stride_h = 0),
      MUTATION(t.params.stride_w = -1),
      MUTATION(t.params.dilation_h = 0),
      MUTATION(t.params.dilation_w = -1),
      MUTATION(t.params.pad_top = -1),
      MUTATION(t.params.pad_left = -2),
      MUTATION(t.params.stride_w = INT64_C(1) << 31),
      MUTATION(t.params.pad_top = INT64_C(1) << 40),
      MUTATION(t.params.kernel_h = INT64_MAX),
      MUTATION(t.params.act = 7),
      MUTATION((t.params.batch = t.params.channels = t.params.in_h = t.params.in_w =
                    1 << 30)),  // overflow
      MUTATION((t.params.out_h = t.params.out_w = t.params.kernel_h = t.params.kernel_w = 1 << 30)),
      MUTATION(t.in_dims[0] -= 1),         // source extent beyond the input
      MUTATION(t.out_dims[0] -= 1),        // destination extent beyond the output
      MUTATION(t.step.dst = t.step.src0),  // writes the input
      MUTATION(
          (t.step.src0 = {SDNN_BUF_ARENA, 0, 0}, t.step.dst = {SDNN_BUF_ARENA, 0, 64})),  // overlap
      MUTATION(t.step.dst.offset = 2),  // not float aligned
      MUTATION(t.step.src0.index = 1),  // no input 1
  };
}

}  // namespace

TEST_CASE("plan check rejects bad window parameters", "[window][plan]") {
  auto mutations = window_mutations();
  mutations.push_back(MUTATION(t.params.vl = 4));
  mutations.push_back(MUTATION(t.params.vl = 0));
  mutations.push_back(MUTATION(t.params.vl = 32));
  mutations.push_back(MUTATION(t.params.act = SDNN_ACT_RELU));  // im2col applies no activation
  check_rejected("im2col_odd_s2_asym_vl8", mutations);
  check_rejected("im2col_big_vl16", mutations);

  mutations = window_mutations();
  mutations.push_back(MUTATION(t.params.weights = nullptr));
  mutations.push_back(MUTATION(t.params.act = SDNN_ACT_RELU6 + 1));
  check_rejected("dw3x3_s1_p1_relu", mutations);

  mutations = window_mutations();
  mutations.push_back(MUTATION(t.params.act = SDNN_ACT_RELU));
  check_rejected("max3x3_s2_p1", mutations);
  mutations.push_back(MUTATION(t.params.count_include_pad = 2));
  check_rejected("avg3x3_s1_p1_incl", mutations);

  check_rejected("gap_7x7", {MUTATION(t.step.conv = nullptr), MUTATION(t.params.batch = 0),
                             MUTATION(t.params.channels = 0), MUTATION(t.params.in_h = -1),
                             MUTATION(t.params.in_w = 0), MUTATION(t.params.act = SDNN_ACT_RELU),
                             MUTATION(t.out_dims[0] -= 1), MUTATION(t.in_dims[0] -= 1),
                             MUTATION(t.step.dst = t.step.src0)});

  check_rejected(
      "clip_small",
      {MUTATION(t.step.alpha = kNaN), MUTATION(t.step.beta = kNaN), MUTATION(t.step.dims[0] = -1),
       MUTATION(t.step.dims[0] += 1),
       MUTATION((t.step.src0 = {SDNN_BUF_ARENA, 0, 0}, t.step.dst = {SDNN_BUF_ARENA, 0, 4}))});
}

TEST_CASE("plan check accepts the valid variants of window parameters", "[window][plan]") {
  const auto accepted = [](const std::string& name, const Mutation& mutate) {
    OneStepPlan plan(case_named(name));
    mutate(plan);
    return plan.valid();
  };
  // Depthwise: no bias, each activation.
  CHECK(accepted("dw3x3_s1_p1_relu", [](OneStepPlan& t) { t.params.bias = nullptr; }));
  for (uint32_t act : {SDNN_ACT_NONE, SDNN_ACT_RELU, SDNN_ACT_RELU6})
    CHECK(accepted("dw3x3_s1_p1_relu", [act](OneStepPlan& t) { t.params.act = act; }));
  // Output sizes are the compiler's business: a smaller output than the formula gives is fine.
  CHECK(accepted("max3x3_s2_p1", [](OneStepPlan& t) { t.params.out_h -= 1; }));
  // Global average pool ignores the window fields.
  CHECK(accepted("gap_7x7", [](OneStepPlan& t) {
    t.params.kernel_h = 0;
    t.params.stride_w = -1;
    t.params.out_h = 0;
  }));
  // Windowed steps between arena buffers, disjoint.
  CHECK(accepted("dw5x5_s2_p2", [](OneStepPlan& t) {
    t.step.src0 = {SDNN_BUF_ARENA, 0, 0};
    t.step.dst = {SDNN_BUF_ARENA, 0, static_cast<uint64_t>(t.in_dims[0]) * 4};
  }));
  // Clip: in place, bounds crossed or infinite.
  CHECK(accepted("clip_small", [](OneStepPlan& t) {
    t.step.src0 = {SDNN_BUF_OUTPUT, 0, 0};
    t.step.alpha = -std::numeric_limits<float>::infinity();
    t.step.beta = 6.0f;
  }));
  CHECK(accepted("clip_small", [](OneStepPlan& t) {
    t.step.alpha = 1.0f;
    t.step.beta = -1.0f;
  }));
}

// An ELEMENTWISE copy input [60] -> output [24] walks its source with strides of either sign
// (a Slice with a negative step): the check bounds the walk on both sides of its base.
TEST_CASE("plan check bounds strided elementwise walks, negative strides included", "[tensor][plan]") {
  int64_t in_dims[1] = {60}, out_dims[1] = {24}, big_dims[1] = {INT64_C(1) << 40};
  const sdnn_tensor_info in = {"x", 1, in_dims, SDNN_F32}, out = {"y", 1, out_dims, SDNN_F32},
                         big = {"y", 1, big_dims, SDNN_F32};
  // One COPY step from input float `src_float` into the output (`big` for a huge one).
  const auto valid = [&](const sdnn_elementwise_params& p, uint64_t src_float, const sdnn_tensor_info& dst) {
    sdnn_step step{};
    step.op = SDNN_STEP_ELEMENTWISE;
    step.src0 = {SDNN_BUF_INPUT, 0, src_float * 4};
    step.dst = {SDNN_BUF_OUTPUT, 0, 0};
    step.params = &p;
    const sdnn_plan plan = single_step_plan(&in, &dst, &step);
    return sdnn_plan_is_valid(&plan) != 0;
  };
  // A [6, 4] walk of the [60] input into the [24] output.
  const auto walk = [&](int64_t src_stride0, int64_t src_stride1, uint64_t src_float, int64_t dst_stride0) {
    sdnn_elementwise_params p{};
    p.fn = SDNN_FN_COPY;
    p.rank = 2;
    p.dims[0] = 6;
    p.dims[1] = 4;
    p.dst_strides[0] = dst_stride0;
    p.dst_strides[1] = 1;
    p.src0_strides[0] = src_stride0;
    p.src0_strides[1] = src_stride1;
    return valid(p, src_float, out);
  };
  CHECK(walk(10, 2, 0, 4));         // rows 0..50, columns 0..6: inside
  CHECK(walk(10, -2, 8, 4));        // columns 8, 6, 4, 2 of each row: inside
  CHECK(walk(10, -2, 6, 4));        // down to column 0
  CHECK_FALSE(walk(10, -2, 5, 4));  // column -1: before the buffer
  CHECK_FALSE(walk(10, 2, 54, 4));  // past the end
  CHECK(walk(-10, 1, 50, 4));       // rows backwards from row 5
  CHECK_FALSE(walk(-10, 1, 49, 4)); // row -1
  CHECK_FALSE(walk(10, 1, 0, -4));  // dst rows before the output's start
  CHECK_FALSE(walk(10, 1, 0, 5));   // dst rows past the output's end
  // A walk whose extent wraps 64 bits when summed (each term fits on its own) is rejected.
  sdnn_elementwise_params wrap{};
  wrap.fn = SDNN_FN_COPY;
  wrap.rank = 2;
  wrap.dims[0] = (INT64_C(1) << 25) + 1;
  wrap.dims[1] = (INT64_C(1) << 24) + 1;
  wrap.dst_strides[0] = 1;
  wrap.dst_strides[1] = (INT64_C(1) << 40) - 1;
  CHECK_FALSE(valid(wrap, 0, big));
}

// A crop's geometry: batch items, channels, output rows, grid row width, output row width, and
// for a strided crop (a strided 1x1 conv's subsampling) the strides and the grid's rows (0: h).
// Output (y, x) is grid (y * sh, x * sw).
struct CropGeometry {
  int64_t batch, c, h, wg, w, sh = 1, sw = 1, hg = 0;
  int64_t rows() const { return hg ? hg : h; }
  int64_t pos(int64_t y, int64_t x) const { return y * sh * wg + x * sw; }
};

// The geometry every window step's parameters start from: batch x c planes h x w into oh x ow.
static sdnn_window_params window_params(int64_t batch, int64_t c, int64_t h, int64_t w, int64_t oh, int64_t ow) {
  sdnn_window_params p{};
  p.batch = batch;
  p.channels = c;
  p.in_h = h;
  p.in_w = w;
  p.out_h = oh;
  p.out_w = ow;
  return p;
}

static sdnn_window_params crop_params(const CropGeometry& g, int64_t vl, uint32_t by_blocks) {
  sdnn_window_params p = window_params(g.batch, g.c, g.rows(), g.wg, g.h, g.w);
  p.kernel_h = p.kernel_w = p.dilation_h = p.dilation_w = 1;
  p.stride_h = g.sh;
  p.stride_w = g.sw;
  p.vl = vl;
  p.by_blocks = by_blocks;
  return p;
}

// CROP, with and without a residual epilogue: grid [batch][ceil(H*Wg/VL)][C][VL] -> compact
// [batch][ceil(H*W/VL)][C][VL], dst = act(grid + residual) over W < Wg columns; pad lanes of the
// last block 0. Rows path (VL 8 and 16), the AVX-512 and the AVX2 block paths, units split like
// threads, the residual in its own buffer or in place (dst == residual).
TEST_CASE("crop adds a residual and applies the activation on both paths", "[window][crop]") {
  using Geometry = CropGeometry;
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2");
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (!avx512) WARN("no AVX-512F on this CPU: the AVX-512 block crop is not tested");
  // The AVX-512 path's ways: a vector's 16 outputs from one or two grid blocks (most), from three
  // ({1, 4, 4, 20, 8}: block 1 spans grid blocks 1-3), or gathered from more ({1, 4, 20, 20, 1}).
  // Strided (subsampling) crops: 9x13 -> 5x7 and 5x13 -> 2x3 (stride 3), ResNet's 56 -> 28,
  // vectors across rows of 7 (gathered), a column stride spanning more than 3 blocks (gathered).
  // The AVX2 path's 8 lanes from three grid blocks, each supplying some ({1, 4, 2, 21, 8, 1, 2}:
  // row 1 starts at grid position 21, its column stride 2 spans positions 21-35).
  for (const Geometry& g : {Geometry{1, 3, 5, 7, 5}, Geometry{2, 17, 9, 11, 9}, Geometry{1, 16, 1, 20, 1},
                            Geometry{2, 8, 14, 16, 14}, Geometry{1, 5, 6, 58, 56}, Geometry{1, 4, 3, 9, 7},
                            Geometry{1, 4, 4, 20, 8}, Geometry{1, 4, 20, 20, 1}, Geometry{2, 5, 5, 13, 7, 2, 2, 9},
                            Geometry{1, 6, 2, 13, 3, 3, 3, 5}, Geometry{1, 3, 28, 56, 28, 2, 2, 56},
                            Geometry{1, 4, 7, 14, 7, 2, 2, 14}, Geometry{1, 3, 3, 40, 4, 2, 9, 6},
                            Geometry{1, 4, 2, 21, 8, 1, 2}})
    for (int64_t vl : {8, 16})
      for (uint32_t by_blocks : {0u, 1u})
        for (int residual = 0; residual < 3; ++residual)  // none, separate, in place
          for (uint32_t act : {SDNN_ACT_NONE, SDNN_ACT_RELU, SDNN_ACT_RELU6}) {
            if (by_blocks && (vl == 16 ? !avx512 : !avx2)) continue;
            if (!residual && act != SDNN_ACT_NONE) continue;
            INFO("batch " << g.batch << " c " << g.c << " h " << g.h << " grid w " << g.wg << " w " << g.w << " strides "
                          << g.sh << "x" << g.sw << " grid h " << g.rows() << " vl " << vl << " by_blocks " << by_blocks << " residual " << residual << " act " << act);
            sdnn_window_params p = crop_params(g, vl, by_blocks);
            p.residual = residual != 0;
            p.act = act;
            sdnn_step step{};
            step.op = SDNN_STEP_CROP;
            step.conv = &p;
            const int64_t in_blocks = (g.rows() * g.wg + vl - 1) / vl, out_blocks = (g.h * g.w + vl - 1) / vl;
            const int64_t in_item = in_blocks * g.c * vl, out_item = out_blocks * g.c * vl;
            std::vector<float> grid(static_cast<size_t>(g.batch * in_item)), res(static_cast<size_t>(g.batch * out_item));
            for (size_t i = 0; i < grid.size(); ++i) grid[i] = static_cast<float>((i * 7919) % 23) - 11.0f;
            for (size_t i = 0; i < res.size(); ++i) res[i] = static_cast<float>((i * 104729) % 19) * 0.5f - 4.0f;
            const auto at = [&](int64_t b, int64_t ch, int64_t pos, int64_t item) {
              return static_cast<size_t>(b * item + (pos / vl) * g.c * vl + ch * vl + pos % vl);
            };
            std::vector<float> want(res.size(), 0.0f);
            for (int64_t b = 0; b < g.batch; ++b)
              for (int64_t ch = 0; ch < g.c; ++ch)
                for (int64_t y = 0; y < g.h; ++y)
                  for (int64_t x = 0; x < g.w; ++x) {
                    float v = grid[at(b, ch, g.pos(y, x), in_item)];
                    if (residual) v += res[at(b, ch, y * g.w + x, out_item)];
                    if (act != SDNN_ACT_NONE) v = std::max(v, 0.0f);
                    if (act == SDNN_ACT_RELU6) v = std::min(v, 6.0f);
                    want[at(b, ch, y * g.w + x, out_item)] = v;
                  }
            const int64_t units = sdnn_window_units(&step);
            std::vector<float> scratch(static_cast<size_t>(sdnn_window_scratch_floats(&p)));
            for (const auto& [cpu, parts] : cpu_parts()) {
              std::vector<float> dst = residual == 2 ? res : std::vector<float>(res.size(), kNaN);
              const float* r = residual == 2 ? dst.data() : residual ? res.data() : nullptr;
              for (int t = parts - 1; t >= 0; --t)
                sdnn_planes_run(&step, grid.data(), r, dst.data(), scratch.data(), units * t / parts,
                                units * (t + 1) / parts, cpu);
              INFO(parts << " parts, cpu " << cpu);
              for (size_t i = 0; i < dst.size(); ++i) {
                INFO("element " << i);
                REQUIRE(dst[i] == want[i]);
              }
            }
          }
}

// CROP to NCHW (dst_nchw): grid [batch][ceil(H*Wg/VL)][C][VL] -> [batch][C][H][W], nothing
// written past it or between planes (dst is exactly the tensor, inside a NaN-filled guard zone),
// on the rows path and the AVX-512 and AVX2 block paths (masked stores of each block's real
// lanes), units split like threads.
TEST_CASE("crop to NCHW writes every plane exactly on both paths", "[window][crop]") {
  using Geometry = CropGeometry;
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2");
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  for (const Geometry& g : {Geometry{1, 3, 5, 7, 5}, Geometry{2, 17, 9, 11, 9}, Geometry{1, 16, 1, 20, 1},
                            Geometry{1, 5, 6, 58, 56}, Geometry{2, 4, 4, 20, 8}, Geometry{1, 4, 20, 20, 1},
                            Geometry{1, 8, 112, 115, 112}, Geometry{2, 5, 5, 13, 7, 2, 2, 9},
                            Geometry{1, 4, 7, 14, 7, 2, 2, 14}, Geometry{1, 3, 3, 40, 4, 2, 9, 6}})
    for (int64_t vl : {8, 16})
      for (uint32_t by_blocks : {0u, 1u}) {
        if (by_blocks && (vl == 16 ? !avx512 : !avx2)) continue;
        INFO("batch " << g.batch << " c " << g.c << " h " << g.h << " grid w " << g.wg << " w " << g.w << " strides "
                      << g.sh << "x" << g.sw << " grid h " << g.rows() << " vl " << vl << " by_blocks " << by_blocks);
        sdnn_window_params p = crop_params(g, vl, by_blocks);
        p.dst_nchw = 1;
        sdnn_step step{};
        step.op = SDNN_STEP_CROP;
        step.conv = &p;
        const int64_t in_item = (g.rows() * g.wg + vl - 1) / vl * g.c * vl, plane = g.h * g.w;
        std::vector<float> grid(static_cast<size_t>(g.batch * in_item));
        for (size_t i = 0; i < grid.size(); ++i) grid[i] = static_cast<float>((i * 7919) % 23) - 11.0f;
        const int64_t guard = 64, total = g.batch * g.c * plane;
        std::vector<float> want(static_cast<size_t>(total + 2 * guard), kNaN);
        for (int64_t b = 0; b < g.batch; ++b)
          for (int64_t ch = 0; ch < g.c; ++ch)
            for (int64_t q = 0; q < plane; ++q) {
              const int64_t pos = g.pos(q / g.w, q % g.w);
              want[static_cast<size_t>(guard + (b * g.c + ch) * plane + q)] =
                  grid[static_cast<size_t>(b * in_item + (pos / vl) * g.c * vl + ch * vl + pos % vl)];
            }
        const int64_t units = sdnn_window_units(&step);
        std::vector<float> scratch(static_cast<size_t>(sdnn_window_scratch_floats(&p)));
        for (const auto& [cpu, parts] : cpu_parts()) {
          std::vector<float> dst(want.size(), kNaN);
          for (int t = parts - 1; t >= 0; --t)
            sdnn_planes_run(&step, grid.data(), nullptr, dst.data() + guard, scratch.data(), units * t / parts,
                            units * (t + 1) / parts, cpu);
          INFO(parts << " parts, cpu " << cpu);
          for (size_t i = 0; i < dst.size(); ++i) {
            INFO("element " << i);
            REQUIRE((std::isnan(want[i]) ? std::isnan(dst[i]) : dst[i] == want[i]));
          }
        }
      }
}

// PAD_PLANES from NCHW: every channel's Sh x Sw phase planes [R][Wq], input pixel (iy, ix) at
// padded position (iy + top, ix + left), phase (py, px) = position % stride, row / column =
// position / stride; everything else exactly 0 — rows shorter and longer than the 31-float
// straight-line copy, strides 1 and 2, images inside the plane and cut by it, fewer than 8
// channels (by plane rows) and more (by row bands channel by channel, or by channels for narrow
// planes), units split like threads, every float written by one of them.
TEST_CASE("pad_planes from NCHW writes every phase plane exactly", "[window][pad_planes]") {
  struct Geometry {
    int64_t batch, c, h, w, stride, top, left, rows, cols;
  };
  for (const Geometry& g : {Geometry{1, 3, 7, 7, 1, 1, 1, 11, 9}, Geometry{2, 5, 5, 40, 1, 1, 1, 8, 42},
                            Geometry{1, 4, 9, 9, 2, 1, 1, 6, 6}, Geometry{1, 2, 6, 70, 2, 3, 3, 7, 38},
                            Geometry{1, 1, 1, 1, 1, 0, 0, 2, 3}, Geometry{1, 2, 4, 6, 1, 2, 0, 7, 8},
                            Geometry{1, 2, 6, 10, 1, 1, 1, 5, 11}, Geometry{1, 2, 3, 10, 1, 1, 2, 6, 11},
                            Geometry{2, 9, 7, 40, 2, 1, 1, 5, 21}, Geometry{1, 12, 6, 6, 1, 1, 1, 8, 8},
                            // 8+ channels, planes 32+ wide: row bands (stride 2; the plane cutting
                            // the image; top pad beyond the stride)
                            Geometry{2, 9, 12, 70, 2, 1, 1, 7, 36}, Geometry{1, 10, 20, 40, 1, 2, 1, 15, 42},
                            Geometry{2, 8, 9, 64, 2, 3, 2, 8, 35}}) {
    INFO("batch " << g.batch << " c " << g.c << " h " << g.h << " w " << g.w << " stride " << g.stride);
    sdnn_window_params p{};
    p.batch = g.batch;
    p.channels = g.c;
    p.in_h = g.h;
    p.in_w = g.w;
    p.out_h = g.rows;
    p.out_w = g.cols;
    p.stride_h = p.stride_w = g.stride;
    p.pad_top = g.top;
    p.pad_left = g.left;
    p.kernel_h = p.kernel_w = 3;
    p.dilation_h = p.dilation_w = 1;
    sdnn_step step{};
    step.op = SDNN_STEP_PAD_PLANES;
    step.conv = &p;
    std::vector<float> x(static_cast<size_t>(g.batch * g.c * g.h * g.w));
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 97) + 1.0f;
    const int64_t plane = g.rows * g.cols, phases = g.stride * g.stride;
    std::vector<float> want(static_cast<size_t>(g.batch * g.c * phases * plane), 0.0f);
    for (int64_t u = 0; u < g.batch * g.c; ++u)
      for (int64_t iy = 0; iy < g.h; ++iy)
        for (int64_t ix = 0; ix < g.w; ++ix) {
          const int64_t py = (iy + g.top) % g.stride, r = (iy + g.top) / g.stride;
          const int64_t px = (ix + g.left) % g.stride, q = (ix + g.left) / g.stride;
          if (r < g.rows && q < g.cols)
            want[static_cast<size_t>((u * phases + py * g.stride + px) * plane + r * g.cols + q)] =
                x[static_cast<size_t>((u * g.h + iy) * g.w + ix)];
        }
    // Images of fewer than 8 channels run by plane rows (every channel a unit), others by row
    // bands when the planes are 32 floats wide or more, else by channels.
    CHECK(sdnn_window_units(&step) ==
          (g.c < 8 ? g.batch * g.stride * g.rows : g.cols >= 32 ? g.batch * g.rows : g.batch * g.c));
    check_planes_run(step, x, want);
  }
}

// PAD_PLANES parameters: batch x c images h x w (rows row_stride positions apart in a blocked
// input) into rows x cols planes with the given stride and top / left pads.
static sdnn_window_params pad_params(int64_t batch, int64_t c, int64_t h, int64_t w, int64_t row_stride, int64_t rows,
                                     int64_t cols, int64_t stride, int64_t top, int64_t left, int64_t vl) {
  sdnn_window_params p = window_params(batch, c, h, w, rows, cols);
  p.in_row_stride = row_stride == w ? 0 : row_stride;
  p.stride_h = p.stride_w = stride;
  p.pad_top = top;
  p.pad_left = left;
  p.kernel_h = p.kernel_w = p.dilation_h = p.dilation_w = 1;
  p.vl = vl;
  return p;
}

// PAD_PLANES from a ChannelBlocked input, stride 1: the block paths (by_blocks: AVX-512 with VL
// 16, AVX2 with VL 8) and the row path both write exactly the zero-padded image — every data
// position and every pad (the planes are NaN before) — for inputs of row stride W and wider (a
// grid's extra columns, NaN in the input so a read of one shows), images shorter and longer than a
// vector's rows, units split like threads.
TEST_CASE("pad_planes from a blocked input: the block path writes what the row path writes", "[window][pad_planes]") {
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2");
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (!avx512) WARN("no AVX-512F on this CPU: the AVX-512 block path of pad_planes is not tested");
  struct Geometry {
    int64_t batch, c, h, w, row_stride, top, left, rows, cols;
  };
  for (const Geometry& g : {Geometry{1, 3, 7, 7, 7, 1, 1, 11, 9}, Geometry{2, 5, 14, 14, 16, 1, 1, 18, 16},
                            Geometry{1, 17, 5, 40, 42, 1, 1, 8, 42}, Geometry{1, 2, 1, 1, 1, 1, 1, 4, 3},
                            Geometry{1, 4, 3, 3, 5, 2, 1, 9, 6}, Geometry{2, 16, 56, 56, 58, 1, 1, 60, 58}}) {
    for (int64_t vl : {16, 8}) {
      const bool blocks_run = vl == 16 ? avx512 : avx2;
      INFO("batch " << g.batch << " c " << g.c << " " << g.h << "x" << g.w << " row stride " << g.row_stride
                    << " vl " << vl);
      const int64_t in_blocks = (g.h * g.row_stride + vl - 1) / vl, in_item = in_blocks * g.c * vl;
      std::vector<float> x(static_cast<size_t>(g.batch * in_item), kNaN);
      for (int64_t b = 0; b < g.batch; ++b)
        for (int64_t ch = 0; ch < g.c; ++ch)
          for (int64_t y = 0; y < g.h; ++y)
            for (int64_t xx = 0; xx < g.w; ++xx) {
              const int64_t q = y * g.row_stride + xx;
              x[static_cast<size_t>(b * in_item + (q / vl) * g.c * vl + ch * vl + q % vl)] =
                  static_cast<float>((b * 131 + ch * 17 + y * 7 + xx) % 29) - 14.0f;
            }
      std::vector<float> got[2];
      for (uint32_t by_blocks : {0u, 1u}) {
        if (by_blocks && !blocks_run) continue;
        sdnn_window_params p = pad_params(g.batch, g.c, g.h, g.w, g.row_stride, g.rows, g.cols, 1, g.top, g.left, vl);
        p.by_blocks = by_blocks;
        sdnn_step step{};
        step.op = SDNN_STEP_PAD_PLANES;
        step.conv = &p;
        const int64_t units = sdnn_window_units(&step);
        std::vector<float> scratch(static_cast<size_t>(sdnn_window_scratch_floats(&p)));
        for (const auto& [cpu, parts] : cpu_parts()) {
          std::vector<float> dst(static_cast<size_t>(g.batch * g.c * g.rows * g.cols), kNaN);
          for (int t = parts - 1; t >= 0; --t)
            sdnn_planes_run(&step, x.data(), nullptr, dst.data(), scratch.data(), units * t / parts,
                            units * (t + 1) / parts, cpu);
          INFO("by_blocks " << by_blocks << ", " << parts << " parts, cpu " << cpu);
          if (parts == 1) {
            got[by_blocks] = dst;
          } else {
            CHECK(dst == got[by_blocks]);  // the units split like threads write the same
          }
        }
      }
      if (blocks_run) CHECK(got[0] == got[1]);
      // And both are the zero-padded image: plane (b, ch) position (y + top, x + left) = input.
      std::vector<float> want(got[0].size(), 0.0f);
      for (int64_t b = 0; b < g.batch; ++b)
        for (int64_t ch = 0; ch < g.c; ++ch)
          for (int64_t y = 0; y < g.h; ++y)
            for (int64_t xx = 0; xx < g.w; ++xx) {
              const int64_t q = y * g.row_stride + xx;
              want[static_cast<size_t>(((b * g.c + ch) * g.rows + y + g.top) * g.cols + xx + g.left)] =
                  x[static_cast<size_t>(b * in_item + (q / vl) * g.c * vl + ch * vl + q % vl)];
            }
      for (const auto& g_path : got)
        if (!g_path.empty()) CHECK(g_path == want);
    }
  }
}

// PAD_PLANES from a ChannelBlocked input with stride 2, on the row path (each input row copied out
// of the blocks, its even and odd columns split into the column phases, with permutes where the
// plan's CPU bits allow) and the block paths (each block's lanes of one row and column phase
// compressed, AVX-512, or permuted, AVX2, to the front and stored together): every float of the Sh x Sw phase planes is the input or exactly
// 0, rows as wide as several vectors (ResNet's 56 and 28) and narrower than one (several rows a
// vector), a grid's wider rows, odd pads, units split like threads.
TEST_CASE("pad_planes from a blocked input with stride 2 writes the phase planes", "[window][pad_planes]") {
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2");
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (!avx512) WARN("no AVX-512F on this CPU: the AVX-512 block path of pad_planes is not tested");
  struct Geometry {
    int64_t batch, c, h, w, row_stride, top, left, rows, cols;
  };
  for (const Geometry& g : {Geometry{1, 3, 56, 56, 56, 1, 1, 29, 29}, Geometry{2, 5, 28, 28, 30, 1, 1, 15, 15},
                            Geometry{1, 4, 9, 13, 13, 1, 1, 6, 8}, Geometry{1, 2, 5, 70, 70, 3, 3, 6, 38},
                            Geometry{1, 3, 7, 7, 7, 0, 0, 5, 5}, Geometry{1, 3, 6, 5, 5, 1, 1, 4, 4}}) {
    for (int64_t vl : {16, 8}) {
      INFO("batch " << g.batch << " c " << g.c << " " << g.h << "x" << g.w << " row stride " << g.row_stride
                    << " vl " << vl);
      const int64_t s = 2, in_blocks = (g.h * g.row_stride + vl - 1) / vl, in_item = in_blocks * g.c * vl;
      std::vector<float> x(static_cast<size_t>(g.batch * in_item), kNaN);
      const auto at = [&](int64_t b, int64_t ch, int64_t y, int64_t xx) {
        const int64_t q = y * g.row_stride + xx;
        return static_cast<size_t>(b * in_item + (q / vl) * g.c * vl + ch * vl + q % vl);
      };
      for (int64_t b = 0; b < g.batch; ++b)
        for (int64_t ch = 0; ch < g.c; ++ch)
          for (int64_t y = 0; y < g.h; ++y)
            for (int64_t xx = 0; xx < g.w; ++xx)
              x[at(b, ch, y, xx)] = static_cast<float>((b * 131 + ch * 17 + y * 7 + xx) % 29) - 14.0f;
      const int64_t plane = g.rows * g.cols;
      std::vector<float> want(static_cast<size_t>(g.batch * g.c * s * s * plane), 0.0f);
      for (int64_t b = 0; b < g.batch; ++b)
        for (int64_t ch = 0; ch < g.c; ++ch)
          for (int64_t y = 0; y < g.h; ++y)
            for (int64_t xx = 0; xx < g.w; ++xx) {
              const int64_t py = (y + g.top) % s, r = (y + g.top) / s, px = (xx + g.left) % s, q = (xx + g.left) / s;
              if (r < g.rows && q < g.cols)
                want[static_cast<size_t>((((b * g.c + ch) * s + py) * s + px) * plane + r * g.cols + q)] = x[at(b, ch, y, xx)];
            }
      sdnn_window_params p = pad_params(g.batch, g.c, g.h, g.w, g.row_stride, g.rows, g.cols, s, g.top, g.left, vl);
      sdnn_step step{};
      step.op = SDNN_STEP_PAD_PLANES;
      step.conv = &p;
      for (uint32_t by_blocks : {0u, 1u}) {  // the row path, and the block paths (compressed / permuted lanes)
        if (by_blocks && (vl == 16 ? !avx512 : !avx2)) continue;
        INFO("by_blocks " << by_blocks);
        p.by_blocks = by_blocks;
        check_planes_run(step, x, want);
      }
    }
  }
}

// MAXPOOL 3 wide with column stride 2 on c channels of h x w: kh kernel rows at row stride sh and
// row dilation dh, pads `pad` on every side.
static sdnn_window_params maxpool_s2_params(int64_t batch, int64_t c, int64_t h, int64_t w, int64_t kh, int64_t sh,
                                            int64_t pad, int64_t dh) {
  const int64_t oh = (h + 2 * pad - (kh - 1) * dh - 1) / sh + 1, ow = (w + 2 * pad - 3) / 2 + 1;
  sdnn_window_params p = window_params(batch, c, h, w, oh, ow);
  p.kernel_h = kh;
  p.kernel_w = 3;
  p.stride_h = sh;
  p.stride_w = 2;
  p.pad_top = p.pad_left = pad;
  p.dilation_h = dh;
  p.dilation_w = 1;
  return p;
}

// MAXPOOL on NCHW planes, 3 wide with column stride 2 (the AVX-512 and AVX2 code for ResNet's stem
// pool): bitwise the generic path's result for each CPU level — widths below, at and above a
// vector, pads 0 to 2, kernel heights 1 to 3, row strides 1 and 2, row dilation 2, NaNs (which
// never win) and -inf in the input, units split like threads.
TEST_CASE("maxpool 3 wide stride 2 on NCHW planes matches the generic path", "[window][maxpool]") {
  struct Geometry {
    int64_t batch, c, h, w, kh, sh, pad, dh;
  };
  for (const Geometry& g : {Geometry{1, 3, 9, 7, 3, 2, 1, 1}, Geometry{2, 2, 13, 17, 3, 2, 1, 1},
                            Geometry{1, 4, 8, 16, 3, 1, 0, 1}, Geometry{1, 2, 5, 40, 2, 2, 2, 1},
                            Geometry{1, 2, 11, 33, 3, 2, 1, 2}, Geometry{1, 1, 3, 3, 1, 1, 1, 1},
                            Geometry{1, 5, 112, 112, 3, 2, 1, 1}}) {
    sdnn_window_params p = maxpool_s2_params(g.batch, g.c, g.h, g.w, g.kh, g.sh, g.pad, g.dh);
    sdnn_step step{};
    step.op = SDNN_STEP_MAXPOOL;
    step.conv = &p;
    INFO("batch " << g.batch << " c " << g.c << " " << g.h << "x" << g.w << " kh " << g.kh << " sh " << g.sh << " pad "
                  << g.pad << " dh " << g.dh);
    std::vector<float> x(static_cast<size_t>(g.batch * g.c * g.h * g.w));
    for (size_t i = 0; i < x.size(); ++i)
      x[i] = i % 13 == 5 ? kNaN : i % 17 == 3 ? -INFINITY : static_cast<float>((i * 7919) % 29) - 14.0f;
    const size_t out_floats = static_cast<size_t>(g.batch * g.c * p.out_h * p.out_w);
    const int64_t units = sdnn_window_units(&step);
    std::vector<float> want(out_floats, -777.0f);
    sdnn_window_run(&step, x.data(), want.data(), 0, units, 0);
    for (const auto& [cpu, parts] : cpu_parts()) {
      std::vector<float> got(out_floats, -777.0f);
      for (int t = parts - 1; t >= 0; --t)
        sdnn_window_run(&step, x.data(), got.data(), units * t / parts, units * (t + 1) / parts, cpu);
      INFO(parts << " parts, cpu " << cpu);
      REQUIRE(std::memcmp(got.data(), want.data(), out_floats * sizeof(float)) == 0);
    }
  }
}

// MAXPOOL of a ChannelBlocked grid (AVX-512 with VL 16, AVX2 with VL 8; 3 wide, stride 2: a ResNet
// stem's pool reading the stem conv's output grid without a crop): bitwise what the portable NCHW
// pool gives on the cropped image — the grid's extra columns and the last block's tail 1e30 so a
// read of one wins, NaNs and -inf in the data (never win), rows narrower than a vector, row
// strides 0 and wider, pads 0 and 1, 2 and 3 kernel rows, two batch items, units split like
// threads.
TEST_CASE("maxpool of a blocked grid matches the NCHW pool", "[window][maxpool]") {
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2");
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (!avx512) WARN("no AVX-512F on this CPU: the AVX-512 blocked max pool is not tested");
  struct Geometry {
    int64_t batch, c, h, w, row_stride, kh, sh, pad;
  };
  for (const Geometry& g : {Geometry{1, 3, 112, 112, 115, 3, 2, 1}, Geometry{2, 5, 9, 13, 13, 3, 2, 1},
                            Geometry{1, 2, 7, 5, 8, 3, 2, 0}, Geometry{1, 4, 20, 40, 41, 2, 1, 1},
                            Geometry{1, 17, 3, 3, 4, 3, 2, 1}})
    for (int64_t vl : {16, 8}) {
      if (vl == 16 ? !avx512 : !avx2) continue;
      INFO("batch " << g.batch << " c " << g.c << " " << g.h << "x" << g.w << " row stride " << g.row_stride << " kh "
                    << g.kh << " sh " << g.sh << " pad " << g.pad << " vl " << vl);
      const int64_t rs = g.row_stride, in_blocks = (g.h * rs + vl - 1) / vl, in_item = in_blocks * g.c * vl;
      std::vector<float> nchw(static_cast<size_t>(g.batch * g.c * g.h * g.w));
      std::vector<float> grid(static_cast<size_t>(g.batch * in_item), 1e30f);
      for (size_t i = 0; i < nchw.size(); ++i)
        nchw[i] = i % 37 == 5 ? kNaN : i % 41 == 7 ? -INFINITY : static_cast<float>((i * 7919) % 61) - 30.0f;
      for (int64_t b = 0; b < g.batch; ++b)
        for (int64_t ch = 0; ch < g.c; ++ch)
          for (int64_t y = 0; y < g.h; ++y)
            for (int64_t x = 0; x < g.w; ++x) {
              const int64_t q = y * rs + x;
              grid[static_cast<size_t>(b * in_item + (q / vl) * g.c * vl + ch * vl + q % vl)] =
                  nchw[static_cast<size_t>(((b * g.c + ch) * g.h + y) * g.w + x)];
            }
      sdnn_window_params p = maxpool_s2_params(g.batch, g.c, g.h, g.w, g.kh, g.sh, g.pad, 1);
      sdnn_step step{};
      step.op = SDNN_STEP_MAXPOOL;
      step.conv = &p;
      const int64_t units = sdnn_window_units(&step);
      std::vector<float> want(static_cast<size_t>(g.batch * g.c * p.out_h * p.out_w), -777.0f);
      sdnn_window_run(&step, nchw.data(), want.data(), 0, units, 0);  // the portable NCHW pool
      p.vl = vl;
      p.in_row_stride = rs == g.w ? 0 : rs;
      const uint32_t cpu = vl == 16 ? SDNN_CPU_AVX2 | SDNN_CPU_AVX512F : SDNN_CPU_AVX2;
      for (int parts : {1, 3}) {
        std::vector<float> got(want.size(), -777.0f);
        for (int t = parts - 1; t >= 0; --t)
          sdnn_window_run(&step, grid.data(), got.data(), units * t / parts, units * (t + 1) / parts, cpu);
        INFO(parts << " parts");
        for (size_t i = 0; i < got.size(); ++i) {
          INFO("element " << i);
          REQUIRE(std::memcmp(&got[i], &want[i], sizeof(float)) == 0);
        }
      }
    }
}

// ZERO_BORDERS after a kernel that wrote the next conv's planes: every float outside the image
// (top rows, left and right pads, the rows below) becomes 0, the image stays as it was.
TEST_CASE("zero_borders clears exactly the pads of each plane, for any split of its rows", "[window][zero_borders]") {
  struct Geometry {
    int64_t c, h, w, top, left, rows, cols;
  };
  for (const Geometry& g : {Geometry{3, 7, 7, 1, 1, 11, 9}, Geometry{2, 5, 20, 2, 2, 10, 24}, Geometry{4, 1, 1, 1, 1, 4, 3},
                            Geometry{2, 3, 4, 0, 0, 3, 4}, Geometry{1, 6, 5, 1, 3, 9, 9},
                            Geometry{3, 30, 34, 1, 1, 33, 36}, Geometry{2, 5, 40, 2, 3, 11, 44}})
    for (int64_t batch : {1, 2}) {
      INFO("batch " << batch << " c " << g.c << " h " << g.h << " w " << g.w << " top " << g.top << " left " << g.left);
      sdnn_window_params p{};
      p.batch = batch;
      p.channels = g.c;
      p.in_h = g.h;
      p.in_w = g.w;
      p.out_h = g.rows;
      p.out_w = g.cols;
      p.pad_top = g.top;
      p.pad_left = g.left;
      sdnn_step step{};
      step.op = SDNN_STEP_ZERO_BORDERS;
      step.conv = &p;
      const int64_t plane = g.rows * g.cols, planes = batch * g.c, units = sdnn_window_units(&step);
      CHECK(units == batch * (g.cols >= 32 ? g.rows : g.c));  // plane rows, every channel; narrow planes by channel
      const auto original = [](size_t i) { return static_cast<float>(i) + 0.5f; };
      const auto is_pad = [&](size_t i) {
        const int64_t pos = static_cast<int64_t>(i) % plane, r = pos / g.cols, q = pos % g.cols;
        return static_cast<int64_t>(i) < planes * plane &&
               !(r >= g.top && r < g.top + g.h && q >= g.left && q < g.left + g.w);
      };
      for (int parts : {1, 2, 3, 7}) {
        INFO(parts << " parts");
        // Each part alone: together they clear every pad exactly once and nothing else (threads
        // run their parts at once).
        std::vector<int> writes(static_cast<size_t>(planes * plane + 5), 0);
        for (int t = 0; t < parts; ++t) {
          std::vector<float> alone(writes.size());
          for (size_t i = 0; i < alone.size(); ++i) alone[i] = original(i);
          sdnn_zero_borders_run(&step, alone.data(), units * t / parts, units * (t + 1) / parts);
          for (size_t i = 0; i < alone.size(); ++i) writes[i] += alone[i] != original(i);
        }
        for (size_t i = 0; i < writes.size(); ++i) {
          INFO("float " << i);
          REQUIRE(writes[i] == (is_pad(i) ? 1 : 0));
        }
        std::vector<float> dst(writes.size());
        for (size_t i = 0; i < dst.size(); ++i) dst[i] = original(i);
        for (int t = parts - 1; t >= 0; --t) sdnn_zero_borders_run(&step, dst.data(), units * t / parts, units * (t + 1) / parts);
        for (size_t i = 0; i < dst.size(); ++i) {
          INFO("float " << i);
          REQUIRE(dst[i] == (is_pad(i) ? 0.0f : original(i)));
        }
      }
    }
}

// A depthwise step's parameters: batch x c planes h x w into oh x ow, square k x k taps of the
// given stride, symmetric pad and dilation, on VL-wide blocks.
static sdnn_window_params dw_params(int64_t batch, int64_t c, int64_t h, int64_t w, int64_t oh, int64_t ow, int64_t k,
                                    int64_t stride, int64_t pad, int64_t dilation, int64_t vl, const float* wts,
                                    const float* bias, uint32_t act, uint32_t by_blocks) {
  sdnn_window_params p = window_params(batch, c, h, w, oh, ow);
  p.kernel_h = p.kernel_w = k;
  p.stride_h = p.stride_w = stride;
  p.pad_top = p.pad_left = pad;
  p.dilation_h = p.dilation_w = dilation;
  p.vl = vl;
  p.weights = wts;
  p.bias = bias;
  p.act = act;
  p.by_blocks = by_blocks;
  return p;
}

// DEPTHWISE_BLOCKED on the ChannelBlocked layout against a double-precision depthwise on NCHW:
// the row path (units are channels; VL 8 and 16), the AVX-512 block paths — shifted windows
// (stride 1, same size; 3x3 pads 1 has its own code, other kernels the generic one) and gathered
// windows (any geometry; 3x3 stride 2 pads 1 from row segments when a block spans at most four
// output rows) — and the AVX2 tiles (VL 8, any geometry: several tiles down tall images, blocks
// spanning many rows of a narrow one, dilation, channel groups of 8 cut short) with channel counts
// around the 4- and 8-channel groups, images narrower and wider than a block, odd sizes, units
// split like threads, each activation, with and without bias.
TEST_CASE("blocked depthwise matches a reference on every path", "[window][depthwise]") {
  struct Geometry {
    int64_t batch, c, h, w, k, stride, pad, dilation = 1;
  };
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2");
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (!avx512) WARN("no AVX-512F on this CPU: the AVX-512 block paths are not tested");
  if (!avx2) WARN("no AVX2 on this CPU: the AVX2 tiles are not tested");
  const uint32_t cpu = avx512 ? SDNN_CPU_AVX512F | SDNN_CPU_AVX2 : SDNN_CPU_AVX2;
  for (const Geometry& g : {Geometry{1, 5, 7, 7, 3, 1, 1}, Geometry{2, 4, 14, 14, 3, 1, 1}, Geometry{1, 9, 1, 1, 3, 1, 1},
                            Geometry{1, 3, 5, 23, 3, 1, 1}, Geometry{1, 17, 33, 32, 3, 1, 1}, Geometry{1, 6, 9, 11, 5, 1, 2},
                            Geometry{1, 7, 15, 15, 3, 2, 1}, Geometry{2, 4, 14, 14, 3, 2, 1}, Geometry{1, 3, 8, 19, 5, 2, 2},
                            Geometry{1, 5, 33, 31, 3, 2, 1}, Geometry{2, 6, 40, 37, 3, 2, 1}, Geometry{1, 3, 32, 32, 3, 2, 1},
                            Geometry{1, 16, 70, 30, 3, 1, 1}, Geometry{1, 8, 61, 40, 3, 2, 1}, Geometry{2, 9, 20, 1, 3, 1, 1},
                            Geometry{1, 12, 3, 200, 3, 1, 1}, Geometry{1, 10, 11, 12, 3, 1, 2, 2}, Geometry{1, 4, 13, 9, 3, 2, 0},
                            Geometry{1, 5, 10, 10, 3, 2, 1}, Geometry{1, 6, 11, 9, 3, 2, 1}, Geometry{1, 4, 7, 7, 3, 2, 1},
                            Geometry{1, 3, 6, 5, 3, 1, 3}})
    for (int64_t vl : {8, 16})
      for (uint32_t by_blocks : {0u, 1u, 2u, 3u})
        for (uint32_t act : {SDNN_ACT_NONE, SDNN_ACT_RELU, SDNN_ACT_RELU6})
          for (bool with_bias : {true, false}) {
            const int64_t span = g.dilation * (g.k - 1) + 1;
            const int64_t oh = (g.h + 2 * g.pad - span) / g.stride + 1, ow = (g.w + 2 * g.pad - span) / g.stride + 1;
            const bool same = g.stride == 1 && g.dilation == 1 && oh == g.h && ow == g.w;
            if ((by_blocks == 1 || by_blocks == 2) && (vl != 16 || !avx512)) continue;
            if (by_blocks == 3 && (vl != 8 || !avx2)) continue;
            if (by_blocks == 1 && !same) continue;
            INFO("batch " << g.batch << " c " << g.c << " " << g.h << "x" << g.w << " k " << g.k << " stride " << g.stride
                          << " pad " << g.pad << " dilation " << g.dilation << " vl " << vl << " by_blocks " << by_blocks
                          << " act " << act << " bias " << with_bias);
            std::vector<float> wts(static_cast<size_t>(g.c * g.k * g.k)), bias(static_cast<size_t>(g.c));
            for (size_t i = 0; i < wts.size(); ++i) wts[i] = static_cast<float>((i * 37) % 11) * 0.25f - 1.2f;
            for (size_t i = 0; i < bias.size(); ++i) bias[i] = static_cast<float>(i % 5) - 2.0f;
            sdnn_window_params p = dw_params(g.batch, g.c, g.h, g.w, oh, ow, g.k, g.stride, g.pad, g.dilation, vl,
                                             wts.data(), with_bias ? bias.data() : nullptr, act, by_blocks);
            sdnn_step step{};
            step.op = SDNN_STEP_DEPTHWISE_BLOCKED;
            step.conv = &p;
            const int64_t in_n = g.h * g.w, out_n = oh * ow;
            const int64_t in_item = (in_n + vl - 1) / vl * g.c * vl, out_item = (out_n + vl - 1) / vl * g.c * vl;
            const auto at = [&](int64_t b, int64_t ch, int64_t pos, int64_t item) {
              return static_cast<size_t>(b * item + (pos / vl) * g.c * vl + ch * vl + pos % vl);
            };
            std::vector<float> x(static_cast<size_t>(g.batch * in_item), 0.0f);
            for (int64_t b = 0; b < g.batch; ++b)
              for (int64_t ch = 0; ch < g.c; ++ch)
                for (int64_t q = 0; q < in_n; ++q)
                  x[at(b, ch, q, in_item)] = static_cast<float>(((b * 31 + ch) * 7919 + q * 104729) % 23) * 0.1f - 1.1f;
            std::vector<float> want(static_cast<size_t>(g.batch * out_item), 0.0f);
            for (int64_t b = 0; b < g.batch; ++b)
              for (int64_t ch = 0; ch < g.c; ++ch)
                for (int64_t oy = 0; oy < oh; ++oy)
                  for (int64_t ox = 0; ox < ow; ++ox) {
                    double s = with_bias ? bias[static_cast<size_t>(ch)] : 0.0;
                    for (int64_t ky = 0; ky < g.k; ++ky)
                      for (int64_t kx = 0; kx < g.k; ++kx) {
                        const int64_t iy = oy * g.stride - g.pad + ky * g.dilation;
                        const int64_t ix = ox * g.stride - g.pad + kx * g.dilation;
                        if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) continue;
                        s += double{wts[static_cast<size_t>((ch * g.k + ky) * g.k + kx)]} * x[at(b, ch, iy * g.w + ix, in_item)];
                      }
                    if (act != SDNN_ACT_NONE) s = std::max(s, 0.0);
                    if (act == SDNN_ACT_RELU6) s = std::min(s, 6.0);
                    want[at(b, ch, oy * ow + ox, out_item)] = static_cast<float>(s);
                  }
            const int64_t units = sdnn_window_units(&step);
            std::vector<float> scratch(static_cast<size_t>(sdnn_depthwise_blocked_scratch_floats(&p)));
            for (int parts : {1, 3}) {
              std::vector<float> got(want.size(), kNaN);
              for (int t = parts - 1; t >= 0; --t)
                sdnn_depthwise_blocked_run(&step, x.data(), got.data(), scratch.data(), units * t / parts,
                                           units * (t + 1) / parts, cpu);
              INFO(parts << " parts, cpu " << cpu);
              for (size_t i = 0; i < got.size(); ++i) {
                INFO("element " << i);
                REQUIRE(std::fabs(got[i] - want[i]) <= 1e-5f + 1e-5f * std::fabs(want[i]));
              }
            }
          }
}

// The blocked input x of `batch` items of c channels, h x w, and the same values in a direct
// convolution's grid of rows rs positions apart whose other positions are NaN; depthwise weights
// and bias for c channels of k x k taps.
struct GridInputs {
  int64_t in_item = 0, grid_item = 0;
  std::vector<float> x, grid, wts, bias;
};
static GridInputs grid_inputs(int64_t batch, int64_t c, int64_t h, int64_t w, int64_t rs, int64_t vl, int64_t k) {
  GridInputs in;
  in.in_item = (h * w + vl - 1) / vl * c * vl;
  in.grid_item = (h * rs + vl - 1) / vl * c * vl;
  in.wts.resize(static_cast<size_t>(c * k * k));
  in.bias.resize(static_cast<size_t>(c));
  for (size_t i = 0; i < in.wts.size(); ++i) in.wts[i] = static_cast<float>((i * 37) % 11) * 0.25f - 1.2f;
  for (size_t i = 0; i < in.bias.size(); ++i) in.bias[i] = static_cast<float>(i % 5) - 2.0f;
  in.x.assign(static_cast<size_t>(batch * in.in_item), 0.0f);
  in.grid.assign(static_cast<size_t>(batch * in.grid_item), kNaN);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t xx = 0; xx < w; ++xx) {
          const float v = static_cast<float>(((b * 31 + ch) * 7919 + (y * w + xx) * 104729) % 23) * 0.1f - 1.1f;
          const int64_t p = y * w + xx, q = y * rs + xx;
          in.x[static_cast<size_t>(b * in.in_item + p / vl * c * vl + ch * vl + p % vl)] = v;
          in.grid[static_cast<size_t>(b * in.grid_item + q / vl * c * vl + ch * vl + q % vl)] = v;
        }
  return in;
}

// DEPTHWISE_BLOCKED reading a direct convolution's grid (in_row_stride R > W): bitwise what the
// same code gives on the cropped, contiguous input — the grid's extra columns and its last
// block's tail NaN, so a read of one shows — for units split like threads; then the plan check
// takes the step from an input of the grid's size and refuses what that path cannot run.
struct GridCase {
  int64_t batch, c, h, w, row_stride, k = 3, stride = 1, pad = 1;
};
static void check_grid_depthwise(const GridCase& g, uint32_t by_blocks, uint32_t act) {
  INFO("batch " << g.batch << " c " << g.c << " " << g.h << "x" << g.w << " row stride " << g.row_stride << " k "
                << g.k << " stride " << g.stride << " by_blocks " << by_blocks << " act " << act);
  const bool tiles = by_blocks == 3;
  const uint32_t cpu = tiles ? SDNN_CPU_AVX2 : SDNN_CPU_AVX512F | SDNN_CPU_AVX2;
  const int64_t vl = tiles ? 8 : 16, rs = g.row_stride;
  const int64_t oh = (g.h + 2 * g.pad - g.k) / g.stride + 1, ow = (g.w + 2 * g.pad - g.k) / g.stride + 1;
  const int64_t out_item = (oh * ow + vl - 1) / vl * g.c * vl;
  const GridInputs data = grid_inputs(g.batch, g.c, g.h, g.w, rs, vl, g.k);
  sdnn_window_params p = dw_params(g.batch, g.c, g.h, g.w, oh, ow, g.k, g.stride, g.pad, 1, vl, data.wts.data(),
                                   data.bias.data(), act, by_blocks);
  sdnn_step step{};
  step.op = SDNN_STEP_DEPTHWISE_BLOCKED;
  step.conv = &p;
  const int64_t units = sdnn_window_units(&step);
  std::vector<float> scratch(static_cast<size_t>(sdnn_depthwise_blocked_scratch_floats(&p)));
  std::vector<float> want(static_cast<size_t>(g.batch * out_item), -777.0f);
  sdnn_depthwise_blocked_run(&step, data.x.data(), want.data(), scratch.data(), 0, units, cpu);
  for (float v : want) REQUIRE(std::isfinite(v));
  p.in_row_stride = rs;
  REQUIRE(sdnn_window_units(&step) == units);  // units are output blocks
  for (int parts : {1, 3}) {
    std::vector<float> got(want.size(), -777.0f);
    for (int t = parts - 1; t >= 0; --t)
      sdnn_depthwise_blocked_run(&step, data.grid.data(), got.data(), scratch.data(), units * t / parts,
                                 units * (t + 1) / parts, cpu);
    INFO(parts << " parts");
    for (size_t i = 0; i < got.size(); ++i) {
      INFO("element " << i);
      REQUIRE(std::memcmp(&got[i], &want[i], sizeof(float)) == 0);
    }
  }

  int64_t in_dims[1] = {g.batch * data.grid_item}, out_dims[1] = {g.batch * out_item};
  const sdnn_tensor_info in = {"x", 1, in_dims, SDNN_F32}, out = {"y", 1, out_dims, SDNN_F32};
  step.src0 = {SDNN_BUF_INPUT, 0, 0};
  step.dst = {SDNN_BUF_OUTPUT, 0, 0};
  sdnn_plan plan = single_step_plan(&in, &out, &step);
  plan.required_cpu = cpu;
  plan.scratch_bytes = static_cast<uint64_t>(scratch.size()) * 4;
  plan.arena_bytes = 64;
  CHECK(sdnn_plan_is_valid(&plan));
  const auto refused = [&](const char* what, const std::function<void()>& mutate) {
    const sdnn_window_params saved = p;
    const int64_t saved_in = in_dims[0];
    const uint64_t saved_scratch = plan.scratch_bytes;
    mutate();
    INFO(what);
    CHECK_FALSE(sdnn_plan_is_valid(&plan));
    p = saved;
    in_dims[0] = saved_in;
    plan.scratch_bytes = saved_scratch;
  };
  refused("input smaller than the grid", [&] { in_dims[0] -= 1; });
  refused("gathered windows", [&] { p.by_blocks = 2; });
  refused("channel planes", [&] { p.by_blocks = 0; });
  refused("row stride below the width", [&] { p.in_row_stride = g.w - 1; });
  refused("negative row stride", [&] { p.in_row_stride = -1; });
  refused("huge row stride", [&] { p.in_row_stride = INT64_C(1) << 40; });
  if (tiles) {
    refused("VL 16", [&] { p.vl = 16; });
    refused("a scratch short of the tile", [&] { plan.scratch_bytes -= 4 * 64 + 4; });
    refused("7x8 taps", [&] { p.kernel_h = 7, p.kernel_w = 8; });
    refused("dilation 2^10", [&] { p.dilation_h = INT64_C(1) << 10; });
    plan.required_cpu = 0;
  } else {
    refused("rows not whole vectors", [&] { p.in_w = p.out_w = g.w - 1; });
    refused("5x5", [&] { p.kernel_h = p.kernel_w = 5, p.pad_top = p.pad_left = 2; });
    refused("pads 0", [&] { p.pad_top = p.pad_left = 0; });
    plan.required_cpu = SDNN_CPU_AVX2;
  }
  CHECK_FALSE(sdnn_plan_is_valid(&plan));
}

// The AVX-512 shifted windows (by_blocks 1, 3x3 pads 1, rows of whole vectors): rows of one, two
// and three vectors, one row, channels in groups of 4 and left over, two batch items.
TEST_CASE("blocked depthwise reads a direct convolution's grid", "[window][depthwise]") {
  if (!(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2"))) {
    WARN("no AVX-512F on this CPU: the grid depthwise is not tested");
    return;
  }
  for (const GridCase& g : {GridCase{1, 5, 4, 16, 17}, GridCase{2, 6, 7, 32, 33}, GridCase{1, 9, 3, 48, 50},
                            GridCase{1, 4, 1, 16, 19}, GridCase{2, 3, 5, 16, 32}})
    for (uint32_t act : {SDNN_ACT_NONE, SDNN_ACT_RELU, SDNN_ACT_RELU6}) check_grid_depthwise(g, 1, act);
}

// The AVX2 tiles (by_blocks 3, VL 8): rows that are and are not whole vectors, 3x3 and 5x5,
// strides 1 and 2, channel groups of 8 cut short, two batch items.
TEST_CASE("blocked depthwise tiles read a direct convolution's grid", "[window][depthwise]") {
  if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) {
    WARN("no AVX2 on this CPU: the grid tiles are not tested");
    return;
  }
  for (const GridCase& g : {GridCase{1, 5, 4, 16, 17}, GridCase{2, 9, 7, 13, 15}, GridCase{1, 12, 9, 24, 26, 3, 2, 1},
                            GridCase{1, 3, 1, 8, 11}, GridCase{2, 17, 6, 10, 16, 5, 1, 2}})
    for (uint32_t act : {SDNN_ACT_NONE, SDNN_ACT_RELU6}) check_grid_depthwise(g, 3, act);
}
