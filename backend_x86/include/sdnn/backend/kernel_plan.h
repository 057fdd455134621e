// kernel_plan.h — what a generated kernel will be, decided before any code is emitted.
//
// A KernelPlan is a plain printable struct (no Xbyak types): the planner fills it, the emitter's
// constructor validates it (register budget, displacement range) and emit() only reads it.
// Problem: C[M x N] = epilogue(A[M x K] * B[K x N]) with A the layer's constant weights and B, C
// activations in the blocked layout: N cut into blocks of VL columns (VL = floats per vector, or
// plan.layout_vl: then each register vector is part of a layout block),
// block b of B stored at b*K*VL as [K][VL], of C at b*M*VL as [M][VL]. N is a multiple of VL
// (activations are padded), so no column is ever masked and one column chunk is contiguous.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sdnn::backend {

enum class Isa { Avx2, Avx512 };
enum class Family { Spmm, Dense };
enum class Activation { None, Relu, Relu6 };
constexpr int kPrefetchB = 1, kPrefetchC = 2, kPrefetchCode = 4;
// Code prefetch: one prefetcht1 per kCodePrefetchStride bytes of the next block's code.
constexpr int kCodePrefetchStride = 256;

const char* to_string(Isa isa);
const char* to_string(Family f);
const char* to_string(Activation a);
int vector_floats(Isa isa);  // 16 for AVX-512, 8 for AVX2
int vector_registers(Isa isa);

struct KernelPlan {
  Family family = Family::Spmm;
  Isa isa = Isa::Avx512;
  int mb = 28;          // rows per output tile (accumulator rows)
  int nb = 1;           // vectors per row in a tile (NB * vector_floats columns)
  int64_t k_block = 0;  // K per block (split-K); >= k means no split
  int n_group = 1;      // column chunks a block visits in a row (its code is reused that often)
  int64_t m = 0, k = 0, n = 0;  // n: padded columns, a multiple of layout_floats()
  // The blocked layout's VL when it is wider than this ISA's vector: 16 for an AVX2 kernel the
  // tuner picked inside an AVX-512 model (plain SpMM only: no direct convolution, C blocked,
  // nb a multiple of 2, so a column chunk is whole layout blocks); 0: vector_floats(isa).
  int layout_vl = 0;
  bool bias = false;
  // Residual epilogue (sparse family): C += R after the bias, before the activation, R a tensor in
  // C's layout read at C's offsets (sdnn_kernel_args.residual).
  bool residual = false;
  Activation act = Activation::None;
  // AVX-512 with nb > 1: FMAs read the weight with an embedded broadcast (true) or share one
  // vbroadcastss register per weight (false). AVX2 always broadcasts into a register.
  bool embedded_broadcast = false;
  // Software prefetch (SpMM family), a mask of kPrefetchB / kPrefetchC / kPrefetchCode: while a
  // block runs on one column chunk it prefetches into L2 its share of the next group's B strip
  // (the tile's slice of the k block's rows: B) and, in the first k block, the tile's rows of the
  // next group's C for writing (C), so the next chunk's first tiles do not wait for memory (plain
  // SpMM only); and the next block's code (code: "i" in str()), whose first pass would otherwise
  // fetch its instructions from L3 or memory once B and C streams have evicted them from L2.
  int prefetch = 0;
  // Rows of A in the order they are cut into tiles (empty: 0..m-1). Rows that share columns in
  // one tile share B loads; every row still reads its own bias and writes its own row of C, so
  // the order never shows outside the kernel.
  std::vector<int64_t> row_order;
  // Direct convolution (SpMM family only): B is not blocked but a set of zero-padded input planes
  // and row k of B, for the chunk at column n, is the vector at b + b_offsets[k] floats (a
  // shifted window of one plane: the tap's channel / phase plane, row and column shift), vector j
  // of a chunk VL floats further. Empty: the blocked B above.
  std::vector<int64_t> b_offsets;

  // C written as planes (c_plane > 0): row m of C, for the chunk at column n, is the vector at
  // c + m * c_plane + n floats (the next direct convolution's zero-padded input planes); 0: the
  // blocked C above.
  int64_t c_plane = 0;
  // With c_plane > 0: the columns of each plane that are data (0: all n). When c_cols is not a
  // multiple of 16 (AVX-512, nb = 1), the vector holding the last ones is stored (and read back
  // by later k blocks) under a lane mask, so planes can be packed c_cols apart (NCHW output of a
  // 1x1 conv whose H*W is no multiple of the vector).
  int64_t c_cols = 0;

  // Masked direct 3x3 convolution (AVX-512, nb = 1; C blocked, or NCHW planes with c_plane =
  // H*W): mask_h x mask_w > 0 is the image, B its compact NCHW planes (no padding), the grid the
  // image itself (column n = y * W + x), and b_offsets[(c, ky, kx)] = c*H*W + (ky-1)*W + (kx-1).
  // The taps that would read outside the image (pad 1, and the columns past H*W) are masked off per
  // lane: a table of nine 16-bit masks per vector of the grid (one per tap), the body consuming
  // its columns in (ky, channel, kx) order with one row's three masks in k1..k3 (the column's
  // absolute position comes from sdnn_kernel_args.col0). No pad_planes before it, no crop after.
  int64_t mask_h = 0, mask_w = 0;

  bool direct() const { return !b_offsets.empty(); }
  bool masked() const { return mask_w > 0; }
  // Floats of B one call may read for n columns: the blocked [N/VL][K][VL], or the largest
  // shifted window's end.
  int64_t b_extent(int64_t cols) const;
  int64_t num_tiles() const { return (m + mb - 1) / mb; }
  int64_t num_k_blocks() const { return k_block >= k || k_block <= 0 ? 1 : (k + k_block - 1) / k_block; }
  int64_t tile_cols() const { return static_cast<int64_t>(nb) * vector_floats(isa); }
  int64_t layout_floats() const { return layout_vl > 0 ? layout_vl : vector_floats(isa); }
  // A caller may split the column range only at multiples of this.
  int64_t column_align() const { return tile_cols() * n_group; }
  std::string str() const;  // "spmm avx512 28x1 kb=512 bias+relu"
};

// The weights of one layer in CSR form (row-major [m x k]); only nonzeros are kept.
struct SparseMatrix {
  int64_t m = 0, k = 0;
  std::vector<int64_t> row_ptr;  // m + 1
  std::vector<int32_t> col;
  std::vector<float> val;

  static SparseMatrix from_dense(const float* w, int64_t m, int64_t k);
  int64_t nnz() const { return static_cast<int64_t>(col.size()); }
};

// A plan for the given problem with this backend's default tile shape and K blocking; n is the
// logical column count, padded here to the vector width.
KernelPlan default_plan(Family family, Isa isa, int64_t m, int64_t k, int64_t n, bool bias, Activation act);

// A sparse plan for a big pattern (its code and values, about 12 bytes per nonzero, beyond half
// a MiB, at a density above 15 %, or at least 8 % with fewer than 8 column chunks) runs groups
// of column chunks per block (n_group: 16 when the code and values exceed 1.5 MiB, else 4, at
// most the chunks N has) with K blocks of 256 rows (above 15 %, or 4 ymm chunks, whose 256-row
// strips fit L1) or 512: each block's code and values are fetched once per group instead of once
// per chunk, which is what the columns of a large SpMM otherwise wait for, while the group's B
// strips stay in L2 (bench/RESULTS.md, "SpMM grid"). Smaller or sparser patterns
// take K blocks of at most 256 rows and as many chunks per group as keep the group's B strips
// within 32 KiB of L1 (2 with zmm, 4 with ymm), so each block's code is fetched once per group
// instead of once per chunk (+4-23 % on AVX-512, bench/RESULTS.md "Column groups for small
// patterns"). With ymm, a pattern above 15 % density takes 8 chunks of 128-row K blocks instead of
// 4 of 256 (the same 32 KiB). Patterns whose code and values pass 192 KiB also prefetch each next
// block's code (kPrefetchCode). Plain SpMM only (not direct convolutions).
void group_columns(KernelPlan& p, int64_t nnz);
// A direct convolution's prefetch and column groups (plan.b_offsets set). No B or C prefetch: the
// next chunk's windows are the current one's neighbours. Groups of up to 4 column chunks, so each
// block's code is fetched once for four chunks instead of once per chunk, where code and values
// pass 1 MiB (from L3: ResNet-50's 512-channel 7 x 7 convs, 3.5 MB, 1.2-1.3x more than code
// prefetch alone; 14 x 14 with 256 channels, 0.9 MB, 0.88x) and where the weights are at least
// half dense (a stem conv: 28 dense rows make about 30 KB of code per block, fetched from L2 again
// for every chunk without groups; ResNet's 7 x 7 stem 1.09-1.11x). Code prefetch where the kernel
// makes at most 64 column passes: inside a model a layer's code and values come from L3 on every
// inference (the rest of the model evicts them from L2), and the first pass waits for them, while
// the prefetches cost every pass a few percent of code bytes (whole ResNet-50, per layer:
// 1.04-1.07x at 28 x 28 (49 passes), 1.17-1.26x at 14 x 14, 1.7-2.0x with the groups at 7 x 7;
// 0.94-1.00x on the 56 x 56 ones (196 passes) and the stem (805); bench/RESULTS.md "Session 11").
void group_direct_columns(KernelPlan& p, int64_t nnz);
// Whether group_columns treats the pattern as big (L2-resident groups of 4 or 16 chunks).
bool big_pattern(const KernelPlan& p, int64_t nnz);

// A masked direct convolution's K blocks (plan.mask_h / mask_w set): whole channels, few enough
// that the chunk's B windows (about 6 cache lines per channel: 3 rows x 2) do not crowd L1 sets.
// NCHW planes a multiple of 64 bytes apart whose line count shares a factor a with L1's 64 sets
// put every channel on one of 64 / a set offsets (56 x 56: a = 4, 12 lines in the busiest set
// for 64 channels, L1's whole associativity, 14-18 % slower than 32-channel blocks); blocks of at
// most 128 / a channels keep the busiest set near half its ways.
void fit_masked_k_block(KernelPlan& p);

// Rows per output tile of the default sparse plan (what passes/permute-rows groups for): 28 with
// zmm, 14 with ymm.
int spmm_tile_height(Isa isa);

// Columns padded to the vector width (the blocked layout's N).
int64_t padded_columns(int64_t n, Isa isa);

}  // namespace sdnn::backend
