// kernel_emitter.cpp — Xbyak emitters for the generated kernels (SpMM and dense GEMM).
//
// Calling contract (runtime_min/include/sdnn_plan.h): kernel(const sdnn_kernel_args* a) runs
// code blocks [a->block_begin, a->block_end) of one k block over columns [0, a->n). A block is
// one (k block, row tile); blocks are laid out k-block-major and each falls through to the
// next, so a phase only has to jump to the first one through a table of relative offsets.
//
//     for each group of G column chunks of NB vectors:    // G = n_group; the B strips of a
//         for block in [begin, end):                      // group [k block x G chunks] stay in L1
//             for chunk in group:                         // the block's code is reused G times
//                 acc = first k block ? 0 : C[tile rows, chunk]
//                 body: acc += A[tile rows, k block] * B[k block, chunk]
//                 last k block ? store(act(acc + bias)) : store(acc)
//     then the same for the columns left with G = 1, then with NB = 1 (phases N does not need
//     are not emitted).
// B and C are blocked (kernel_plan.h): vector j of a chunk is its own [K][VL] / [M][VL] block,
// so B[k, vector j] is at j*K*VL + k*VL floats from the chunk's start and every access of a
// chunk falls in one contiguous strip; N is padded to VL, so nothing is masked. An AVX2 plan the
// tuner tries inside an AVX-512 model (plan.layout_vl = 16) keeps that model's 16-float blocks:
// ymm vector j of a chunk is half j % 2 of block j / 2, so chunks are whole blocks (nb even).
//
// SpMM body, pattern baked in: for each column k the tile uses (ascending), load B[k, chunk]
// once (its offset is an immediate displacement), then for every tile row with
// A[m,k] != 0 FMA broadcast(A[m,k]) into that row's accumulators. The values are read in exactly
// that order (the "Z-order" stream), with short disp8 displacements: the values register is
// rebased inside the body when the displacement would leave the disp8 range, and restored after.
// With EVEX the chunk's B register is rebased the same way (disp8 * 64 reaches 128 rows of B
// either side), so B loads are 7 bytes instead of 10 at any k: the kernels run from the
// instruction fetch, and every byte per nonzero shows in their speed.
// With plan.prefetch, each block's body also carries evenly spaced prefetcht1 of its slice of
// the next group's B strip (and optionally prefetchw of its next-group C rows): by the time the
// next group starts, its B is in L2 instead of L3 or memory. With kPrefetchCode, each block's
// body also carries evenly spaced prefetcht1 of the next block's code (one per
// kCodePrefetchStride bytes; the L2's adjacent-line and stream prefetchers fill the lines
// between): a block's first pass is the one whose instructions miss L1i, and without it they
// come from L3 or memory once the B and C streams have evicted them from L2 (bench/RESULTS.md
// "Session 10: code prefetch").
// Dense body: a loop over the block's k with A packed [k][tile row].
//
// Masked direct 3x3 convolution (plan.masked(), AVX-512, one-vector chunks): B is the compact
// NCHW image and the grid is the image itself, so a tap's window runs off the image at the
// borders (and past H*W in the last vector). A block's columns are consumed in (ky, channel, kx)
// order instead of (channel, ky, kx): three passes, each reading one shifted row of every
// channel, with only the three masks of that ky live. A table in the constant pool holds, per
// vector of the grid, the nine masks (ky, kx) (lane inside the image and its tap too); each
// chunk finds its entry from reg_bin - (args->b - col0) (kept on the stack), each pass loads its
// row's three into k1..k3 (kx = 0, 1, 2), and every B load zero-masks with its tap's: masked-off
// lanes are not read (no fault past the image either) and accumulate zero. Outside the body k1
// holds V (lane inside the image): a bias is added under V with zeroing, leaving the blocked
// layout's pad columns 0.
// With C as planes of the image (c_plane = H*W: NCHW output) the stores are masked by V, so the
// last vector of a channel does not spill into the next channel's first columns.
//
// Register layout:
//   general: rdi args (then the chunk counter of a group), rax / rbx B / C at the group,
//            rbp / r15 B / C at the chunk a body works on, rcx columns left, rdx block,
//            rsi block_end, r8 block_begin, r9 values at block_begin, r10 values of the current
//            block, r11 bias, r12/r13 temporaries (dispatch; dense: B and values cursors; masked
//            and tail-store plans: r12 the chunk's mask-table entry through its body),
//            r14 dense k counter, or (sparse, residual epilogue) residual - C.
//   AVX-512: zmm0..A-1 accumulators (A = mb*nb, row-major), then two sets of nb B registers
//            (one when the tile leaves no room for two), then one broadcast register when
//            nb > 1 without embedded broadcasts (nb == 1 uses embedded {1to16} broadcasts).
//   AVX2:    ymm0..A-1 accumulators, nb B registers, one broadcast register.
#include "sdnn/backend/kernel_emitter.h"

#include <xbyak/xbyak.h>

#include <algorithm>
#include <cstddef>

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
    const int64_t num_blocks = p_.num_k_blocks() * p_.num_tiles();
    blocks_.clear();
    out.block_offsets.push_back(0);
    for (int64_t kb = 0; kb < p_.num_k_blocks(); ++kb)
      for (int64_t t = 0; t < p_.num_tiles(); ++t) {
        blocks_.push_back(make_block(kb, t, out.values));
        out.block_offsets.push_back(static_cast<int64_t>(out.values.size()));
      }
    SDNN_CHECK(static_cast<int64_t>(blocks_.size()) == num_blocks);

    preamble();
    mov(reg_bcur, ptr[reg_args + offsetof(sdnn_kernel_args, b)]);
    mov(reg_ccur, ptr[reg_args + offsetof(sdnn_kernel_args, c)]);
    mov(reg_n, ptr[reg_args + offsetof(sdnn_kernel_args, n)]);
    mov(reg_vals0, ptr[reg_args + offsetof(sdnn_kernel_args, values)]);
    mov(reg_bias, ptr[reg_args + offsetof(sdnn_kernel_args, bias)]);
    mov(reg_block_begin, ptr[reg_args + offsetof(sdnn_kernel_args, block_begin)]);
    mov(reg_block_end, ptr[reg_args + offsetof(sdnn_kernel_args, block_end)]);
    if (p_.masked() || tail_store()) {  // B (C) at column 0 of the batch item, for the chunks' mask index
      mov(reg_tmp, ptr[reg_args + (p_.masked() ? offsetof(sdnn_kernel_args, b) : offsetof(sdnn_kernel_args, c))]);
      mov(reg_tmp2, ptr[reg_args + offsetof(sdnn_kernel_args, col0)]);
      shl(reg_tmp2, 2);
      sub(reg_tmp, reg_tmp2);
      push(reg_tmp);
    }
    if (p_.residual) {  // R - C: the residual of a C element is at [C element + reg_res]
      mov(reg_res, ptr[reg_args + offsetof(sdnn_kernel_args, residual)]);
      sub(reg_res, reg_ccur);
    }
    // reg_args is free from here on: it counts the chunks of a group.
    std::vector<Phase> phases = plan_phases();
    for (Phase& ph : phases) emit_phase(ph);
    if (p_.masked() || tail_store()) add(rsp, 8);
    postamble();

    // Constant pool and the dispatch tables, reached only through rip-relative addresses.
    align(64);
    L(sixes_);
    for (int i = 0; i < 16; ++i) dd(0x40c00000u);  // 6.0f
    for (Phase& ph : phases) emit_table(ph.table, ph.pos);
    if (!phases.empty()) out.block_code = phases.front().pos;
    if (p_.masked()) emit_masks();  // after the tables: 32-byte entries stay aligned
    if (tail_store()) emit_tail_masks();
    out.code = bytes();
    return out;
  }

 private:
  // One (k block, row tile): its nonzeros in consumption order and where it sits in the matrix.
  struct Block {
    int64_t tile;
    int64_t k0, k1;
    std::vector<int64_t> row;  // the tile's rows of A / C, in tile order (plan.row_order)
    int rows;
    bool first, last;  // first / last k block
    std::vector<Entry> entries;  // SpMM only
    int64_t count;               // values consumed per column chunk
  };

  Block make_block(int64_t kb, int64_t tile, std::vector<float>& values) const {
    Block b;
    b.tile = tile;
    b.k0 = kb * p_.k_block;
    b.k1 = std::min(p_.k, p_.num_k_blocks() == 1 ? p_.k : b.k0 + p_.k_block);
    if (p_.num_k_blocks() == 1) b.k0 = 0;
    const int64_t r0 = tile * p_.mb;
    b.rows = static_cast<int>(std::min<int64_t>(p_.mb, p_.m - r0));
    for (int r = 0; r < b.rows; ++r) b.row.push_back(p_.row_order.empty() ? r0 + r : p_.row_order[r0 + r]);
    b.first = kb == 0;
    b.last = kb + 1 == p_.num_k_blocks();
    if (p_.family == Family::Spmm) {
      for (int r = 0; r < b.rows; ++r) {
        const int64_t row = b.row[r];
        auto beg = a_.col.begin() + a_.row_ptr[row], end = a_.col.begin() + a_.row_ptr[row + 1];
        auto lo = std::lower_bound(beg, end, static_cast<int32_t>(b.k0));
        auto hi = std::lower_bound(beg, end, static_cast<int32_t>(b.k1));
        for (auto it = lo; it != hi; ++it)
          b.entries.push_back({*it, r, a_.val[static_cast<size_t>(it - a_.col.begin())]});
      }
      // Masked plans: (ky, channel, kx) order, so one row's three masks are live at a time.
      auto key = [this](int32_t c) -> int64_t {
        return p_.masked() ? (c % 9 / 3) * p_.k + c / 9 * 3 + c % 3 : c;
      };
      std::stable_sort(b.entries.begin(), b.entries.end(),
                       [&](const Entry& x, const Entry& y) { return key(x.col) < key(y.col); });
      for (const Entry& en : b.entries) values.push_back(en.val);
      b.count = static_cast<int64_t>(b.entries.size());
    } else {
      for (int64_t k = b.k0; k < b.k1; ++k)
        for (int r = 0; r < b.rows; ++r) values.push_back(dense_at(b.row[r], k));
      b.count = (b.k1 - b.k0) * b.rows;
    }
    return b;
  }

  // Jumps to block reg_block_begin of the phase whose table is `table`, values at its start.
  void dispatch(const Xbyak::Label& table) {
    mov(reg_block, reg_block_begin);
    mov(reg_vals, reg_vals0);
    lea(reg_tmp, ptr[rip + table]);
    movsxd(reg_tmp2, dword[reg_tmp + reg_block * 4]);
    add(reg_tmp, reg_tmp2);
    jmp(reg_tmp);
  }

  void end_block(const Block& b, const Xbyak::Label& phase_end) {
    if (b.count) add(reg_vals, b.count * 4);
    inc(reg_block);
    cmp(reg_block, reg_block_end);
    jge(phase_end, T_NEAR);
  }

  // A phase visits every block of the range with `group` column chunks of `nbv` vectors each,
  // while at least that many columns are left. Only the phases N needs are emitted: groups of
  // n_group chunks, then single chunks of nb vectors, then single vectors.
  struct Phase {
    int group, nbv;
    Xbyak::Label table;
    std::vector<size_t> pos;
  };

  std::vector<Phase> plan_phases() const {
    std::vector<Phase> phases;
    const int64_t vl = vector_floats(p_.isa);
    int64_t left = p_.n;
    auto want = [&](int group, int nbv) {
      const int64_t cols = int64_t{group} * nbv * vl;
      if (left >= cols) {
        phases.push_back(Phase{group, nbv, {}, {}});
        left %= cols;
      }
    };
    if (p_.n_group > 1) want(p_.n_group, p_.nb);
    want(1, p_.nb);
    if (p_.nb > vper()) want(1, vper());  // one layout block
    SDNN_CHECK(left == 0);
    return phases;
  }

  void emit_phase(Phase& ph) {
    const int64_t cols = int64_t{ph.group} * ph.nbv * vector_floats(p_.isa);
    Xbyak::Label start, next, after;
    L(start);
    cmp(reg_n, cols);
    jl(after, T_NEAR);
    dispatch(ph.table);
    std::vector<Xbyak::Label> starts(blocks_.size());  // each block's code (code prefetch targets)
    const bool code_prefetch = (p_.prefetch & kPrefetchCode) && p_.family == Family::Spmm;
    // Each block's estimated code, back to front: a block carries the next one's code prefetches.
    std::vector<int64_t> est(blocks_.size() + 1, 0);
    for (size_t bi = blocks_.size(); code_prefetch && bi-- > 0;)
      est[bi] = estimate_code_bytes(blocks_[bi], ph) + 7 * ((est[bi + 1] + kCodePrefetchStride - 1) / kCodePrefetchStride);
    for (size_t bi = 0; bi < blocks_.size(); ++bi) {
      const Block& b = blocks_[bi];
      L(starts[bi]);
      code_pf_.clear();
      if (code_prefetch && bi + 1 < blocks_.size()) {
        for (int64_t off = 0; off < est[bi + 1]; off += kCodePrefetchStride) code_pf_.push_back(off);
        code_pf_label_ = &starts[bi + 1];
      }
      ph.pos.push_back(getSize());
      Xbyak::Label chunk_loop;
      mov(reg_bin, reg_bcur);
      mov(reg_cin, reg_ccur);
      if (ph.group > 1) {
        mov(reg_group, ph.group);
        L(chunk_loop);
      }
      emit_chunk(b, ph.nbv, prefetches(b, ph));
      if (ph.group > 1) {
        add(reg_bin, ph.nbv / vper() * b_block_bytes());
        add(reg_cin, ph.nbv / vper() * c_block_bytes());
        dec(reg_group);
        jnz(chunk_loop, T_NEAR);
      }
      end_block(b, next);
    }
    code_pf_label_ = nullptr;
    L(next);
    add(reg_bcur, ph.group * (ph.nbv / vper()) * b_block_bytes());
    add(reg_ccur, ph.group * (ph.nbv / vper()) * c_block_bytes());
    sub(reg_n, cols);
    jmp(start, T_NEAR);
    L(after);
  }

  // What block b prefetches for the next group of its phase (plan.prefetch): the next group's
  // same chunk lies group * nbv blocks of B (C) further. Each block takes one slice of its k
  // block's rows, sliced by tile index, so together the tiles of a k block fetch its whole strip
  // once per chunk; the first k block also fetches the tile's C rows for writing.
  struct Prefetch {
    int64_t disp;  // bytes from reg_bin (B, before any rebase) or reg_cin (C, write)
    bool write;
  };
  std::vector<Prefetch> prefetches(const Block& b, const Phase& ph) {
    std::vector<Prefetch> out;
    if (!p_.prefetch || p_.family != Family::Spmm || p_.direct()) return out;
    const int64_t tiles = p_.num_tiles(), span = b.k1 - b.k0;
    const int64_t rows_per_line = std::max<int64_t>(1, 64 / lbytes());
    const int blocks = ph.nbv / vper();  // layout blocks of a chunk
    const int64_t bdist = int64_t{ph.group} * blocks * b_block_bytes();
    int64_t lo = b.k0 + span * b.tile / tiles, hi = b.k0 + span * (b.tile + 1) / tiles;
    lo -= (lo - b.k0) % rows_per_line;
    for (int j = 0; j < blocks && (p_.prefetch & kPrefetchB); ++j)
      for (int64_t k = lo; k < hi; k += rows_per_line)
        out.push_back({bdist + j * b_block_bytes() + k * lbytes(), false});
    if ((p_.prefetch & kPrefetchC) && b.first && p_.c_plane == 0) {
      const int64_t cdist = int64_t{ph.group} * blocks * c_block_bytes();
      for (int j = 0; j < blocks; ++j)
        for (int r = 0; r < b.rows; ++r)
          out.push_back({cdist + j * c_block_bytes() + b.row[r] * lbytes(), true});
    }
    return out;
  }

  // Table entries are offsets of each block's code from the table itself.
  void emit_table(Xbyak::Label& table, const std::vector<size_t>& pos) {
    L(table);
    const int64_t at = static_cast<int64_t>(getSize());
    for (size_t p : pos) dd(static_cast<uint32_t>(static_cast<int64_t>(p) - at));
  }

  // Sixteen 16-bit words per vector of the grid: the nine masks (ky, kx) at word ky * 3 + kx
  // (word 4, the centre, is V), then 0.
  void emit_masks() {
    align(64);
    L(masks_);
    const int64_t h = p_.mask_h, w = p_.mask_w;
    for (int64_t v = 0; v < p_.n / 16; ++v) {
      uint16_t m[16] = {};
      for (int i = 0; i < 16; ++i) {
        const int64_t q = v * 16 + i, y = q / w, x = q % w;
        if (q >= h * w) continue;
        for (int t = 0; t < 9; ++t) {
          const int64_t iy = y + t / 3 - 1, ix = x + t % 3 - 1;
          if (iy >= 0 && iy < h && ix >= 0 && ix < w) m[t] = static_cast<uint16_t>(m[t] | (1u << i));
        }
      }
      for (uint16_t word : m) dw(word);
    }
  }

  // reg_tmp = the chunk's table entry (masked plans; reg_tmp / reg_tmp2 are free in bodies), k1 = V.
  void load_masks() {
    mov(reg_tmp, reg_bin);
    sub(reg_tmp, ptr[rsp]);
    shr(reg_tmp, 1);  // (column * 4 bytes) / 2 = vector index * 32 bytes of table
    lea(reg_tmp2, ptr[rip + masks_]);
    add(reg_tmp, reg_tmp2);
    kmovw(Xbyak::Opmask(1), ptr[reg_tmp + 4 * 2]);
  }
  // The masks of row ky's taps into k1..k3.
  void load_row_masks(int ky) {
    for (int kx = 0; kx < 3; ++kx) kmovw(Xbyak::Opmask(kx + 1), ptr[reg_tmp + (ky * 3 + kx) * 2]);
  }

  // Plain SpMM writing C as planes whose last vector runs past the plane's c_cols columns (NCHW
  // output of H*W % 16 != 0 columns): that vector's stores (and the C reads of later k blocks)
  // are masked, or it would overwrite the next plane's first columns. k1 = the chunk's word of a
  // table of one mask per vector (all lanes but in the last), indexed by reg_cin - (args->c - col0).
  bool tail_store() const { return evex() && !p_.masked() && p_.c_plane > 0 && p_.c_cols > 0 && p_.c_cols % 16 != 0; }
  bool c_masked() const { return tail_store() || (p_.masked() && p_.c_plane > 0); }
  void emit_tail_masks() {
    align(64);
    L(tail_masks_);
    for (int64_t v = 0; v < p_.n / 16; ++v) {
      const int64_t lanes = std::clamp<int64_t>(p_.c_cols - v * 16, 0, 16);
      dw(static_cast<uint16_t>(lanes == 16 ? 0xffffu : (1u << lanes) - 1u));
    }
  }
  void load_tail_mask() {
    mov(reg_tmp, reg_cin);
    sub(reg_tmp, ptr[rsp]);
    shr(reg_tmp, 5);  // (column * 4 bytes) / 32 = vector index * 2 bytes of table
    lea(reg_tmp2, ptr[rip + tail_masks_]);
    kmovw(Xbyak::Opmask(1), ptr[reg_tmp + reg_tmp2]);
  }

  // ---- plan checks ----------------------------------------------------------------------------
  void validate() {
    if (p_.m <= 0 || p_.k <= 0 || p_.n <= 0) fail("kernel plan: empty problem ", p_.m, "x", p_.k, "x", p_.n);
    if (a_.m != p_.m || a_.k != p_.k) fail("kernel plan: weights are ", a_.m, "x", a_.k, ", plan says ", p_.m, "x", p_.k);
    if (p_.mb < 1 || p_.nb < 1) fail("kernel plan: bad tile ", p_.mb, "x", p_.nb);
    if (!p_.row_order.empty()) {
      std::vector<bool> seen(p_.m, false);
      if (static_cast<int64_t>(p_.row_order.size()) != p_.m) fail("kernel plan: row order has ", p_.row_order.size(), " rows, M = ", p_.m);
      for (int64_t r : p_.row_order) {
        if (r < 0 || r >= p_.m || seen[r]) fail("kernel plan: row order is not a permutation of 0..", p_.m - 1);
        seen[r] = true;
      }
    }
    if (p_.layout_vl != 0 &&
        (p_.isa != Isa::Avx2 || p_.layout_vl != 16 || p_.family != Family::Spmm || p_.direct() || p_.c_plane != 0 ||
         p_.nb % 2 != 0))
      fail("kernel plan ", p_.str(), ": a ", p_.layout_vl, "-float layout under ", to_string(p_.isa),
           " vectors needs AVX2, a 16-float layout, the sparse family on blocked B and C and an even nb");
    if (p_.n % p_.layout_floats() != 0)
      fail("kernel plan ", p_.str(), ": N = ", p_.n, " is not padded to the layout's vector width");
    int regs = p_.mb * p_.nb + reserved_vector_registers();
    if (regs > vector_registers(p_.isa))
      fail("kernel plan ", p_.str(), ": needs ", regs, " vector registers, ", to_string(p_.isa), " has ",
           vector_registers(p_.isa));
    const int64_t limit = int64_t{1} << 31;
    if (p_.residual && p_.family != Family::Spmm)
      fail("kernel plan ", p_.str(), ": a residual epilogue needs the sparse family");
    if (p_.direct()) {
      if (p_.family != Family::Spmm) fail("kernel plan ", p_.str(), ": direct convolution needs the sparse family");
      if (static_cast<int64_t>(p_.b_offsets.size()) != p_.k)
        fail("kernel plan ", p_.str(), ": ", p_.b_offsets.size(), " B offsets for K = ", p_.k);
      const int64_t lowest = p_.masked() ? -(p_.mask_w + 1) : 0;  // masked: windows start above / left
      for (int64_t off : p_.b_offsets)
        if (off < lowest || (off + p_.nb * vector_floats(p_.isa)) * 4 >= limit)
          fail("kernel plan ", p_.str(), ": B offset ", off, " is outside the displacement range");
    }
    if (p_.c_cols < 0 || p_.c_cols > p_.n || (p_.c_cols > 0 && (p_.c_plane < p_.c_cols || (p_.c_cols % 16 != 0 && p_.nb != 1))))
      fail("kernel plan ", p_.str(), ": ", p_.c_cols, " stored columns of ", p_.n, " need C planes of at least that many "
           "floats (and one-vector tiles when the last vector is partial)");
    if (p_.c_cols % vector_floats(p_.isa) != 0 && !evex())
      fail("kernel plan ", p_.str(), ": a partial last vector of C planes needs AVX-512 store masks");
    if (p_.masked()) {
      if (!evex() || p_.nb != 1 || !p_.direct() || (p_.c_plane != 0 && p_.c_plane != p_.mask_h * p_.mask_w) ||
          p_.k % 9 != 0 || p_.mask_h <= 0 ||
          p_.n < p_.mask_h * p_.mask_w || p_.n >= (int64_t{1} << 31))
        fail("kernel plan ", p_.str(), ": a masked direct convolution needs AVX-512, one-vector tiles, blocked C or "
             "C planes of the image, K = 9 * channels and N covering the ", p_.mask_h, "x", p_.mask_w, " image");
    }
    if (p_.c_plane < 0 || (p_.c_plane > 0 && (p_.m * p_.c_plane + p_.nb * vector_floats(p_.isa)) * 4 >= limit))
      fail("kernel plan ", p_.str(), ": C planes of ", p_.c_plane, " floats exceed the displacement range");
    if ((p_.prefetch & (kPrefetchB | kPrefetchC)) && ((p_.n_group + 1) * p_.nb * b_block_bytes() >= limit || (p_.n_group + 1) * p_.nb * c_block_bytes() >= limit))
      fail("kernel plan ", p_.str(), ": the next column group is beyond the 2 GiB displacement range");
    if (p_.nb * b_block_bytes() >= limit || p_.nb * c_block_bytes() >= limit)
      fail("kernel plan ", p_.str(), ": a column chunk of B or C exceeds the 2 GiB displacement range");
    if ((p_.k + 128) * lbytes() >= limit)  // the B register's rebase (b_addr) moves by up to that
      fail("kernel plan ", p_.str(), ": K = ", p_.k, " rows of B exceed the 2 GiB displacement range");
  }
  bool evex() const { return p_.isa == Isa::Avx512; }
  // AVX-512 FMAs take the weight as an embedded {1to16} broadcast (one load per FMA, no register)
  // unless the plan asks for one vbroadcastss per weight shared by the nb FMAs of a row.
  bool embedded_bcast(int nbv) const { return evex() && (nbv == 1 || p_.embedded_broadcast); }
  // B registers alternate between two sets when the tile leaves room for both (AVX-512), else
  // one set is reused (register renaming still lets the next column's load start early).
  int b_sets() const {
    const int bc = embedded_bcast(p_.nb) ? 0 : 1;
    return evex() && p_.mb * p_.nb + 2 * p_.nb + bc <= vector_registers(p_.isa) ? 2 : 1;
  }
  int reserved_vector_registers() const { return b_sets() * p_.nb + (embedded_bcast(p_.nb) ? 0 : 1); }

  // ---- registers ------------------------------------------------------------------------------
  Xbyak::Xmm vreg(int i) const {
    return evex() ? Xbyak::Xmm(Xbyak::Zmm(i)) : Xbyak::Xmm(Xbyak::Ymm(i));
  }
  Xbyak::Xmm acc(int row, int j, int nbv) const { return vreg(row * nbv + j); }
  Xbyak::Xmm breg(int set, int j, int nbv) const { return vreg(p_.mb * nbv + set * nbv + j); }
  Xbyak::Xmm bcast(int nbv) const { return vreg(p_.mb * nbv + b_sets() * nbv); }

  // ---- memory operands ------------------------------------------------------------------------
  int64_t vbytes() const { return vector_floats(p_.isa) * 4; }
  // The blocked layout's VL in bytes, and register vectors per layout block (2 for ymm kernels
  // on an AVX-512 model's layout, plan.layout_vl; else 1).
  int64_t lbytes() const { return p_.layout_floats() * 4; }
  int vper() const { return static_cast<int>(p_.layout_floats() / vector_floats(p_.isa)); }
  // One [K][VL] block of B; a direct convolution's planes advance one vector per vector.
  int64_t b_block_bytes() const { return p_.direct() ? vbytes() : p_.k * lbytes(); }
  // One [M][VL] block of C; planes advance one vector per vector.
  int64_t c_block_bytes() const { return p_.c_plane > 0 ? vbytes() : p_.m * lbytes(); }
  // Register vector j of a chunk: layout block j / vper(), part j % vper() of its VL.
  int64_t vec_part(int j) const { return (j % vper()) * vbytes(); }
  int64_t vec_block(int j) const { return j / vper(); }
  // B[k, vector j] of the chunk. With EVEX, reg_bin points bbase_ rows past the chunk's start and
  // moves (in the emitted code) when row k would leave the disp8 * 64 range: to k + 127, so the
  // next 255 rows of this ascending walk fit. Direct convolutions address shifted windows,
  // never multiples of the vector size, so no disp8 fits them anyway.
  Xbyak::Address b_addr(int64_t k, int j) {
    if (p_.direct()) return ptr[reg_bin + j * vbytes() + p_.b_offsets[k] * 4];
    if (evex() && j == 0 && (k - bbase_ < -128 || k - bbase_ >= 128)) {
      const int64_t base = k + 127;
      add(reg_bin, static_cast<int32_t>((base - bbase_) * lbytes()));
      bbase_ = base;
    }
    return ptr[reg_bin + vec_block(j) * b_block_bytes() + (k - bbase_) * lbytes() + vec_part(j)];
  }
  Xbyak::Address c_addr(int64_t row, int j) {
    if (p_.c_plane > 0) return ptr[reg_cin + j * vbytes() + row * p_.c_plane * 4];
    return ptr[reg_cin + vec_block(j) * c_block_bytes() + row * lbytes() + vec_part(j)];
  }
  // The residual's element at c_addr(row, j).
  Xbyak::Address c_addr_res(int64_t row, int j) {
    if (p_.c_plane > 0) return ptr[reg_cin + reg_res + j * vbytes() + row * p_.c_plane * 4];
    return ptr[reg_cin + reg_res + vec_block(j) * c_block_bytes() + row * lbytes() + vec_part(j)];
  }

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
  void restore_b() {
    if (bbase_ != 0) sub(reg_bin, static_cast<int32_t>(bbase_ * lbytes()));
    bbase_ = 0;
  }

  float dense_at(int64_t row, int64_t k) const {
    auto b = a_.col.begin() + a_.row_ptr[row], e = a_.col.begin() + a_.row_ptr[row + 1];
    auto it = std::lower_bound(b, e, static_cast<int32_t>(k));
    return (it != e && *it == k) ? a_.val[static_cast<size_t>(it - a_.col.begin())] : 0.0f;
  }

  // One column chunk of nbv vectors: init, body, epilogue, store.
  void emit_chunk(const Block& b, int nbv, const std::vector<Prefetch>& pf) {
    if (p_.masked()) load_masks();
    if (tail_store()) load_tail_mask();
    for (int r = 0; r < b.rows; ++r)
      for (int j = 0; j < nbv; ++j) {
        Xbyak::Xmm a = acc(r, j, nbv);
        if (b.first) {
          if (evex()) vpxord(a, a, a);
          else vxorps(a, a, a);
        } else if (c_masked()) {  // no read past the last plane
          vmovups(a | Xbyak::Opmask(1) | Xbyak::util::T_z, c_addr(b.row[r], j));
        } else {
          vmovups(a, c_addr(b.row[r], j));
        }
      }
    if (p_.family == Family::Spmm) spmm_body(b.entries, nbv, pf);
    else dense_body(b.k0, b.k1, b.rows, nbv);
    for (int r = 0; r < b.rows; ++r)
      for (int j = 0; j < nbv; ++j) {
        Xbyak::Xmm a = acc(r, j, nbv);
        if (b.last && p_.bias) {
          if (p_.masked()) {  // lanes outside the image stay 0 (the blocked layout's pad columns)
            vaddps(a | Xbyak::Opmask(1) | Xbyak::util::T_z, a, ptr_b[reg_bias + b.row[r] * 4]);
          } else if (evex()) {
            vaddps(a, a, ptr_b[reg_bias + b.row[r] * 4]);
          } else {
            if (j == 0) vbroadcastss(bcast(nbv), ptr[reg_bias + b.row[r] * 4]);
            vaddps(a, a, bcast(nbv));
          }
        }
        if (b.last && p_.residual) {
          if (c_masked()) vaddps(a | Xbyak::Opmask(1), a, c_addr_res(b.row[r], j));
          else vaddps(a, a, c_addr_res(b.row[r], j));
        }
      }
    // The activation as max(0, acc) and min(6, acc) with the constant in a register (a B register:
    // free after the body) and acc second: vmaxps / vminps return their second operand when
    // either is NaN, so a NaN stays NaN, as in the unfused Relu / Clip steps and ONNX Runtime.
    if (b.last && p_.act != Activation::None) {
      const Xbyak::Xmm t = breg(0, 0, nbv);
      if (evex()) vpxord(t, t, t);
      else vxorps(t, t, t);
      for (int r = 0; r < b.rows; ++r)
        for (int j = 0; j < nbv; ++j) vmaxps(acc(r, j, nbv), t, acc(r, j, nbv));
      if (p_.act == Activation::Relu6) {
        vmovups(t, ptr[rip + sixes_]);
        for (int r = 0; r < b.rows; ++r)
          for (int j = 0; j < nbv; ++j) vminps(acc(r, j, nbv), t, acc(r, j, nbv));
      }
    }
    for (int r = 0; r < b.rows; ++r)
      for (int j = 0; j < nbv; ++j) {
        Xbyak::Xmm a = acc(r, j, nbv);
        if (c_masked()) vmovups(c_addr(b.row[r], j) | Xbyak::Opmask(1), a);  // planes: image columns only
        else vmovups(c_addr(b.row[r], j), a);
      }
  }

  // The prefetches are spread evenly over the body (after the column whose entries reach the
  // next share), so they overlap the FMAs instead of queueing at the block's start.
  void spmm_body(const std::vector<Entry>& entries, int nbv, const std::vector<Prefetch>& pf) {
    int set = 0;
    int mask_row = -1;  // masked plans: the ky whose masks are in k1..k3
    size_t issued = 0;
    auto issue_until = [&](size_t n) {
      for (; issued < std::min(n, pf.size()); ++issued) {
        if (pf[issued].write) prefetchw(ptr[reg_cin + pf[issued].disp]);
        else prefetcht1(ptr[reg_bin + (pf[issued].disp - bbase_ * lbytes())]);
      }
    };
    size_t code_issued = 0;
    auto code_until = [&](size_t n) {
      for (; code_issued < std::min(n, code_pf_.size()); ++code_issued)
        prefetcht1(ptr[rip + *code_pf_label_ + static_cast<int32_t>(code_pf_[code_issued])]);
    };
    for (size_t i = 0; i < entries.size();) {
      issue_until(pf.size() * i / entries.size());
      code_until(code_pf_.size() * i / entries.size());
      const int32_t col = entries[i].col;
      if (p_.masked()) {
        const int ky = col % 9 / 3, kx = col % 3;
        if (ky != mask_row) load_row_masks(mask_row = ky);
        vmovups(Xbyak::Zmm(breg(set, 0, nbv).getIdx()) | Xbyak::Opmask(kx + 1) | Xbyak::util::T_z,
                ptr[reg_bin + p_.b_offsets[col] * 4]);
      } else
        for (int j = 0; j < nbv; ++j) vmovups(breg(set, j, nbv), b_addr(col, j));
      for (; i < entries.size() && entries[i].col == col; ++i) {
        const Entry& en = entries[i];
        Xbyak::RegExp v = val_exp(static_cast<int64_t>(i));
        if (embedded_bcast(nbv)) {
          for (int j = 0; j < nbv; ++j) vfmadd231ps(acc(en.row, j, nbv), breg(set, j, nbv), ptr_b[v]);
        } else {
          vbroadcastss(bcast(nbv), ptr[v]);
          for (int j = 0; j < nbv; ++j) vfmadd231ps(acc(en.row, j, nbv), breg(set, j, nbv), bcast(nbv));
        }
      }
      if (b_sets() == 2) set ^= 1;
    }
    issue_until(pf.size());
    code_until(code_pf_.size());
    restore_vals();
    restore_b();
    if (p_.masked() && mask_row >= 0) kmovw(Xbyak::Opmask(1), ptr[reg_tmp + 4 * 2]);  // V again
  }

  void dense_body(int64_t k0, int64_t k1, int rows, int nbv) {
    Xbyak::Label loop;
    lea(reg_kb, ptr[reg_bin + k0 * vbytes()]);
    mov(reg_kv, reg_vals);
    mov(reg_kcount, k1 - k0);
    L(loop);
    for (int j = 0; j < nbv; ++j) vmovups(breg(0, j, nbv), ptr[reg_kb + j * b_block_bytes()]);
    for (int r = 0; r < rows; ++r) {
      if (embedded_bcast(nbv)) {
        for (int j = 0; j < nbv; ++j) vfmadd231ps(acc(r, j, nbv), breg(0, j, nbv), ptr_b[reg_kv + r * 4]);
      } else {
        vbroadcastss(bcast(nbv), ptr[reg_kv + r * 4]);
        for (int j = 0; j < nbv; ++j) vfmadd231ps(acc(r, j, nbv), breg(0, j, nbv), bcast(nbv));
      }
    }
    add(reg_kb, vbytes());
    add(reg_kv, rows * 4);
    dec(reg_kcount);
    jnz(loop, T_NEAR);
  }

  // Code bytes of a block on chunks of nbv vectors, from the encodings spmm_body emits: per
  // nonzero nbv FMAs (EVEX with an embedded broadcast and disp8: 7 B; else a 6-byte
  // vbroadcastss and 5-byte VEX / 6-byte EVEX register FMAs), per column nbv B loads (EVEX disp8
  // for the first vector: 7 B; others, VEX and direct convolutions' windows: disp32, 8-10 B), per
  // row a C load / zeroing, a store and the last k block's epilogue (up to 10 B per instruction;
  // masked plans also load their masks), the values register's rebases (at most one per 128 / 32
  // values), and its share of the B and C prefetches (7 B each); not the code prefetches it
  // carries for the next block (emit_phase adds those). An estimate, on the long side: a short
  // one leaves the next block's tail to the hardware prefetchers.
  int64_t estimate_code_bytes(const Block& b, const Phase& ph) {
    const int nbv = ph.nbv;
    int64_t cols = 0;
    for (size_t i = 0; i < b.entries.size(); ++i) cols += i == 0 || b.entries[i].col != b.entries[i - 1].col;
    const int64_t per_entry = embedded_bcast(nbv) ? 7 * nbv : 6 + (evex() ? 6 : 5) * nbv;
    const int64_t per_col = p_.direct() ? (evex() ? 10 : 8) * nbv : evex() ? 7 + 10 * (nbv - 1) : 8 * nbv;
    const int64_t epilogue = (p_.bias ? 10 : 0) + (p_.residual ? 10 : 0) + (p_.act != Activation::None ? 10 : 0) +
                             (p_.act == Activation::Relu6 ? 10 : 0);
    const int64_t per_row = (b.first ? 6 : 10) + 10 + (b.last ? epilogue : 0);
    return per_entry * static_cast<int64_t>(b.entries.size()) + per_col * cols + per_row * nbv * b.rows +
           (p_.masked() ? 192 : 64) + 7 * static_cast<int64_t>(b.entries.size() / (evex() ? 128 : 32) + prefetches(b, ph).size());
  }
  std::vector<int64_t> code_pf_;
  const Xbyak::Label* code_pf_label_ = nullptr;

  const KernelPlan& p_;
  const SparseMatrix& a_;
  int64_t vbase_ = 0;  // element of the block that reg_vals points at
  int64_t bbase_ = 0;  // row of the chunk's B that reg_bin points at (spmm body, EVEX)
  Xbyak::Label sixes_, masks_, tail_masks_;

  std::vector<Block> blocks_;

  const Xbyak::Reg64 reg_args = rdi, reg_block_begin = r8, reg_vals0 = r9, reg_vals = r10, reg_bias = r11;
  const Xbyak::Reg64 reg_block = rdx, reg_block_end = rsi, reg_n = rcx, reg_bcur = rax, reg_ccur = rbx;
  const Xbyak::Reg64 reg_tmp = r12, reg_tmp2 = r13;
  // The chunk a block body works on (a group steps them), and the group's chunk counter.
  const Xbyak::Reg64 reg_bin = rbp, reg_cin = r15, reg_group = rdi;
  const Xbyak::Reg64 reg_kb = r12, reg_kv = r13, reg_kcount = r14;  // dense body only
  const Xbyak::Reg64 reg_res = r14;  // residual - C (sparse family only)
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
