// kernel_emitter.cpp — Xbyak emitters for the generated kernels (SpMM and dense GEMM).
//
// Calling contract (runtime_min/include/sdnn_plan.h): kernel(const sdnn_kernel_args* a) runs
// code blocks [a->block_begin, a->block_end) of one k block over columns [0, a->n). A block is
// one (k block, row tile); blocks are laid out k-block-major and each falls through to the
// next, so the entry only has to jump to the first one through a table of relative offsets.
//
// Per block:
//     b_cur = b; c_cur = c; n_left = n
//     while n_left >= NB*VL:                  // full column chunks
//         acc = first k block ? 0 : C[tile rows, chunk]
//         body: acc += A[tile rows, k block] * B[k block, chunk]
//         last k block ? store(act(acc + bias)) : store(acc)
//         b_cur += NB*VL; c_cur += NB*VL; n_left -= NB*VL
//     while n_left > 0:                       // tail, one masked vector at a time (if N needs it)
//         same with NB = 1 and a mask of min(n_left, VL) lanes
//     values += block's value count; if ++block == block_end: return
//
// SpMM body, pattern baked in: for each column k the tile uses (ascending), load B[k, chunk]
// once (its offset k*ldb*4 is an immediate displacement), then for every tile row with
// A[m,k] != 0 FMA broadcast(A[m,k]) into that row's accumulators. The values are read in exactly
// that order (the "Z-order" stream), with short disp8 displacements: the values register is
// rebased inside the body when the displacement would leave the disp8 range, and restored after.
// Dense body: a loop over the block's k with A packed [k][tile row].
//
// Register layout:
//   general: rdi args, r8 b, r9 c, r10 values, r11 bias, rdx block, rsi block_end, rcx n_left,
//            rax b_cur, rbx c_cur, r12/r13 temporaries (mask set-up; dense: B and values
//            cursors), r14 dense k counter.
//   AVX-512: zmm0..A-1 accumulators (A = mb*nb, row-major), then two sets of nb B registers,
//            then one broadcast register when nb > 1 (nb == 1 uses embedded {1to16} broadcasts);
//            k1 the tail mask.
//   AVX2:    ymm0..A-1 accumulators, nb B registers, one broadcast register, one mask register.
#include "sdnn/backend/kernel_emitter.h"

#include <xbyak/xbyak.h>

#include <algorithm>
#include <cstddef>
#include <map>

#include "sdnn/ir/error.h"
#include "sdnn_plan.h"

namespace sdnn::backend {
namespace {

// Code is generated into ordinary memory and copied out: never made executable here.
struct PlainAllocator : Xbyak::Allocator {
  bool useProtect() const override { return false; }
};
PlainAllocator g_plain_allocator;

// Owns the calling convention: saved registers on entry, vzeroupper + restore on exit.
class Emitter : public Xbyak::CodeGenerator {
 protected:
  Emitter() : Xbyak::CodeGenerator(64 * 1024, Xbyak::AutoGrow, &g_plain_allocator) {}

  void preamble() {
    for (const auto& r : kSaved) push(r);
  }
  void postamble() {
    for (auto it = std::rbegin(kSaved); it != std::rend(kSaved); ++it) pop(*it);
    vzeroupper();
    ret();
  }

 public:
  std::vector<uint8_t> bytes() {
    ready();
    return std::vector<uint8_t>(getCode(), getCode() + getSize());
  }

 private:
  static inline const Xbyak::Reg64 kSaved[] = {Xbyak::util::rbx, Xbyak::util::rbp, Xbyak::util::r12,
                                                Xbyak::util::r13, Xbyak::util::r14, Xbyak::util::r15};
};

// One nonzero of a block's body, in consumption order.
struct Entry {
  int32_t col;
  int32_t row;  // row within the tile
  float val;
};

class BlockedKernelEmitter : public Emitter {
 public:
  BlockedKernelEmitter(const KernelPlan& plan, const SparseMatrix& a) : p_(plan), a_(a) { validate(); }

  KernelBinary emit(const std::string& symbol) {
    KernelBinary out;
    out.symbol = symbol;
    out.plan = p_;
    out.nnz = a_.nnz();
    std::vector<Xbyak::Label> blocks(p_.num_k_blocks() * p_.num_tiles());
    Xbyak::Label table, done;

    preamble();
    mov(reg_b, ptr[reg_args + offsetof(sdnn_kernel_args, b)]);
    mov(reg_c, ptr[reg_args + offsetof(sdnn_kernel_args, c)]);
    mov(reg_vals, ptr[reg_args + offsetof(sdnn_kernel_args, values)]);
    mov(reg_bias, ptr[reg_args + offsetof(sdnn_kernel_args, bias)]);
    mov(reg_block, ptr[reg_args + offsetof(sdnn_kernel_args, block_begin)]);
    mov(reg_block_end, ptr[reg_args + offsetof(sdnn_kernel_args, block_end)]);
    lea(reg_tmp, ptr[rip + table]);
    movsxd(reg_tmp2, dword[reg_tmp + reg_block * 4]);
    add(reg_tmp, reg_tmp2);
    jmp(reg_tmp);

    std::vector<size_t> block_pos;
    out.block_offsets.push_back(0);
    for (int64_t kb = 0; kb < p_.num_k_blocks(); ++kb) {
      for (int64_t t = 0; t < p_.num_tiles(); ++t) {
        L(blocks[block_pos.size()]);
        block_pos.push_back(getSize());
        int64_t count = emit_block(kb, t, out.values);
        out.block_offsets.push_back(out.block_offsets.back() + count);
        add(reg_vals, count * 4);
        inc(reg_block);
        cmp(reg_block, reg_block_end);
        jge(done, T_NEAR);
      }
    }
    L(done);
    postamble();

    // Constant pool and the dispatch table, reached only through rip-relative addresses.
    align(64);
    L(zeros_);
    for (int i = 0; i < 16; ++i) dd(0);
    L(masks_);  // AVX2 tail masks: load 8 lanes starting at index 8 - r for r valid lanes
    for (int i = 0; i < 16; ++i) dd(i < 8 ? 0xffffffffu : 0u);
    L(table);
    size_t table_pos = getSize();
    for (size_t pos : block_pos) dd(static_cast<uint32_t>(static_cast<int64_t>(pos) - static_cast<int64_t>(table_pos)));
    out.code = bytes();
    return out;
  }

 private:
  // ---- plan checks ----------------------------------------------------------------------------
  void validate() {
    if (p_.m <= 0 || p_.k <= 0 || p_.n <= 0) fail("kernel plan: empty problem ", p_.m, "x", p_.k, "x", p_.n);
    if (a_.m != p_.m || a_.k != p_.k) fail("kernel plan: weights are ", a_.m, "x", a_.k, ", plan says ", p_.m, "x", p_.k);
    if (p_.mb < 1 || p_.nb < 1) fail("kernel plan: bad tile ", p_.mb, "x", p_.nb);
    if (p_.ldb < p_.n || p_.ldc < p_.n) fail("kernel plan: row strides smaller than N");
    int regs = p_.mb * p_.nb + reserved_vector_registers();
    if (regs > vector_registers(p_.isa))
      fail("kernel plan ", p_.str(), ": needs ", regs, " vector registers, ", to_string(p_.isa), " has ",
           vector_registers(p_.isa));
    if (p_.needs_tail() && p_.mb + reserved_vector_registers_tail() > vector_registers(p_.isa))
      fail("kernel plan ", p_.str(), ": tail needs too many vector registers");
    const int64_t limit = int64_t{1} << 31;
    if (p_.k * p_.ldb * 4 + 64 * p_.nb >= limit || p_.m * p_.ldc * 4 + 64 * p_.nb >= limit)
      fail("kernel plan ", p_.str(), ": B or C exceeds the 2 GiB displacement range");
  }
  bool evex() const { return p_.isa == Isa::Avx512; }
  bool embedded_bcast(int nbv) const { return evex() && nbv == 1; }
  int reserved_vector_registers() const {
    return evex() ? 2 * p_.nb + (p_.nb > 1 ? 1 : 0) : p_.nb + 2;
  }
  int reserved_vector_registers_tail() const { return evex() ? 2 : 3; }

  // ---- registers ------------------------------------------------------------------------------
  Xbyak::Xmm vreg(int i) const {
    return evex() ? Xbyak::Xmm(Xbyak::Zmm(i)) : Xbyak::Xmm(Xbyak::Ymm(i));
  }
  Xbyak::Xmm acc(int row, int j, int nbv) const { return vreg(row * nbv + j); }
  Xbyak::Xmm breg(int set, int j, int nbv) const { return vreg(p_.mb * nbv + set * nbv + j); }
  Xbyak::Xmm bcast(int nbv) const { return vreg(p_.mb * nbv + (evex() ? 2 : 1) * nbv); }
  Xbyak::Xmm vmask(int nbv) const { return vreg(p_.mb * nbv + nbv + 1); }  // AVX2 only

  // ---- memory operands ------------------------------------------------------------------------
  int vbytes() const { return vector_floats(p_.isa) * 4; }
  Xbyak::Address b_addr(int64_t k, int j) { return ptr[reg_bcur + k * p_.ldb * 4 + j * vbytes()]; }
  Xbyak::Address c_addr(int64_t row, int j) { return ptr[reg_ccur + row * p_.ldc * 4 + j * vbytes()]; }

  // Values operand for element `idx` of the block, rebasing reg_vals so the displacement stays
  // in disp8 range (EVEX scales disp8 by 4 for a dword broadcast; VEX does not).
  Xbyak::RegExp val_exp(int64_t idx) {
    const int64_t window = evex() ? 128 : 32;
    int64_t d = idx - vbase_;
    if (d < -window || d >= window) {
      int64_t nb = idx + window - 1;
      add(reg_vals, (nb - vbase_) * 4);
      vbase_ = nb;
    }
    return reg_vals + (idx - vbase_) * 4;
  }
  void restore_vals() {
    if (vbase_ != 0) sub(reg_vals, vbase_ * 4);
    vbase_ = 0;
  }

  // ---- loads / stores with optional tail mask --------------------------------------------------
  void load(const Xbyak::Xmm& dst, const Xbyak::Address& src, bool masked, int nbv) {
    if (!masked) return vmovups(dst, src);
    if (evex()) return vmovups(dst | k1 | T_z, src);
    vmaskmovps(dst, vmask(nbv), src);
  }
  void store(const Xbyak::Address& dst, const Xbyak::Xmm& src, bool masked, int nbv) {
    if (!masked) return vmovups(dst, src);
    if (evex()) return vmovups(dst | k1, src);
    vmaskmovps(dst, vmask(nbv), src);
  }

  void set_tail_mask() {
    const int vl = vector_floats(p_.isa);
    mov(reg_tmp.cvt32(), vl);
    cmp(reg_n, vl);
    cmovl(reg_tmp.cvt32(), reg_n.cvt32());  // r = min(n_left, VL) >= 1
    if (evex()) {
      mov(reg_tmp2.cvt32(), -1);
      bzhi(reg_tmp2.cvt32(), reg_tmp2.cvt32(), reg_tmp.cvt32());
      kmovw(k1, reg_tmp2.cvt32());
    } else {
      lea(reg_tmp2, ptr[rip + masks_]);
      neg(reg_tmp);
      vmovups(vmask(1), ptr[reg_tmp2 + reg_tmp * 4 + 32]);
    }
  }

  // ---- one block ------------------------------------------------------------------------------
  // Emits the code of block (kb, tile), appends its values, returns how many it appended.
  int64_t emit_block(int64_t kb, int64_t tile, std::vector<float>& values) {
    const int64_t k0 = kb * p_.k_block, k1 = std::min(p_.k, p_.num_k_blocks() == 1 ? p_.k : k0 + p_.k_block);
    const int64_t r0 = tile * p_.mb;
    const int rows = static_cast<int>(std::min<int64_t>(p_.mb, p_.m - r0));
    const bool first = kb == 0, last = kb + 1 == p_.num_k_blocks();

    std::vector<Entry> entries;
    if (p_.family == Family::Spmm) {
      for (int r = 0; r < rows; ++r) {
        int64_t row = r0 + r;
        auto b = a_.col.begin() + a_.row_ptr[row], e = a_.col.begin() + a_.row_ptr[row + 1];
        auto lo = std::lower_bound(b, e, static_cast<int32_t>(k0));
        auto hi = std::lower_bound(b, e, static_cast<int32_t>(k1));
        for (auto it = lo; it != hi; ++it)
          entries.push_back({*it, r, a_.val[static_cast<size_t>(it - a_.col.begin())]});
      }
      std::stable_sort(entries.begin(), entries.end(),
                       [](const Entry& x, const Entry& y) { return x.col < y.col; });
      for (const Entry& en : entries) values.push_back(en.val);
    } else {
      for (int64_t k = k0; k < k1; ++k)
        for (int r = 0; r < rows; ++r) values.push_back(dense_at(r0 + r, k));
    }

    Xbyak::Label main_loop, tail, tail_loop, end;
    const int64_t chunk = p_.tile_cols();
    const int vl = vector_floats(p_.isa);
    mov(reg_bcur, reg_b);
    mov(reg_ccur, reg_c);
    mov(reg_n, ptr[reg_args + offsetof(sdnn_kernel_args, n)]);
    cmp(reg_n, chunk);
    jl(tail, T_NEAR);
    L(main_loop);
    emit_chunk(entries, k0, k1, r0, rows, first, last, p_.nb, false);
    add(reg_bcur, chunk * 4);
    add(reg_ccur, chunk * 4);
    sub(reg_n, chunk);
    cmp(reg_n, chunk);
    jge(main_loop, T_NEAR);
    L(tail);
    if (p_.needs_tail()) {
      test(reg_n, reg_n);
      jle(end, T_NEAR);
      L(tail_loop);
      set_tail_mask();
      emit_chunk(entries, k0, k1, r0, rows, first, last, 1, true);
      add(reg_bcur, vl * 4);
      add(reg_ccur, vl * 4);
      sub(reg_n, vl);
      jg(tail_loop, T_NEAR);
    }
    L(end);
    return p_.family == Family::Spmm ? static_cast<int64_t>(entries.size()) : (k1 - k0) * rows;
  }

  float dense_at(int64_t row, int64_t k) const {
    auto b = a_.col.begin() + a_.row_ptr[row], e = a_.col.begin() + a_.row_ptr[row + 1];
    auto it = std::lower_bound(b, e, static_cast<int32_t>(k));
    return (it != e && *it == k) ? a_.val[static_cast<size_t>(it - a_.col.begin())] : 0.0f;
  }

  // One column chunk of nbv vectors: init, body, epilogue, store.
  void emit_chunk(const std::vector<Entry>& entries, int64_t k0, int64_t k1, int64_t r0, int rows,
                  bool first, bool last, int nbv, bool masked) {
    for (int r = 0; r < rows; ++r)
      for (int j = 0; j < nbv; ++j) {
        Xbyak::Xmm a = acc(r, j, nbv);
        if (first) {
          if (evex()) vpxord(a, a, a);
          else vxorps(a, a, a);
        } else {
          load(a, c_addr(r0 + r, j), masked, nbv);
        }
      }
    if (p_.family == Family::Spmm) spmm_body(entries, rows, nbv, masked);
    else dense_body(k0, k1, rows, nbv, masked);
    for (int r = 0; r < rows; ++r)
      for (int j = 0; j < nbv; ++j) {
        Xbyak::Xmm a = acc(r, j, nbv);
        if (last && p_.bias) {
          if (evex()) {
            vaddps(a, a, ptr_b[reg_bias + (r0 + r) * 4]);
          } else {
            if (j == 0) vbroadcastss(bcast(nbv), ptr[reg_bias + (r0 + r) * 4]);
            vaddps(a, a, bcast(nbv));
          }
        }
        if (last && p_.act == Activation::Relu) {
          if (evex()) vmaxps(a, a, ptr_b[rip + zeros_]);
          else vmaxps(a, a, ptr[rip + zeros_]);
        }
        store(c_addr(r0 + r, j), a, masked, nbv);
      }
  }

  void spmm_body(const std::vector<Entry>& entries, int rows, int nbv, bool masked) {
    (void)rows;
    int set = 0;
    for (size_t i = 0; i < entries.size();) {
      const int32_t col = entries[i].col;
      for (int j = 0; j < nbv; ++j) load(breg(set, j, nbv), b_addr(col, j), masked, nbv);
      for (; i < entries.size() && entries[i].col == col; ++i) {
        const Entry& en = entries[i];
        Xbyak::RegExp v = val_exp(static_cast<int64_t>(i));
        if (embedded_bcast(nbv)) {
          vfmadd231ps(acc(en.row, 0, nbv), breg(set, 0, nbv), ptr_b[v]);
        } else {
          vbroadcastss(bcast(nbv), ptr[v]);
          for (int j = 0; j < nbv; ++j) vfmadd231ps(acc(en.row, j, nbv), breg(set, j, nbv), bcast(nbv));
        }
      }
      if (evex()) set ^= 1;
    }
    restore_vals();
  }

  void dense_body(int64_t k0, int64_t k1, int rows, int nbv, bool masked) {
    Xbyak::Label loop;
    lea(reg_kb, ptr[reg_bcur + k0 * p_.ldb * 4]);
    mov(reg_kv, reg_vals);
    mov(reg_kcount, k1 - k0);
    L(loop);
    for (int j = 0; j < nbv; ++j) load(breg(0, j, nbv), ptr[reg_kb + j * vbytes()], masked, nbv);
    for (int r = 0; r < rows; ++r) {
      if (embedded_bcast(nbv)) {
        vfmadd231ps(acc(r, 0, nbv), breg(0, 0, nbv), ptr_b[reg_kv + r * 4]);
      } else {
        vbroadcastss(bcast(nbv), ptr[reg_kv + r * 4]);
        for (int j = 0; j < nbv; ++j) vfmadd231ps(acc(r, j, nbv), breg(0, j, nbv), bcast(nbv));
      }
    }
    add(reg_kb, p_.ldb * 4);
    add(reg_kv, rows * 4);
    dec(reg_kcount);
    jnz(loop, T_NEAR);
  }

  const KernelPlan& p_;
  const SparseMatrix& a_;
  int64_t vbase_ = 0;  // element of the block that reg_vals points at
  Xbyak::Label zeros_, masks_;

  const Xbyak::Reg64 reg_args = rdi, reg_b = r8, reg_c = r9, reg_vals = r10, reg_bias = r11;
  const Xbyak::Reg64 reg_block = rdx, reg_block_end = rsi, reg_n = rcx, reg_bcur = rax, reg_ccur = rbx;
  const Xbyak::Reg64 reg_tmp = r12, reg_tmp2 = r13;
  const Xbyak::Reg64 reg_kb = r12, reg_kv = r13, reg_kcount = r14;  // dense body only
};

}  // namespace

std::string kernel_symbol(int index, const KernelPlan& plan) {
  return str_cat("sdnn_k", index, "_", to_string(plan.family), "_f32_", plan.mb, "x", plan.nb, "__", to_string(plan.isa));
}

KernelBinary emit_kernel(const KernelPlan& plan, const SparseMatrix& a, const std::string& symbol) {
  try {
    return BlockedKernelEmitter(plan, a).emit(symbol);
  } catch (const Xbyak::Error& e) {
    fail("code generation for ", symbol, " (", plan.str(), ") failed: ", e.what());
  }
}

}  // namespace sdnn::backend
