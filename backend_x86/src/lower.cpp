// lower.cpp — turns the planned graph into kernels + runtime steps.
//
// fc:       C[M x N] = W * X^T with X feature-major ([K][N], N = rows of the logical input);
// conv1x1:  per image, C[M x HW] = W * X[C x HW] (NCHW needs no transpose);
// relu, add, copy: elementwise steps; layout: a transpose unless it aliases its input;
// reshape: nothing (plan-buffers made it an alias).
#include "sdnn/backend/lower.h"

#include <xbyak/xbyak_util.h>

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
      lk.layer = n.name;
      int64_t cols;
      if (n.op == "fc") {
        cols = x->numel() / k;
      } else {
        cols = x->shape[2] * x->shape[3];
        lk.batch = x->shape[0];
        lk.b_batch_stride = k * cols;
        lk.c_batch_stride = rows * cols;
      }
      Family family = n.get_str("kernel", "sparse") == "dense" ? Family::Dense : Family::Spmm;
      Activation act = n.get_str("epilogue", "") == "relu" ? Activation::Relu : Activation::None;
      KernelPlan plan = default_plan(family, opts.isa, rows, k, cols, b != nullptr, act);
      SparseMatrix a = SparseMatrix::from_dense(w->f32->data(), rows, k);
      lk.bin = emit_kernel(plan, a, kernel_symbol(static_cast<int>(m.kernels.size()), plan));
      if (b) lk.bias = *b->f32;
      n.attrs["plan"] = plan.str();
      n.attrs["symbol"] = lk.bin.symbol;
      s.op = SDNN_STEP_KERNEL;
      s.src0 = x->storage;
      s.dst = n.outputs[0]->storage;
      s.kernel = static_cast<int>(m.kernels.size());
      m.kernels.push_back(std::move(lk));
    } else if (n.op == "relu" || n.op == "copy") {
      s.op = n.op == "relu" ? SDNN_STEP_RELU : SDNN_STEP_COPY;
      s.src0 = n.inputs[0]->storage;
      s.dst = n.outputs[0]->storage;
      s.dims[0] = n.outputs[0]->numel();
    } else if (n.op == "add") {
      s.op = SDNN_STEP_ADD;
      s.src0 = n.inputs[0]->storage;
      s.src1 = n.inputs[1]->storage;
      s.dst = n.outputs[0]->storage;
      s.dims[0] = n.outputs[0]->numel();
    } else if (n.op == "reshape" || n.op == "layout") {
      if (same_storage(n.inputs[0]->storage, n.outputs[0]->storage)) continue;
      SDNN_CHECK(n.op == "layout");
      const ir::Shape& sh = n.inputs[0]->shape;
      const int64_t f = sh.empty() ? 1 : sh.back(), rows = n.inputs[0]->numel() / f;
      const bool to_fm = n.get_str("to", "") == "fm";
      s.op = SDNN_STEP_TRANSPOSE;
      s.src0 = n.inputs[0]->storage;
      s.dst = n.outputs[0]->storage;
      s.dims[0] = 1;
      s.dims[1] = to_fm ? rows : f;
      s.dims[2] = to_fm ? f : rows;
    } else {
      fail(n.where(), ": the x86 backend cannot lower op '", n.op, "'");
    }
    m.steps.push_back(s);
  }
  return m;
}

}  // namespace sdnn::backend
