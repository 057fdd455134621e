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
        lk.bin = emit_kernel(lk.bin.plan, weights_of(jobs[i]), lk.bin.symbol);
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
  return w;
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

LoweredModel lower(ir::Graph& g, const LowerOptions& opts) {
  LoweredModel m;
  m.required_cpu = opts.isa == Isa::Avx512 ? (SDNN_CPU_AVX512F | SDNN_CPU_AVX2) : SDNN_CPU_AVX2;
  m.producer = str_cat("sdnnc ", SDNN_VERSION, " ", to_string(opts.isa));
  for (const Value* v : g.inputs()) m.inputs.push_back({v->name, v->shape});
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
    if (n.op == "fc" || n.op == "conv1x1") {
      const Value* x = n.inputs[0];
      const Value* w = n.inputs[1];
      const Value* b = n.inputs.size() > 2 ? n.inputs[2] : nullptr;
      const int64_t rows = w->shape[0], k = w->shape[1];
      LoweredKernel lk;
      const ir::BlockedDims bd = ir::blocked_dims(x->shape, x->layout, vl);
      SDNN_CHECK(x->layout != ir::Layout::RowMajor && bd.features == k);
      const int64_t cols = bd.padded_columns;
      lk.batch = bd.batch;
      lk.b_batch_stride = k * cols;
      lk.c_batch_stride = rows * cols;
      Family family = n.get_str("kernel", "sparse") == "dense" ? Family::Dense : Family::Spmm;
      const Activation act = activation_of(n);
      KernelPlan plan = default_plan(family, opts.isa, rows, k, cols, b != nullptr, act);
      if (family == Family::Spmm) plan.row_order = n.get_ints("row_order");
      lk.bin.plan = plan;
      lk.bin.symbol = kernel_symbol(static_cast<int>(m.kernels.size()), plan);
      jobs.push_back({&n, w});
      if (b) lk.bias = *b->f32;
      n.attrs["plan"] = plan.str();
      n.attrs["symbol"] = lk.bin.symbol;
      lk.layer = n.name;
      lk.op = n.op;
      s.op = SDNN_STEP_KERNEL;
      s.src0 = x->storage;
      s.dst = n.outputs[0]->storage;
      s.kernel = static_cast<int>(m.kernels.size());
      m.kernels.push_back(std::move(lk));
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
      if (n.op == "im2col") s.window.vl = vl;
      if (n.op == "avgpool") s.window.count_include_pad = n.get_int("count_include_pad", 0) != 0;
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
