// lower.cpp — turns the planned graph into kernels + runtime steps.
//
// fc:       C[M x N] = W * X^T, X and C FeatureBlocked (N = rows of the logical input);
// conv1x1:  per image, C[M x HW] = W * X[C x HW], X and C ChannelBlocked;
// relu, add, copy: elementwise steps over the whole (padded) buffer;
// layout: a pack / unpack step; reshape: nothing (plan-buffers made it an alias).
#include "sdnn/backend/lower.h"

#include <xbyak/xbyak_util.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <exception>
#include <map>
#include <thread>

#include "sdnn/ir/error.h"
#include "sdnn_plan.h"

namespace sdnn::backend {
namespace {

using ir::Node;
using ir::Value;

bool same_storage(const ir::Storage& a, const ir::Storage& b) {
  return a.kind == b.kind && a.index == b.index && a.offset == b.offset;
}

void check_planned(const Node& n) {
  for (const Value* v : n.inputs)
    if (v && !v->is_constant() && v->storage.kind == ir::Storage::Kind::None)
      fail(n.where(), ": input '", v->name, "' has no buffer (run plan-buffers first)");
  for (const Value* v : n.outputs)
    if (v->storage.kind == ir::Storage::Kind::None)
      fail(n.where(), ": output '", v->name, "' has no buffer (run plan-buffers first)");
}

struct Job {
  Node* node;
  const Value* weights;
};

SparseMatrix weights_of(const Job& j) {
  return SparseMatrix::from_dense(j.weights->f32->data(), j.weights->shape[0], j.weights->shape[1]);
}

// Replaces each kernel's plan by the tuned one, one kernel at a time (timings need a quiet core).
void tune_all(LoweredModel& m, const std::vector<Job>& jobs, const LowerOptions& opts) {
  if (opts.tune.level == TuneLevel::None) return;
  for (size_t i = 0; i < jobs.size(); ++i) {
    LoweredKernel& lk = m.kernels[i];
    if (opts.progress)
      std::fprintf(stderr, "sdnnc: tuning %zu/%zu %s (%s)\n", i + 1, jobs.size(), lk.layer.c_str(), lk.bin.plan.str().c_str());
    lk.bin.plan = tune_plan(lk.bin.plan, weights_of(jobs[i]), opts.tune, &lk.tune);
    lk.bin.symbol = kernel_symbol(static_cast<int>(i), lk.bin.plan);
    jobs[i].node->attrs["plan"] = lk.bin.plan.str();
    jobs[i].node->attrs["symbol"] = lk.bin.symbol;
  }
}

// Emits kernels[i] for jobs[i] on `threads` threads; the first error is rethrown.
void emit_all(LoweredModel& m, const std::vector<Job>& jobs, int threads) {
  std::atomic<size_t> next{0};
  std::exception_ptr error;
  std::atomic<bool> failed{false};
  auto work = [&] {
    for (size_t i; !failed && (i = next++) < jobs.size();) {
      try {
        LoweredKernel& lk = m.kernels[i];
        try {
          lk.bin = emit_kernel(lk.bin.plan, weights_of(jobs[i]), lk.bin.symbol);
        } catch (const Error& e) {
          fail(jobs[i].node->where(), ": ", e.what());
        }
      } catch (...) {
        if (!failed.exchange(true)) error = std::current_exception();
      }
    }
  };
  size_t n = threads > 0 ? static_cast<size_t>(threads) : std::max(1u, std::thread::hardware_concurrency());
  n = std::min(n, jobs.size());
  std::vector<std::thread> pool;
  for (size_t t = 1; t < n; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

Activation activation_of(const Node& n) {
  const std::string e = n.get_str("epilogue", "");
  if (e.empty()) return Activation::None;
  if (e == "relu") return Activation::Relu;
  if (e == "relu6") return Activation::Relu6;
  fail(n.where(), ": unknown epilogue '", e, "'");
}

uint32_t sdnn_act(Activation a) {
  return a == Activation::Relu ? SDNN_ACT_RELU : a == Activation::Relu6 ? SDNN_ACT_RELU6 : SDNN_ACT_NONE;
}

// Window geometry of an im2col / depthwise / pool node on its NCHW input.
WindowStep window_of(const Node& n) {
  const ir::Shape& x = n.inputs[0]->shape;
  const ir::Shape& y = n.outputs[0]->shape;
  WindowStep w;
  w.batch = x[0];
  w.channels = x[1];
  w.in_h = x[2];
  w.in_w = x[3];
  w.out_h = y[2];
  w.out_w = y[3];
  if (n.op == "gap") return w;
  const auto k = n.get_ints("kernel"), st = n.get_ints("strides"), p = n.get_ints("pads"), d = n.get_ints("dilations");
  w.kernel_h = k.at(0);
  w.kernel_w = k.at(1);
  w.stride_h = st.at(0);
  w.stride_w = st.at(1);
  w.pad_top = p.at(0);
  w.pad_left = p.at(1);
  w.dilation_h = d.at(0);
  w.dilation_w = d.at(1);
  if (n.has("width")) {  // a max pool or depthwise conv reading a direct convolution's ChannelBlocked grid
    w.in_w = n.get_int("width", 0);
    w.in_row_stride = x[3];
  }
  return w;
}

// ---- tensor steps ------------------------------------------------------------------------------

int64_t product(const ir::Shape& s, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t i = begin; i < end && i < s.size(); ++i) p *= s[i];
  return p;
}

// Row-major strides of `s` seen through the rank-r shape `out` it broadcasts to (0 where it
// broadcasts).
std::vector<int64_t> broadcast_strides(const ir::Shape& s, const ir::Shape& out) {
  const size_t r = out.size();
  std::vector<int64_t> st(r, 0);
  int64_t stride = 1;
  for (size_t i = 0; i < s.size(); ++i) {
    const size_t j = s.size() - 1 - i;  // dim of s, aligned to the right of out
    const size_t o = r - 1 - i;
    st[o] = s[j] == 1 && out[o] != 1 ? 0 : stride;
    stride *= s[j];
  }
  return st;
}

// Drops size-1 dims and merges neighbours that every operand walks contiguously, so the
// runtime's inner loop runs as long as possible; fails beyond SDNN_MAX_RANK.
void simplify(const Node& n, ElementwiseStep& e) {
  std::vector<int64_t> d;
  std::vector<std::vector<int64_t>> st(3);
  std::vector<int64_t>* src[3] = {&e.dst_strides, &e.src0_strides, &e.src1_strides};
  for (size_t i = 0; i < e.dims.size(); ++i) {
    if (e.dims[i] == 1) continue;
    if (!d.empty()) {
      bool merge = true;
      for (int o = 0; o < 3; ++o) merge &= st[o].back() == (*src[o])[i] * e.dims[i];
      if (merge) {
        d.back() *= e.dims[i];
        for (int o = 0; o < 3; ++o) st[o].back() = (*src[o])[i];
        continue;
      }
    }
    d.push_back(e.dims[i]);
    for (int o = 0; o < 3; ++o) st[o].push_back((*src[o])[i]);
  }
  if (d.empty()) {
    d.push_back(1);
    for (int o = 0; o < 3; ++o) st[o].push_back(1);
  }
  if (d.size() > SDNN_MAX_RANK)
    fail(n.where(), ": unsupported: the elementwise index space needs ", d.size(), " dims (at most ", SDNN_MAX_RANK,
         ")");
  // One long contiguous run (the usual blocked case) would be one unit of the runtime's work split:
  // cut it into rows of a few thousand floats so threads can share it.
  if (d.size() == 1 && d[0] >= 8192) {
    for (int64_t row = 4096; row >= 256; row /= 2)
      if (d[0] % row == 0) {
        d = {d[0] / row, row};
        for (int o = 0; o < 3; ++o) st[o] = {st[o][0] * row, st[o][0]};
        break;
      }
  }
  e.dims = d;
  e.dst_strides = st[0];
  e.src0_strides = st[1];
  e.src1_strides = st[2];
}

uint32_t elementwise_fn(const Node& n) {
  static const std::map<std::string, uint32_t> fns = {
      {"add", SDNN_FN_ADD},       {"sub", SDNN_FN_SUB},         {"mul", SDNN_FN_MUL},
      {"div", SDNN_FN_DIV},       {"pow", SDNN_FN_POW},         {"relu", SDNN_FN_RELU},
      {"leaky_relu", SDNN_FN_LEAKY_RELU}, {"sigmoid", SDNN_FN_SIGMOID}, {"tanh", SDNN_FN_TANH},
      {"erf", SDNN_FN_ERF},       {"sqrt", SDNN_FN_SQRT},       {"exp", SDNN_FN_EXP},
      {"gelu", SDNN_FN_GELU},     {"gelu_tanh", SDNN_FN_GELU_TANH}, {"neg", SDNN_FN_NEG}};
  auto it = fns.find(n.get_str("fn", ""));
  if (it == fns.end()) fail(n.where(), ": unknown elementwise function '", n.get_str("fn", ""), "'");
  return it->second;
}

void set_const(const Value* v, bool& has, std::vector<float>& data) {
  if (!v->is_constant()) return;
  has = true;
  if (v->f32) {
    data = *v->f32;
  } else {
    for (int64_t x : *v->i64) data.push_back(static_cast<float>(x));
  }
}

// unary / binary / transpose as one strided elementwise step.
ElementwiseStep lower_elementwise(const Node& n, int64_t vl) {
  ElementwiseStep e;
  const Value* y = n.outputs[0];
  const Value* a = n.inputs[0];
  const Value* b = n.op == "binary" ? n.inputs[1] : nullptr;
  e.fn = n.op == "transpose" ? static_cast<uint32_t>(SDNN_FN_COPY) : elementwise_fn(n);
  e.alpha = static_cast<float>(n.get_float("alpha", 0.0));
  set_const(a, e.has_src0_const, e.src0_const);
  if (b) set_const(b, e.has_src1_const, e.src1_const);
  if (n.op == "transpose") {
    const auto perm = n.get_ints("perm");
    const std::vector<int64_t> xs = broadcast_strides(a->shape, a->shape);
    e.dims = y->shape;
    e.dst_strides = broadcast_strides(y->shape, y->shape);
    for (int64_t p : perm) e.src0_strides.push_back(xs[p]);
    e.src1_strides.assign(e.dims.size(), 0);
  } else if (y->layout == ir::Layout::RowMajor) {
    e.dims = y->shape;
    e.dst_strides = broadcast_strides(y->shape, y->shape);
    e.src0_strides = broadcast_strides(a->shape, y->shape);
    e.src1_strides = b ? broadcast_strides(b->shape, y->shape) : std::vector<int64_t>(y->shape.size(), 0);
  } else {
    // Blocked: operands are same-layout activations, scalars, or (FeatureBlocked) per-feature
    // constants walked as [column blocks][F][VL].
    const ir::BlockedDims bd = ir::blocked_dims(y->shape, y->layout, vl);
    const int64_t f = bd.features, blocks = bd.batch * bd.padded_columns / vl;
    e.dims = {blocks, f, vl};
    e.dst_strides = {f * vl, vl, 1};
    auto strides = [&](const Value* v) -> std::vector<int64_t> {
      if (!v) return {0, 0, 0};
      if (!v->is_constant()) {
        SDNN_CHECK(v->layout == y->layout && v->shape == y->shape);
        return {f * vl, vl, 1};
      }
      if (v->numel() == 1) return {0, 0, 0};
      SDNN_CHECK(y->layout == ir::Layout::FeatureBlocked && v->numel() == f);
      return {0, 1, 0};
    };
    e.src0_strides = strides(a);
    e.src1_strides = strides(b);
  }
  simplify(n, e);
  return e;
}

// A strided copy (SDNN_FN_COPY) of `dims`, simplified.
ElementwiseStep copy_step(const Node& n, std::vector<int64_t> dims, std::vector<int64_t> dst_strides,
                          std::vector<int64_t> src_strides) {
  ElementwiseStep e;
  e.fn = SDNN_FN_COPY;
  e.dims = std::move(dims);
  e.dst_strides = std::move(dst_strides);
  e.src0_strides = std::move(src_strides);
  e.src1_strides.assign(e.dims.size(), 0);
  simplify(n, e);
  return e;
}

ir::Storage at_float(ir::Storage s, int64_t floats) {
  s.offset += floats * 4;
  return s;
}

// slice / concat / gather: row-major copies, one step per slice, input or index.
void lower_copies(const Node& n, std::vector<LoweredStep>& steps) {
  const Value* y = n.outputs[0];
  const std::vector<int64_t> ys = broadcast_strides(y->shape, y->shape);
  if (n.op == "slice") {
    const Value* x = n.inputs[0];
    const std::vector<int64_t> xs = broadcast_strides(x->shape, x->shape);
    const auto starts = n.get_ints("starts"), st = n.get_ints("steps");
    std::vector<int64_t> src(xs.size());
    int64_t offset = 0;
    for (size_t d = 0; d < xs.size(); ++d) {
      src[d] = xs[d] * st[d];
      offset += starts[d] * xs[d];
    }
    LoweredStep s;
    s.op = SDNN_STEP_ELEMENTWISE;
    s.elementwise = copy_step(n, y->shape, ys, src);
    s.src0 = at_float(x->storage, offset);
    s.dst = y->storage;
    steps.push_back(std::move(s));
    return;
  }
  if (n.op == "concat") {
    const size_t axis = static_cast<size_t>(n.get_int("axis", 0));
    int64_t at = 0;
    for (const Value* x : n.inputs) {
      LoweredStep s;
      s.op = SDNN_STEP_ELEMENTWISE;
      s.elementwise = copy_step(n, x->shape, ys, broadcast_strides(x->shape, x->shape));
      if (x->is_constant()) {
        s.elementwise.has_src0_const = true;
        s.elementwise.src0_const = *x->f32;
      } else {
        s.src0 = x->storage;
      }
      s.dst = at_float(y->storage, at * ys[axis]);
      at += x->shape[axis];
      steps.push_back(std::move(s));
    }
    return;
  }
  // gather: x as [outer, A, inner], y as [outer, T, inner]; one copy per index.
  const Value* x = n.inputs[0];
  const size_t axis = static_cast<size_t>(n.get_int("axis", 0));
  const int64_t outer = product(x->shape, 0, axis), a = x->shape[axis], inner = product(x->shape, axis + 1, x->shape.size());
  const auto indices = n.get_ints("indices");
  const int64_t t = static_cast<int64_t>(indices.size());
  for (int64_t i = 0; i < t; ++i) {
    LoweredStep s;
    s.op = SDNN_STEP_ELEMENTWISE;
    s.elementwise = copy_step(n, {outer, inner}, {t * inner, 1}, {a * inner, 1});
    s.src0 = at_float(x->storage, indices[i] * inner);
    s.dst = at_float(y->storage, i * inner);
    steps.push_back(std::move(s));
  }
}

// B offsets of a conv_direct kernel: weight column k = (c, ky, kx) reads plane
// (c, (ky*dh) % Sh, (kx*dw) % Sw) shifted by (ky*dh) / Sh rows and (kx*dw) / Sw columns.
std::vector<int64_t> direct_offsets(const Node& n) {
  const ir::Shape& planes = n.inputs[0]->shape;  // [B, C*Sh*Sw, R, Wq]
  const auto k = n.get_ints("kernel_shape"), st = n.get_ints("strides"), d = n.get_ints("dilations");
  const int64_t c = n.get_int("in_channels", 0), plane = planes[2] * planes[3], wq = planes[3];
  std::vector<int64_t> off;
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t ky = 0; ky < k[0]; ++ky)
      for (int64_t kx = 0; kx < k[1]; ++kx) {
        const int64_t py = ky * d[0] % st[0], dy = ky * d[0] / st[0];
        const int64_t px = kx * d[1] % st[1], dx = kx * d[1] / st[1];
        off.push_back(((ch * st[0] + py) * st[1] + px) * plane + dy * wq + dx);
      }
  return off;
}

// B offsets of a masked conv_direct kernel: column k = (c, ky, kx) reads the image of channel c
// shifted by ky - 1 rows and kx - 1 columns (the kernel masks the lanes that leave the image).
std::vector<int64_t> masked_offsets(const Node& n) {
  const ir::Shape& x = n.inputs[0]->shape;  // [B, C, H, W]
  std::vector<int64_t> off;
  for (int64_t ch = 0; ch < x[1]; ++ch)
    for (int64_t ky = 0; ky < 3; ++ky)
      for (int64_t kx = 0; kx < 3; ++kx) off.push_back(ch * x[2] * x[3] + (ky - 1) * x[3] + (kx - 1));
  return off;
}

MatmulStep lower_matmul(const Node& n) {
  const Value *a = n.inputs[0], *b = n.inputs[1], *y = n.outputs[0];
  MatmulStep mm;
  const size_t r = y->shape.size();
  mm.m = y->shape[r - 2];
  mm.n = y->shape[r - 1];
  mm.k = a->shape.back();
  mm.lda = mm.k;
  mm.ldb = mm.n;
  mm.ldc = mm.n;
  const ir::Shape batch(y->shape.begin(), y->shape.end() - 2);
  auto item_strides = [&](const ir::Shape& s, int64_t item) {
    // Strides of the operand's batch dims, in units of whole matrices of `item` floats.
    ir::Shape bs(s.begin(), s.end() - 2);
    std::vector<int64_t> st = broadcast_strides(bs, batch);
    for (int64_t& x : st) x *= item;
    return st;
  };
  mm.batch_dims = batch;
  mm.a_batch_strides = item_strides(a->shape, mm.m * mm.k);
  mm.b_batch_strides = item_strides(b->shape, mm.k * mm.n);
  mm.c_batch_strides = item_strides(y->shape, mm.m * mm.n);
  // Merge batch dims every operand walks contiguously, then drop size-1 dims.
  std::vector<int64_t> d, sa, sb, sc;
  for (size_t i = 0; i < batch.size(); ++i) {
    if (batch[i] == 1) continue;
    if (!d.empty() && sa.back() == mm.a_batch_strides[i] * batch[i] && sb.back() == mm.b_batch_strides[i] * batch[i] &&
        sc.back() == mm.c_batch_strides[i] * batch[i]) {
      d.back() *= batch[i];
      sa.back() = mm.a_batch_strides[i];
      sb.back() = mm.b_batch_strides[i];
      sc.back() = mm.c_batch_strides[i];
      continue;
    }
    d.push_back(batch[i]);
    sa.push_back(mm.a_batch_strides[i]);
    sb.push_back(mm.b_batch_strides[i]);
    sc.push_back(mm.c_batch_strides[i]);
  }
  if (d.size() > 4) fail(n.where(), ": unsupported: more than 4 batch dims");
  mm.batch_dims = d;
  mm.a_batch_strides = sa;
  mm.b_batch_strides = sb;
  mm.c_batch_strides = sc;
  if (b->is_constant()) mm.b_const = *b->f32;
  return mm;
}

}  // namespace

Isa detect_native_isa() {
  Xbyak::util::Cpu cpu;
  if (cpu.has(Xbyak::util::Cpu::tAVX512F)) return Isa::Avx512;
  if (cpu.has(Xbyak::util::Cpu::tAVX2) && cpu.has(Xbyak::util::Cpu::tFMA)) return Isa::Avx2;
  fail("--target native: this CPU has neither AVX-512F nor AVX2+FMA; sdnnc generates code for those only");
}

Isa parse_target(const std::string& target) {
  if (target == "native") return detect_native_isa();
  if (target == "avx512") return Isa::Avx512;
  if (target == "avx2") return Isa::Avx2;
  fail("unknown --target '", target, "' (expected native, avx512 or avx2)");
}

bool parse_thread_split(const std::string& s) {
  if (s == "auto") return true;
  if (s == "rows") return false;
  fail("unknown --thread-split '", s, "' (expected auto or rows)");
}

LoweredModel lower(ir::Graph& g, const LowerOptions& opts) {
  LoweredModel m;
  m.required_cpu = opts.isa == Isa::Avx512 ? (SDNN_CPU_AVX512F | SDNN_CPU_AVX2) : SDNN_CPU_AVX2;
  m.producer = str_cat("sdnnc ", SDNN_VERSION, " ", to_string(opts.isa));
  for (const Value* v : g.inputs()) m.inputs.push_back({v->name, v->shape, v->dtype == ir::DType::I64});
  for (const Value* v : g.outputs()) m.outputs.push_back({v->name, v->shape});
  auto it = g.meta().find("arena_bytes");
  m.arena_bytes = it == g.meta().end() ? 0 : std::stoll(it->second);
  const int64_t vl = vector_floats(opts.isa);
  auto vit = g.meta().find("vector_floats");
  if (vit == g.meta().end() || std::stoll(vit->second) != vl)
    fail("lower: the graph's layouts were planned for another vector width than ", to_string(opts.isa), "'s");

  std::vector<Job> jobs;  // kernels[i] is tuned and emitted for jobs[i] after the walk
  for (const auto& np : g.nodes()) {
    Node& n = *np;
    check_planned(n);
    LoweredStep s;
    if (n.op == "fc" || n.op == "conv1x1" || n.op == "conv_direct") {
      const Value* x = n.inputs[0];
      const Value* w = n.inputs[1];
      const Value* b = n.inputs.size() > 2 ? n.inputs[2] : nullptr;
      const int64_t rows = w->shape[0], k = w->shape[1];
      LoweredKernel lk;
      Family family = n.get_str("kernel", "sparse") == "dense" ? Family::Dense : Family::Spmm;
      const Activation act = activation_of(n);
      KernelPlan plan;
      if (n.op == "conv_direct") {
        // B: the planes [B][C*Sh*Sw][R][Wq]; C over the Ho x Wq grid, ChannelBlocked, or
        // ({planes_out}) straight into the next conv's planes [B][M][R'][Wq].
        const Value* y = n.outputs[0];
        SDNN_CHECK(family == Family::Spmm && x->layout == ir::Layout::RowMajor);
        lk.batch = x->shape[0];
        lk.b_batch_stride = x->numel() / x->shape[0];
        lk.b_col_scale = 1;
        if (n.has("masked")) {
          // B: the NCHW image [B][C][H][W] itself; C: the output, ChannelBlocked or NCHW planes
          // (stored under the image mask), no crop after.
          const auto hw = n.get_ints("masked");
          SDNN_CHECK(opts.isa == Isa::Avx512 && hw.size() == 2 && x->shape[1] * 9 == k && y->shape[1] == rows);
          plan = default_plan(family, opts.isa, rows, k, hw[0] * hw[1], b != nullptr, act);
          plan.mask_h = hw[0];
          plan.mask_w = hw[1];
          fit_masked_k_block(plan);
          if (y->layout == ir::Layout::RowMajor) {
            plan.c_plane = hw[0] * hw[1];
            lk.c_batch_stride = rows * plan.c_plane;
            lk.c_col_scale = 1;
          } else {
            const ir::BlockedDims bd = ir::blocked_dims(y->shape, y->layout, vl);
            SDNN_CHECK(y->layout == ir::Layout::ChannelBlocked && bd.features == rows && plan.n == bd.padded_columns);
            lk.c_batch_stride = rows * bd.padded_columns;
            lk.c_col_scale = rows;
          }
        } else if (n.has("planes_out")) {
          const int64_t cols = padded_columns(n.get_int("grid_rows", 0) * y->shape[3], opts.isa);
          plan = default_plan(family, opts.isa, rows, k, cols, b != nullptr, act);
          plan.c_plane = y->shape[2] * y->shape[3];
          lk.c_batch_stride = rows * plan.c_plane;
          lk.c_col_scale = 1;
          const auto po = n.get_ints("planes_out");  // pad_top, pad_left, H, W
          lk.c_offset = po[0] * y->shape[3] + po[1];
        } else {
          const ir::BlockedDims bd = ir::blocked_dims(y->shape, y->layout, vl);
          SDNN_CHECK(bd.features == rows);
          plan = default_plan(family, opts.isa, rows, k, bd.padded_columns, b != nullptr, act);
          lk.c_batch_stride = rows * bd.padded_columns;
          lk.c_col_scale = rows;
        }
        plan.b_offsets = n.has("masked") ? masked_offsets(n) : direct_offsets(n);
        group_direct_columns(plan, static_cast<int64_t>(std::count_if(w->f32->begin(), w->f32->end(),
                                                                      [](float v) { return v != 0.0f; })));
      } else {
        const ir::BlockedDims bd = ir::blocked_dims(x->shape, x->layout, vl);
        SDNN_CHECK(x->layout != ir::Layout::RowMajor && bd.features == k);
        const int64_t cols = bd.padded_columns;
        lk.batch = bd.batch;
        lk.b_batch_stride = k * cols;
        lk.c_batch_stride = rows * cols;
        lk.b_col_scale = k;
        lk.c_col_scale = rows;
        plan = default_plan(family, opts.isa, rows, k, cols, b != nullptr, act);
        group_columns(plan, static_cast<int64_t>(std::count_if(w->f32->begin(), w->f32->end(),
                                                               [](float v) { return v != 0.0f; })));
        const Value* y = n.outputs[0];
        if (n.op == "conv1x1" && y->layout == ir::Layout::RowMajor) {
          // NCHW output (choose-layout, for a masked 3x3 conv): C planes of H*W, the last vector
          // of each stored under a mask.
          SDNN_CHECK(opts.isa == Isa::Avx512 && family == Family::Spmm && y->shape.size() == 4);
          plan.c_plane = y->shape[2] * y->shape[3];
          plan.c_cols = plan.c_plane;
          lk.c_batch_stride = rows * plan.c_plane;
          lk.c_col_scale = 1;
        }
      }
      if (family == Family::Spmm) plan.row_order = n.get_ints("row_order");
      const Value* residual = n.inputs.size() > 3 ? n.inputs[3] : nullptr;
      if (residual) {
        SDNN_CHECK(family == Family::Spmm && residual->layout == n.outputs[0]->layout);
        plan.residual = true;
        s.src1 = residual->storage;
      }
      lk.bin.plan = plan;
      lk.bin.symbol = kernel_symbol(static_cast<int>(m.kernels.size()), plan);
      jobs.push_back({&n, w});
      if (b) lk.bias = *b->f32;
      n.attrs["plan"] = plan.str();
      n.attrs["symbol"] = lk.bin.symbol;
      lk.layer = n.name;
      lk.op = n.op;
      lk.split = opts.column_split ? SDNN_SPLIT_COLUMNS : SDNN_SPLIT_ROWS;
      s.op = SDNN_STEP_KERNEL;
      s.src0 = x->storage;
      s.dst = at_float(n.outputs[0]->storage, lk.c_offset);
      s.kernel = static_cast<int>(m.kernels.size());
      m.kernels.push_back(std::move(lk));
      if (n.has("planes_out")) {
        // The kernel wrote garbage where the planes' zero padding belongs: clear it.
        m.steps.push_back(s);
        const Value* y = n.outputs[0];
        const auto po = n.get_ints("planes_out");
        s = LoweredStep{};
        s.op = SDNN_STEP_ZERO_BORDERS;
        s.dst = y->storage;
        s.has_window = true;
        WindowStep& w = s.window;
        w.batch = y->shape[0];
        w.channels = y->shape[1];
        w.out_h = y->shape[2];
        w.out_w = y->shape[3];
        w.pad_top = po[0];
        w.pad_left = po[1];
        w.in_h = po[2];
        w.in_w = po[3];
      }
    } else if (n.op == "pad_planes" || n.op == "crop") {
      const Value* x = n.inputs[0];
      const Value* y = n.outputs[0];
      WindowStep& w = s.window;
      s.has_window = true;
      s.src0 = x->storage;
      s.dst = y->storage;
      w.batch = x->shape[0];
      w.channels = x->shape[1];
      w.in_h = x->shape[2];
      w.in_w = x->shape[3];
      w.out_h = y->shape[2];
      w.out_w = y->shape[3];
      if (n.op == "pad_planes") {
        const auto st = n.get_ints("strides"), pads = n.get_ints("pads");
        s.op = SDNN_STEP_PAD_PLANES;
        if (n.has("width")) {  // reads a direct convolution's output grid, skipping its extra columns
          w.in_w = n.get_int("width", 0);
          w.in_row_stride = x->shape[3];
        }
        w.stride_h = st[0];
        w.stride_w = st[1];
        w.pad_top = pads[0];
        w.pad_left = pads[1];
        w.vl = x->layout == ir::Layout::ChannelBlocked ? vl : 0;
        // Blocked input, stride 1 or 2, block by block under lane masks (as plan_check), AVX-512 or
        // AVX2 code (the rows path copied runs of VL floats per channel and row).
        w.by_blocks = ((opts.isa == Isa::Avx512 && w.vl == 16) || (opts.isa == Isa::Avx2 && w.vl == 8)) &&
                      (st[0] == 1 || st[0] == 2) && st[0] == st[1] && (w.pad_top + w.in_h - 1) / st[0] < w.out_h &&
                      (w.pad_left + w.in_w - 1) / st[0] < w.out_w;
      } else {
        s.op = SDNN_STEP_CROP;
        w.vl = vl;
        if (n.has("strides")) {  // a strided 1x1 convolution's subsampling
          const auto st = n.get_ints("strides");
          w.stride_h = st[0];
          w.stride_w = st[1];
        }
        if (n.inputs.size() > 1) {  // a residual block's add (and activation) folded into the crop
          s.src1 = n.inputs[1]->storage;
          w.residual = 1;
          w.act = sdnn_act(activation_of(n));
        }
        // Block by block (AVX-512 or AVX2 code; the rows path copied runs of VL floats per channel
        // and row, 6-10x slower with AVX2: bench/RESULTS.md "Session 16"), int32 offsets as plan_check.
        w.by_blocks = (w.in_h * w.in_w + 16) * w.channels < (int64_t{1} << 31) && w.out_h * w.out_w < (int64_t{1} << 31);
        if (y->layout == ir::Layout::RowMajor) {  // choose-layout's crop straight to NCHW
          w.dst_nchw = 1;  // by_blocks as for a blocked output: the block code stores NCHW too
        }
      }
      sdnn_window_params wp{};
      wp.in_w = w.in_w;
      wp.out_w = w.out_w;
      m.scratch_bytes = std::max<int64_t>(m.scratch_bytes, sdnn_window_scratch_floats(&wp) * 4);
    } else if (n.op == "im2col" || n.op == "depthwise" || n.op == "maxpool" || n.op == "avgpool" || n.op == "gap") {
      s.op = n.op == "im2col"      ? SDNN_STEP_IM2COL
             : n.op == "depthwise" ? SDNN_STEP_DEPTHWISE
             : n.op == "maxpool"   ? SDNN_STEP_MAXPOOL
             : n.op == "avgpool"   ? SDNN_STEP_AVGPOOL
                                   : SDNN_STEP_GLOBAL_AVGPOOL;
      s.src0 = n.inputs[0]->storage;
      s.dst = n.outputs[0]->storage;
      s.has_window = true;
      s.window = window_of(n);
      if (n.op == "im2col" || (n.op == "maxpool" && n.has("width"))) s.window.vl = vl;
      if (n.op == "avgpool") s.window.count_include_pad = n.get_int("count_include_pad", 0) != 0;
      if (n.op == "depthwise" && n.inputs[0]->layout == ir::Layout::ChannelBlocked) {
        SDNN_CHECK(n.outputs[0]->layout == ir::Layout::ChannelBlocked);
        s.op = SDNN_STEP_DEPTHWISE_BLOCKED;
        s.window.vl = vl;
        // AVX-512: output block by output block, every channel inside; "same" stride-1 windows
        // as shifted windows of the blocked input (1), any other geometry gathered (2).
        const WindowStep& g = s.window;
        const bool same = g.stride_h == 1 && g.stride_w == 1 && g.dilation_h == 1 && g.dilation_w == 1 &&
                          g.out_h == g.in_h && g.out_w == g.in_w;
        // (The block code indexes in int32: the same limits as plan_check.)
        const int64_t row_stride = g.in_row_stride ? g.in_row_stride : g.in_w;
        if (opts.isa == Isa::Avx512 && g.kernel_h * g.kernel_w <= 49 &&
            (g.in_h * row_stride + 16) * g.channels < (int64_t{1} << 31) && g.out_h * g.out_w < (int64_t{1} << 31))
          s.window.by_blocks = same ? 1 : 2;
        // AVX2: channel-transposed tiles (3) for any geometry the tile formula takes; the row path
        // copied short runs per channel and row and ran 4-15x slower (bench/RESULTS.md "Session 16").
        if (opts.isa == Isa::Avx2) {
          sdnn_window_params tp{};
          tp.vl = vl, tp.kernel_h = g.kernel_h, tp.kernel_w = g.kernel_w, tp.stride_h = g.stride_h;
          tp.stride_w = g.stride_w, tp.dilation_h = g.dilation_h, tp.dilation_w = g.dilation_w, tp.out_w = g.out_w;
          if (sdnn_dw_tiles_fit(&tp)) s.window.by_blocks = 3;
        }
        // A grid ({width}, direct-conv) is read by the shifted-window code only.
        if (n.has("width") && s.window.by_blocks != 1 && s.window.by_blocks != 3)
          fail(n.where(), ": reads a direct convolution's grid, which needs the AVX-512 shifted-window depthwise code"
                          " (3x3, stride 1, int32 offsets) or the AVX2 tiles");
        const WindowStep& w = s.window;
        sdnn_window_params wp{};
        wp.in_h = w.in_h, wp.in_w = w.in_w, wp.out_h = w.out_h, wp.out_w = w.out_w, wp.kernel_h = w.kernel_h;
        wp.kernel_w = w.kernel_w, wp.stride_h = w.stride_h, wp.stride_w = w.stride_w, wp.dilation_h = w.dilation_h;
        wp.dilation_w = w.dilation_w, wp.pad_top = w.pad_top, wp.pad_left = w.pad_left;
        wp.vl = vl;
        const int64_t scratch = sdnn_depthwise_blocked_scratch_floats(&wp);
        m.scratch_bytes = std::max<int64_t>(m.scratch_bytes, scratch * 4);
      }
      if (n.op == "depthwise") {
        s.window.weights = *n.inputs[1]->f32;
        if (n.inputs.size() > 2 && n.inputs[2]) s.window.bias = *n.inputs[2]->f32;
        s.window.act = sdnn_act(activation_of(n));
      }
    } else if (n.op == "clip") {
      s.op = SDNN_STEP_CLIP;
      s.src0 = n.inputs[0]->storage;
      s.dst = n.outputs[0]->storage;
      s.dims[0] = n.outputs[0]->storage_bytes(vl) / 4;
      s.alpha = static_cast<float>(std::max(n.get_float("min", 0.0), -3.4028234663852886e38));
      s.beta = static_cast<float>(std::min(n.get_float("max", 0.0), 3.4028234663852886e38));
    } else if (n.op == "relu" || n.op == "copy") {
      s.op = n.op == "relu" ? SDNN_STEP_RELU : SDNN_STEP_COPY;
      s.src0 = n.inputs[0]->storage;
      s.dst = n.outputs[0]->storage;
      s.dims[0] = n.outputs[0]->storage_bytes(vl) / 4;
    } else if (n.op == "add") {
      s.op = SDNN_STEP_ADD;
      s.src0 = n.inputs[0]->storage;
      s.src1 = n.inputs[1]->storage;
      s.dst = n.outputs[0]->storage;
      s.dims[0] = n.outputs[0]->storage_bytes(vl) / 4;
    } else if (n.op == "unary" || n.op == "binary" || n.op == "transpose") {
      s.op = SDNN_STEP_ELEMENTWISE;
      s.elementwise = lower_elementwise(n, vl);
      if (!n.inputs[0]->is_constant()) s.src0 = n.inputs[0]->storage;
      if (n.op == "binary" && !n.inputs[1]->is_constant()) s.src1 = n.inputs[1]->storage;
      s.dst = n.outputs[0]->storage;
    } else if (n.op == "cast") {
      s.op = SDNN_STEP_CAST_I64;
      s.src0 = n.inputs[0]->storage;
      s.dst = n.outputs[0]->storage;
      s.dims[0] = n.outputs[0]->numel();
    } else if (n.op == "embedding") {
      const Value* table = n.inputs[0];
      s.op = SDNN_STEP_GATHER_ROWS;
      s.src0 = n.inputs[1]->storage;
      s.dst = n.outputs[0]->storage;
      s.dims[0] = n.inputs[1]->numel();
      s.dims[1] = table->shape[1];
      s.dims[2] = table->shape[0];
      s.table.table = *table->f32;
    } else if (n.op == "slice" || n.op == "concat" || n.op == "gather") {
      lower_copies(n, m.steps);
      continue;
    } else if (n.op == "reduce_mean" || n.op == "softmax") {
      const ir::Shape& x = n.inputs[0]->shape;
      size_t a0, a1;  // the reduced (or softmax) axes [a0, a1)
      if (n.op == "reduce_mean") {
        const auto axes = n.get_ints("axes");
        a0 = static_cast<size_t>(axes.front());
        a1 = static_cast<size_t>(axes.back()) + 1;
        if (a1 - a0 != axes.size())
          fail(n.where(), ": unsupported: ReduceMean over the non-adjacent axes ", ir::shape_to_string(axes));
      } else {
        a0 = static_cast<size_t>(n.get_int("axis", -1));
        a1 = n.get_int("coerced", 0) ? x.size() : a0 + 1;
      }
      s.op = n.op == "softmax" ? SDNN_STEP_SOFTMAX : SDNN_STEP_REDUCE_MEAN;
      s.src0 = n.inputs[0]->storage;
      s.dst = n.outputs[0]->storage;
      s.dims[0] = product(x, 0, a0);
      s.dims[1] = product(x, a0, a1);
      s.dims[2] = product(x, a1, x.size());
    } else if (n.op == "matmul") {
      s.op = SDNN_STEP_MATMUL;
      s.matmul = lower_matmul(n);
      s.src0 = n.inputs[0]->storage;
      if (!n.inputs[1]->is_constant()) s.src1 = n.inputs[1]->storage;
      s.dst = n.outputs[0]->storage;
    } else if (n.op == "layernorm") {
      const Value* x = n.inputs[0];
      const size_t axis = static_cast<size_t>(n.get_int("axis", -1));
      NormStep& ns = s.norm;
      ns.tokens = product(x->shape, 0, axis);
      ns.features = product(x->shape, axis, x->shape.size());
      ns.blocked = x->layout != ir::Layout::RowMajor;
      SDNN_CHECK(!ns.blocked || (x->layout == ir::Layout::FeatureBlocked && axis + 1 == x->shape.size()));
      ns.vl = vl;
      ns.epsilon = static_cast<float>(n.get_float("epsilon", 1e-5));
      auto expand = [&](const Value* v) {
        std::vector<float> out(ns.features);
        for (int64_t i = 0; i < ns.features; ++i) out[i] = (*v->f32)[v->numel() == 1 ? 0 : i];
        return out;
      };
      ns.gamma = expand(n.inputs[1]);
      if (n.inputs.size() > 2 && n.inputs[2]) ns.beta = expand(n.inputs[2]);
      s.op = SDNN_STEP_LAYERNORM;
      s.src0 = x->storage;
      s.dst = n.outputs[0]->storage;
    } else if (n.op == "attention") {
      const ir::Shape& q = n.inputs[0]->shape;
      AttentionStep& at = s.attention;
      at.batch = q[0];
      at.seq = q[1];
      at.heads = n.get_int("heads", 1);
      at.head_dim = q[2] / at.heads;
      at.vl = vl;
      at.scale = static_cast<float>(n.get_float("scale", 1.0));
      at.has_mask = n.inputs.size() > 3 && n.inputs[3];
      s.op = SDNN_STEP_ATTENTION;
      s.src0 = n.inputs[0]->storage;
      s.src1 = n.inputs[1]->storage;
      s.src2 = n.inputs[2]->storage;
      if (at.has_mask) {
        at.mask_batch = n.inputs[3]->shape[0];
        if (n.inputs[3]->is_constant())
          at.mask_const = *n.inputs[3]->f32;
        else
          s.src3 = n.inputs[3]->storage;
      }
      s.dst = n.outputs[0]->storage;
      sdnn_attention_params ap{};
      ap.seq = at.seq, ap.head_dim = at.head_dim, ap.vl = vl;
      const int64_t scratch = sdnn_attention_scratch_floats(&ap);
      m.scratch_bytes = std::max<int64_t>(m.scratch_bytes, scratch * 4);
    } else if (n.op == "reshape") {
      SDNN_CHECK(same_storage(n.inputs[0]->storage, n.outputs[0]->storage));
      continue;
    } else if (n.op == "layout") {
      const Value* in = n.inputs[0];
      const Value* out = n.outputs[0];
      const bool pack = in->layout == ir::Layout::RowMajor;
      const Value* blocked = pack ? out : in;
      SDNN_CHECK(pack != (out->layout == ir::Layout::RowMajor));
      const ir::BlockedDims bd = ir::blocked_dims(blocked->shape, blocked->layout, vl);
      const bool channels = blocked->layout == ir::Layout::ChannelBlocked;
      s.op = pack ? (channels ? SDNN_STEP_PACK_CHANNELS : SDNN_STEP_PACK_ROWS)
                  : (channels ? SDNN_STEP_UNPACK_CHANNELS : SDNN_STEP_UNPACK_ROWS);
      s.src0 = in->storage;
      s.dst = out->storage;
      s.dims[0] = bd.batch;
      s.dims[1] = bd.columns;
      s.dims[2] = bd.features;
      s.dims[3] = vl;
    } else {
      fail(n.where(), ": the x86 backend cannot lower op '", n.op, "'");
    }
    m.steps.push_back(s);
  }
  tune_all(m, jobs, opts);
  emit_all(m, jobs, opts.threads);
  return m;
}

}  // namespace sdnn::backend
