/* sdnn_plan.h — internal contract between the sdnnc AOT writer and runtime_min.
 *
 * Not part of the user ABI. The AOT writer emits a C file defining `sdnn_plan_data` from these
 * types (plus an assembly file carrying kernel code and weights); runtime_min executes it. Every
 * field is fixed when the model is compiled; the runtime validates only what depends on the
 * machine (CPU features) and the caller (pointers, thread count). */
#ifndef SDNN_PLAN_H
#define SDNN_PLAN_H

#include <stdint.h>

#include "sdnn.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SDNN_PLAN_MAGIC 0x4E4E4453u /* "SDNN" */
#define SDNN_PLAN_VERSION 7u

/* CPU features a model may require (sdnn_plan.required_cpu). */
enum {
  SDNN_CPU_AVX2 = 1u << 0,     /* AVX2 + FMA3 */
  SDNN_CPU_AVX512F = 1u << 1,  /* AVX-512 F (with the OS saving zmm state) */
  SDNN_CPU_AVX512BW = 1u << 2, /* reserved */
};

/* Activations that kernels read or write are *blocked*: the N (column) axis is cut into blocks
 * of VL columns (VL = floats per vector of the model's ISA), each block stored feature-major,
 * [ceil(N/VL)][F][VL], with N padded to a multiple of VL (pad columns are zero after a pack and
 * never mix with real columns). The PACK / UNPACK steps convert from / to the row-major tensors
 * the ABI exchanges.
 *
 * The one argument of every generated kernel. The kernel reads it with
 * `mov(reg, ptr[param1 + offsetof(sdnn_kernel_args, field)])`.
 *
 * A kernel's code is a sequence of blocks, one per (k block, row tile), k-block-major: block
 * index = kb * num_tiles + tile. A call runs blocks [block_begin, block_end), which must lie in
 * one k block, over columns [0, n) of b and c. `values` points at block_begin's values. */
typedef struct {
  const float* b;      /* first column block of B to read (blocked [K][VL] per block) */
  float* c;            /* first column block of C to write (blocked [M][VL] per block) */
  const float* values; /* weights in consumption order, at block_begin */
  const float* bias;   /* bias[M] of the whole layer, when the kernel has a bias epilogue */
  int64_t n;           /* columns to compute, > 0, a multiple of VL */
  int64_t block_begin;
  int64_t block_end;
  const float* residual; /* kernels with a residual epilogue: a tensor in C's layout, added after
                          * the bias and before the activation, read at c's offsets */
  int64_t col0;          /* column of b / c within the batch item's N (masked direct convolutions
                          * index their per-vector lane masks by it; other kernels ignore it) */
} sdnn_kernel_args;

typedef void (*sdnn_kernel_fn)(const sdnn_kernel_args* args);

/* Where a tensor lives at run time: base(kind, index) + byte offset. */
enum { SDNN_BUF_ARENA = 0, SDNN_BUF_INPUT = 1, SDNN_BUF_OUTPUT = 2 };
typedef struct {
  uint32_t kind;
  uint32_t index;  /* input / output index; 0 for the arena */
  uint64_t offset; /* bytes */
} sdnn_buf_ref;

/* A generated-kernel step: C[batch][M x n] = epilogue(A * B[batch][K x n]), B and C blocked. */
typedef struct {
  sdnn_kernel_fn fn;
  const float* values;          /* all blocks' values, concatenated */
  const float* bias;            /* NULL when the kernel has no bias epilogue */
  const int64_t* block_offsets; /* num_k_blocks * num_tiles + 1 entries, in floats */
  int64_t num_tiles;
  int64_t num_k_blocks;
  int64_t n;              /* padded columns per batch item (a multiple of VL) */
  int64_t n_align;        /* the N range may be split only at multiples of this */
  int64_t batch;          /* independent problems (images of an NCHW batch) */
  int64_t b_batch_stride; /* floats between batch items of B */
  int64_t c_batch_stride; /* floats between batch items of C */
  int64_t b_col_scale;    /* a column range starting at n0 begins at b + n0 * b_col_scale (= K) */
  int64_t c_col_scale;    /* ... and at c + n0 * c_col_scale (= M) */
  const char* name;       /* kernel symbol, for diagnostics */
  uint32_t residual;      /* 1: the step's src1 is the residual (same layout and strides as C) */
  uint32_t split;         /* how threads share the step: sdnn_kernel_split_policy */
} sdnn_kernel_step;

/* sdnn_kernel_step.split (the runtime's partition.c has the details):
 *   ROWS:    threads take contiguous row-tile ranges (all columns), so each streams only its own
 *            weights; columns are cut only when there are fewer than 2 tiles per thread;
 *   COLUMNS: with fewer than SDNN_COLUMN_SPLIT_TILES_PER_THREAD tiles per thread (or
 *            SDNN_COLUMN_SPLIT_WIDE_TILES_PER_THREAD when each thread gets at least
 *            SDNN_COLUMN_SPLIT_WIDE_COLUMNS columns), each thread takes all tiles on its own column
 *            range (no two threads read the same B; where the column units do not divide evenly,
 *            a boundary unit's tiles are shared between its two threads), when that balances
 *            about as well; otherwise as ROWS. */
typedef enum { SDNN_SPLIT_ROWS = 0, SDNN_SPLIT_COLUMNS = 1 } sdnn_kernel_split_policy;

/* PACK / UNPACK dims = {batch, N, F, VL}; the blocked side is [batch][ceil(N/VL)][F][VL]. */
typedef enum {
  SDNN_STEP_KERNEL = 1,          /* kernel: see sdnn_kernel_step; src0 = B, dst = C, src1 = the
                                  * residual when kernel->residual */
  SDNN_STEP_PACK_ROWS = 2,       /* src0 row-major [batch][N][F] (tokens x features) -> dst blocked */
  SDNN_STEP_COPY = 3,            /* dst = src0; dims[0] = floats */
  SDNN_STEP_RELU = 4,            /* dst = max(src0, 0); dims[0] = floats */
  SDNN_STEP_ADD = 5,             /* dst = src0 + src1; dims[0] = floats */
  SDNN_STEP_UNPACK_ROWS = 6,     /* src0 blocked -> dst row-major [batch][N][F] */
  SDNN_STEP_PACK_CHANNELS = 7,   /* src0 [batch][F][N] (NCHW: F = C, N = H*W) -> dst blocked */
  SDNN_STEP_UNPACK_CHANNELS = 8, /* src0 blocked -> dst [batch][F][N] */
  /* The steps below take their shapes from `conv` (sdnn_window_params); NCHW means row-major
   * [batch][C][H][W]. */
  SDNN_STEP_IM2COL = 9,          /* src0 NCHW -> dst blocked columns for a KxK conv done as SpMM:
                                  * [batch][ceil(Ho*Wo/VL)][C*KH*KW][VL], row (c, ky, kx) holds
                                  * x[c][oy*sh - pt + ky*dh][ox*sw - pl + kx*dw] (0 outside the
                                  * image and in pad columns), column oy*Wo + ox */
  SDNN_STEP_DEPTHWISE = 10,      /* src0 NCHW -> dst NCHW [batch][C][Ho][Wo]: per channel KxK conv
                                  * with conv->weights [C][KH][KW], conv->bias [C] or NULL, then
                                  * conv->act */
  SDNN_STEP_MAXPOOL = 11,        /* src0 NCHW -> dst NCHW; padding never wins. With conv->vl = 16
                                  * (AVX-512, kernel_w 3, stride_w 2, dilation_w 1) src0 is
                                  * ChannelBlocked [batch][ceil(in_h*R/16)][C][16], rows R =
                                  * conv->in_row_stride (0: in_w) positions apart: a direct
                                  * convolution's output grid, its first in_w columns data */
  SDNN_STEP_AVGPOOL = 12,        /* src0 NCHW -> dst NCHW; divides by the taps inside the image,
                                  * or by KH*KW when conv->count_include_pad */
  SDNN_STEP_GLOBAL_AVGPOOL = 13, /* src0 NCHW -> dst [batch][C]: mean over H*W */
  SDNN_STEP_CLIP = 14,           /* dst = min(max(src0, lo), hi); dims[0] = floats, lo/hi in alpha/beta */
  /* Tensor steps; their shapes are in `params` (the struct named per op below). */
  SDNN_STEP_ELEMENTWISE = 15,    /* sdnn_elementwise_params: strided unary / binary / copy */
  SDNN_STEP_REDUCE_MEAN = 16,    /* dims = {outer, reduced, inner}: src0 [outer][reduced][inner]
                                  * -> dst [outer][inner], the mean over the middle axis */
  SDNN_STEP_SOFTMAX = 17,        /* dims = {outer, axis, inner}: softmax of src0 over the middle
                                  * axis of [outer][axis][inner], into dst (may be in place) */
  SDNN_STEP_MATMUL = 18,         /* sdnn_matmul_params: batched dst = src0 * src1, row-major */
  SDNN_STEP_LAYERNORM = 19,      /* sdnn_norm_params: layer norm over the features */
  SDNN_STEP_ATTENTION = 20,      /* sdnn_attention_params: softmax(scale Q K^T + mask) V per head,
                                  * Q, K, V, dst FeatureBlocked [ceil(B*S/VL)][F][VL]; src0 = Q,
                                  * src1 = K, src2 = V, src3 = the mask (when params->has_mask) */
  SDNN_STEP_DEPTHWISE_BLOCKED = 21, /* like DEPTHWISE, on ChannelBlocked src0 / dst:
                                     * [batch][ceil(H*W/VL)][C][VL] -> [batch][ceil(Ho*Wo/VL)][C][VL]
                                     * with VL = conv->vl (dst pad columns written 0); scratch
                                     * sdnn_depthwise_blocked_scratch_floats per thread. With
                                     * conv->in_row_stride R (3x3, pads 1, by_blocks 1, in_w a
                                     * multiple of 16) src0 is a direct convolution's grid
                                     * [batch][ceil(in_h*R/VL)][C][VL], rows R positions apart */
  SDNN_STEP_PAD_PLANES = 22,     /* direct convolution input: src0 NCHW (conv->vl == 0) or
                                  * ChannelBlocked (conv->vl = VL) [batch][C][in_h][in_w] -> dst
                                  * [batch][C][Sh][Sw][out_h][out_w] with S = conv->stride: plane
                                  * (c, py, px) row r column x holds input (r*Sh + py - pad_top,
                                  * x*Sw + px - pad_left), 0 outside the image; scratch
                                  * sdnn_window_scratch_floats */
  SDNN_STEP_CROP = 23,           /* ChannelBlocked [batch][ceil(in_h*in_w/VL)][C][VL] -> [batch]
                                  * [ceil(out_h*out_w/VL)][C][VL]: output (y, x) is input
                                  * (y * stride_h, x * stride_w), y < out_h, x < out_w (a direct
                                  * convolution's grid cropped with strides 1, a strided 1x1
                                  * convolution's input subsampled; dst pad columns written 0), or into
                                  * NCHW with conv->dst_nchw; with conv->residual, dst = act(crop +
                                  * src1) (src1 laid out as dst, act = conv->act: a residual
                                  * block's add and ReLU); scratch sdnn_window_scratch_floats */
  SDNN_STEP_CAST_I64 = 24,       /* dst[i] = (float)((const int64_t*)src0)[i], i < dims[0] */
  SDNN_STEP_GATHER_ROWS = 25,    /* dst[t][0..dims[1]) = table[idx[t]] with idx = (const int64_t*)
                                  * src0, t < dims[0], table = (const float*)params [dims[2]][dims[1]]
                                  * (negative indices count from the end; sdnn_run rejects others
                                  * outside [-dims[2], dims[2]) before running) */
  SDNN_STEP_ZERO_BORDERS = 26,   /* in place on dst [batch][C][out_h][out_w] planes: zero every
                                  * element outside rows [pad_top, pad_top + in_h) x columns
                                  * [pad_left, pad_left + in_w) (conv: batch, channels, in_h, in_w,
                                  * out_h, out_w, pad_top, pad_left; a kernel wrote the planes with
                                  * garbage where the zero padding belongs) */
} sdnn_step_op;

/* ---- tensor steps ------------------------------------------------------------------------- */

#define SDNN_MAX_RANK 6

/* Functions of SDNN_STEP_ELEMENTWISE, y = f(a[, b]). Unary functions read a only. */
typedef enum {
  SDNN_FN_COPY = 0, /* y = a: with strides this is transpose, slice, concat, split, expand */
  SDNN_FN_ADD = 1,
  SDNN_FN_SUB = 2,
  SDNN_FN_MUL = 3,
  SDNN_FN_DIV = 4,
  SDNN_FN_POW = 5,        /* a ** b (powf semantics) */
  SDNN_FN_RELU = 6,       /* NaN stays NaN */
  SDNN_FN_LEAKY_RELU = 7, /* a < 0 ? alpha * a : a */
  SDNN_FN_SIGMOID = 8,
  SDNN_FN_TANH = 9,
  SDNN_FN_ERF = 10,
  SDNN_FN_SQRT = 11,
  SDNN_FN_EXP = 12,
  SDNN_FN_GELU = 13,      /* 0.5 a (1 + erf(a / sqrt 2)) */
  SDNN_FN_GELU_TANH = 14, /* 0.5 a (1 + tanh(sqrt(2 / pi) (a + 0.044715 a^3))) */
  SDNN_FN_CLIP = 15,      /* min(max(a, alpha), beta) */
  SDNN_FN_NEG = 16,
  SDNN_FN_COUNT = 17
} sdnn_elementwise_fn;

/* y[i] = fn(a[i], b[i]) over the index space dims[0..rank) (outermost first, rank 1..6, every
 * dim >= 1), where element i = (i_0, ..., i_{rank-1}) of each operand is at sum_d i_d * stride_d
 * floats from its base (strides may be 0: broadcasting; any sign; dst strides give a
 * non-overlapping map). The bases are the step's src0 / src1 / dst, or the constants below
 * when non-NULL (a weight operand). Unit of the work split: one innermost row (all of
 * dims[rank-1]) — units = product of dims[0..rank-1). */
typedef struct {
  uint32_t fn; /* sdnn_elementwise_fn */
  uint32_t rank;
  float alpha, beta; /* LEAKY_RELU: alpha; CLIP: alpha = lo, beta = hi */
  int64_t dims[SDNN_MAX_RANK];
  int64_t dst_strides[SDNN_MAX_RANK];
  int64_t src0_strides[SDNN_MAX_RANK];
  int64_t src1_strides[SDNN_MAX_RANK];
  const float* src0_const; /* non-NULL: operand a is this constant instead of the step's src0 */
  const float* src1_const; /* non-NULL: operand b is this constant instead of the step's src1 */
} sdnn_elementwise_params;

/* dst[b][M][N] = a[b][M][K] * b[b][K][N] for b over the batch index space batch_dims[0..rank)
 * (rank 0..4; rank 0 = one product), a / b / dst of item (i_0..) starting at
 * sum i_d * *_batch_strides[d] floats (0 strides broadcast), rows lda / ldb / ldc floats apart,
 * columns contiguous. Unit of the work split: one (batch item, row block of 16 rows of M). */
typedef struct {
  int64_t m, n, k;
  int64_t lda, ldb, ldc;
  uint32_t batch_rank, reserved;
  int64_t batch_dims[4];
  int64_t a_batch_strides[4], b_batch_strides[4], c_batch_strides[4];
  const float* b_const; /* non-NULL: B is this constant instead of the step's src1 */
} sdnn_matmul_params;

/* Layer normalization of every token over its `features` values:
 * y = (x - mean) / sqrt(var + epsilon) * gamma + beta (biased variance, gamma / beta [features],
 * beta may be NULL). Layouts: blocked == 0: src0 / dst row-major [tokens][features]; blocked ==
 * 1: FeatureBlocked [ceil(tokens/VL)][features][VL] (pad columns are computed and harmless).
 * Unit of the work split: one token (row-major) or one column block of VL tokens (blocked). */
typedef struct {
  int64_t tokens, features, vl;
  uint32_t blocked, reserved;
  float epsilon;
  const float* gamma;
  const float* beta;
} sdnn_norm_params;

/* Multi-head attention on FeatureBlocked activations of B sequences of S tokens (N = B*S
 * columns, F = heads * head_dim features): for each sequence b and head h, with Q_h, K_h, V_h the
 * features [h*D, (h+1)*D) of the sequence's columns:
 *   out_h = softmax_over_keys(scale * Q_h K_h^T + mask[b]) V_h
 * mask (has_mask) is row-major [mask_batch][S] (mask_batch 1 or B), added to every query's
 * scores: mask_const when non-NULL, else the step's src3. Unit of the work split: one (b, h, query block of VL columns). Uses
 * scratch: S * VL floats per thread. */
typedef struct {
  int64_t batch, seq, heads, head_dim, vl;
  int64_t mask_batch;
  uint32_t has_mask, reserved;
  float scale;
  const float* mask_const;
} sdnn_attention_params;

/* Activations a step applies after its arithmetic. */
enum { SDNN_ACT_NONE = 0, SDNN_ACT_RELU = 1, SDNN_ACT_RELU6 = 2 };

/* Shapes of the windowed steps (im2col, depthwise, pools). */
typedef struct {
  int64_t batch, channels, in_h, in_w, out_h, out_w;
  int64_t kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w;
  int64_t vl;                /* IM2COL, DEPTHWISE_BLOCKED, CROP: column block width; PAD_PLANES,
                              * MAXPOOL: the input's (0: NCHW) */
  const float* weights;      /* DEPTHWISE: [C][KH][KW] */
  const float* bias;         /* DEPTHWISE: [C] or NULL */
  uint32_t act;              /* DEPTHWISE, CROP: SDNN_ACT_* */
  uint32_t count_include_pad;/* AVGPOOL */
  uint32_t by_blocks;        /* DEPTHWISE_BLOCKED: units are output column blocks (all channels
                              * each) with AVX-512 code: 1 = shifted windows (stride 1, dilation 1,
                              * out_h x out_w = in_h x in_w), 2 = gathered windows (any geometry),
                              * or with AVX2 code (VL 8): 3 = channel-transposed tiles (any
                              * geometry); 0 = units are channels. CROP: 1 = units are output column
                              * blocks, gathered with AVX-512; 0 = units are rows. PAD_PLANES from
                              * a ChannelBlocked input (VL 16), stride 1 or 2: 1 = units are input
                              * column blocks, stored with AVX-512 lane masks, each unit range
                              * zeroing its share of the planes' pads */
  uint32_t residual;         /* CROP: 1 = src1 is added before the activation; otherwise 0 */
  int64_t in_row_stride;     /* PAD_PLANES, MAXPOOL, DEPTHWISE_BLOCKED from a ChannelBlocked
                              * input: positions from one input row to the next (0: in_w; more
                              * when the input is a direct convolution's output grid whose extra
                              * columns are skipped) */
  uint32_t dst_nchw;         /* CROP: 1 = dst is NCHW [batch][C][out_h][out_w] (residual 0;
                              * by_blocks: each output block's 16 positions of every plane, stored
                              * under the mask of the real ones); 0 = ChannelBlocked */
  uint32_t reserved;
} sdnn_window_params;

typedef struct {
  uint32_t op; /* sdnn_step_op */
  uint32_t reserved;
  sdnn_buf_ref src0, src1, dst;
  int64_t dims[4];
  const sdnn_kernel_step* kernel; /* SDNN_STEP_KERNEL only */
  const sdnn_window_params* conv; /* IM2COL, DEPTHWISE(_BLOCKED), MAXPOOL, AVGPOOL, GLOBAL_AVGPOOL */
  float alpha, beta;              /* CLIP: lo, hi */
  sdnn_buf_ref src2, src3;        /* ATTENTION: V, mask */
  const void* params;             /* tensor steps (15 and up): the struct named by the op */
} sdnn_step;

/* Scratch (floats per thread) the steps that need one use; the compiler sizes
 * sdnn_plan.scratch_bytes with these and the loader checks it. */
static inline int64_t sdnn_round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }

static inline int64_t sdnn_attention_scratch_floats(const sdnn_attention_params* p) {
  /* scores [S][VL], staged Q and output [D][VL], S int64 key offsets */
  return p->seq * p->vl + 2 * p->head_dim * p->vl + 2 * sdnn_round_up(p->seq, 8) + 16;
}

/* DEPTHWISE_BLOCKED with by_blocks 3 (AVX2, VL 8): the padded input columns of a tile row
 * ((out_w - 1) * stride_w + (kernel_w - 1) * dilation_w + 1) and the output rows of one tile:
 * about 24 KiB of tile (so it stays in L1 with the output), at least the rows one 8-position
 * output block can span, at most 64. */
static inline int64_t sdnn_dw_tile_cols(const sdnn_window_params* p) {
  return (p->out_w - 1) * p->stride_w + (p->kernel_w - 1) * p->dilation_w + 1;
}
static inline int64_t sdnn_dw_tile_rows(const sdnn_window_params* p) {
  const int64_t row_floats = sdnn_dw_tile_cols(p) * 8 * p->stride_h;
  int64_t rows = 6144 / (row_floats > 0 ? row_floats : 1);
  rows = rows > 64 ? 64 : rows;
  const int64_t span = (8 + p->out_w - 1) / p->out_w + 1; /* rows an output block can touch */
  return rows > span ? rows : span;
}

/* Whether by_blocks 3 may run this geometry (and the scratch formula counts its tile): VL 8, at
 * most 49 taps, strides and dilations below 2^10, out_w below 2^20 (the tile formula's factors
 * then stay far from overflow). */
static inline int sdnn_dw_tiles_fit(const sdnn_window_params* p) {
  const int64_t lim = INT64_C(1) << 10;
  return p->vl == 8 && p->kernel_h >= 1 && p->kernel_w >= 1 && p->kernel_h * p->kernel_w <= 49 && p->stride_h >= 1 &&
         p->stride_h < lim && p->stride_w >= 1 && p->stride_w < lim && p->dilation_h >= 1 && p->dilation_h < lim &&
         p->dilation_w >= 1 && p->dilation_w < lim && p->out_w >= 1 && p->out_w < (INT64_C(1) << 20);
}

static inline int64_t sdnn_depthwise_blocked_scratch_floats(const sdnn_window_params* p) {
  /* the larger of: the plane path's input and output planes (both padded to VL); the row-streamed
   * path's ring of kernel_h padded rows in stride_w column phases (each phase round_up(out_w, 16)
   * + kernel_w + 16 columns wide), one output row of that width, one input row; with VL 8 the
   * by_blocks 3 tile of (tile rows - 1) * stride_h + (kernel_h - 1) * dilation_h + 1 input rows of
   * tile columns x 8 channels (the 64 floats added cover its 32-byte alignment) */
  const int64_t phase_cols = sdnn_round_up(p->out_w, 16) + p->kernel_w + 16;
  const int64_t planes = sdnn_round_up(p->in_h * p->in_w, p->vl) + sdnn_round_up(p->out_h * p->out_w, p->vl);
  const int64_t rows = p->kernel_h * phase_cols * p->stride_w + phase_cols + p->in_w;
  int64_t need = planes > rows ? planes : rows;
  if (sdnn_dw_tiles_fit(p)) {
    const int64_t tile_in_rows = (sdnn_dw_tile_rows(p) - 1) * p->stride_h + (p->kernel_h - 1) * p->dilation_h + 1;
    const int64_t tile = tile_in_rows * sdnn_dw_tile_cols(p) * 8;
    need = need > tile ? need : tile;
  }
  return need + 64;
}

/* PAD_PLANES and CROP: one row (CROP with a residual: two). */
static inline int64_t sdnn_window_scratch_floats(const sdnn_window_params* p) {
  return 2 * ((p->in_w > p->out_w ? p->in_w : p->out_w) + 16);
}

typedef struct {
  uint32_t magic;        /* SDNN_PLAN_MAGIC */
  uint32_t version;      /* SDNN_PLAN_VERSION */
  uint32_t required_cpu; /* SDNN_CPU_* bits */
  uint32_t num_inputs;
  uint32_t num_outputs;
  uint32_t num_steps;
  uint64_t arena_bytes; /* activation arena per context, 64-byte aligned offsets */
  uint64_t scratch_bytes; /* per thread of a context, for steps that need a workspace */
  const sdnn_tensor_info* inputs;
  const sdnn_tensor_info* outputs;
  const sdnn_step* steps;
  const char* producer; /* "sdnnc <version> <target>" */
} sdnn_plan;

/* Defined by the generated plan file of each model.so. Hidden, so that each model.so's runtime
 * binds to its own plan even when another model.so is in the process's global symbol scope
 * (linked directly, or dlopened with RTLD_GLOBAL); an exported symbol would be interposed. The
 * attribute on this declaration also makes the generated definition hidden. */
#if defined(__GNUC__)
#define SDNN_HIDDEN __attribute__((visibility("hidden")))
#else
#define SDNN_HIDDEN
#endif
extern SDNN_HIDDEN const sdnn_plan sdnn_plan_data;

#ifdef __cplusplus
}
#endif

#endif /* SDNN_PLAN_H */
