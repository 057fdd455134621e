/* model_conv.c — hand-made plan "conv" (see test_model.h): a 1x1 convolution on an NCHW batch,
 * out[b] = relu(A * img[b] + bias), exercising the channel packs and a batched kernel step.
 *
 *   0 PACK_CHANNELS    img [BATCH][IN][HW]  -> arena ib, blocked [BATCH][ceil(HW/VL)][IN][VL]
 *   1 KERNEL           ob = relu(A * ib + bias) per batch item
 *                      (3 k blocks, 5 tiles, the last of 6 rows; 196 columns padded to 200)
 *   2 UNPACK_CHANNELS  ob                   -> output out [BATCH][OUT][HW] */
#include "ref_spmm.h"

enum {
  VL = TM_CONV_VL,
  PADDED = TM_PADDED(TM_CONV_HW, VL),
  TILES = (TM_CONV_OUT + TM_CONV_TILE_ROWS - 1) / TM_CONV_TILE_ROWS,
  K_BLOCKS = (TM_CONV_IN + TM_CONV_K_BLOCK - 1) / TM_CONV_K_BLOCK,
  IB_BYTES = (TM_CONV_BATCH * PADDED * TM_CONV_IN * 4 + 63) / 64 * 64,
  OB_BYTES = (TM_CONV_BATCH * PADDED * TM_CONV_OUT * 4 + 63) / 64 * 64,
  ARENA_IB = 0,
  ARENA_OB = IB_BYTES,
};

static float values[TM_CONV_OUT * TM_CONV_IN];
static int32_t entry_row[TM_CONV_OUT * TM_CONV_IN];
static int32_t entry_col[TM_CONV_OUT * TM_CONV_IN];
static int64_t block_offsets[K_BLOCKS * TILES + 1];
static float bias[TM_CONV_OUT];

static ref_layer layer = {
    .rows = TM_CONV_OUT,
    .cols = TM_CONV_IN,
    .tile_rows = TM_CONV_TILE_ROWS,
    .k_block = TM_CONV_K_BLOCK,
    .vl = VL,
    .relu = 1,
    .num_tiles = TILES,
    .num_k_blocks = K_BLOCKS,
    .entry_row = entry_row,
    .entry_col = entry_col,
    .values = values,
    .block_offsets = block_offsets,
    .bias = bias,
};

__attribute__((constructor)) static void build_layer(void) { ref_layer_build(&layer, TM_CONV_SEED); }

static void conv_kernel(const sdnn_kernel_args* args) { ref_spmm(&layer, args); }

static const sdnn_kernel_step conv_step = {
    .fn = conv_kernel,
    .values = values,
    .bias = bias,
    .block_offsets = block_offsets,
    .num_tiles = TILES,
    .num_k_blocks = K_BLOCKS,
    .n = PADDED,
    .n_align = TM_CONV_N_ALIGN,
    .batch = TM_CONV_BATCH,
    .b_batch_stride = TM_CONV_IN * PADDED,
    .c_batch_stride = TM_CONV_OUT * PADDED,
    .b_col_scale = TM_CONV_IN,
    .c_col_scale = TM_CONV_OUT,
    .name = "ref_spmm_conv1x1",
};

static const int64_t img_dims[] = {TM_CONV_BATCH, TM_CONV_IN, TM_CONV_H, TM_CONV_W};
static const int64_t out_dims[] = {TM_CONV_BATCH, TM_CONV_OUT, TM_CONV_H, TM_CONV_W};
static const sdnn_tensor_info inputs[] = {{"img", 4, img_dims, SDNN_F32}};
static const sdnn_tensor_info outputs[] = {{"out", 4, out_dims, SDNN_F32}};

static const sdnn_step steps[] = {
    {.op = SDNN_STEP_PACK_CHANNELS,
     .src0 = {SDNN_BUF_INPUT, 0, 0},
     .dst = {SDNN_BUF_ARENA, 0, ARENA_IB},
     .dims = {TM_CONV_BATCH, TM_CONV_HW, TM_CONV_IN, VL}},
    {.op = SDNN_STEP_KERNEL,
     .src0 = {SDNN_BUF_ARENA, 0, ARENA_IB},
     .dst = {SDNN_BUF_ARENA, 0, ARENA_OB},
     .kernel = &conv_step},
    {.op = SDNN_STEP_UNPACK_CHANNELS,
     .src0 = {SDNN_BUF_ARENA, 0, ARENA_OB},
     .dst = {SDNN_BUF_OUTPUT, 0, 0},
     .dims = {TM_CONV_BATCH, TM_CONV_HW, TM_CONV_OUT, VL}},
};

const sdnn_plan sdnn_plan_data = {
    .magic = SDNN_PLAN_MAGIC,
    .version = SDNN_PLAN_VERSION,
    .required_cpu = 0,
    .num_inputs = 1,
    .num_outputs = 1,
    .num_steps = sizeof steps / sizeof steps[0],
    .arena_bytes = IB_BYTES + OB_BYTES,
    .inputs = inputs,
    .outputs = outputs,
    .steps = steps,
    .producer = "tests/runtime model_conv.c",
};
