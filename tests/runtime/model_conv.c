/* model_conv.c — hand-made plan "conv" (see test_model.h): one batched kernel step, a 1x1
 * convolution out[b] = relu(A * img[b] + bias) on NCHW, reading the caller's input and writing the
 * caller's output directly (3 k blocks, 5 tiles, the last of 6 rows; n_align 8 on 196 columns). */
#include "ref_spmm.h"

enum {
  TILES = (TM_CONV_OUT + TM_CONV_TILE_ROWS - 1) / TM_CONV_TILE_ROWS,
  K_BLOCKS = (TM_CONV_IN + TM_CONV_K_BLOCK - 1) / TM_CONV_K_BLOCK,
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
    .ldb = TM_CONV_HW,
    .ldc = TM_CONV_HW,
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
    .n = TM_CONV_HW,
    .n_align = TM_CONV_N_ALIGN,
    .batch = TM_CONV_BATCH,
    .b_batch_stride = TM_CONV_IN * TM_CONV_HW,
    .c_batch_stride = TM_CONV_OUT * TM_CONV_HW,
    .name = "ref_spmm_conv1x1",
};

static const int64_t img_dims[] = {TM_CONV_BATCH, TM_CONV_IN, TM_CONV_H, TM_CONV_W};
static const int64_t out_dims[] = {TM_CONV_BATCH, TM_CONV_OUT, TM_CONV_H, TM_CONV_W};
static const sdnn_tensor_info inputs[] = {{"img", 4, img_dims}};
static const sdnn_tensor_info outputs[] = {{"out", 4, out_dims}};

static const sdnn_step steps[] = {
    {.op = SDNN_STEP_KERNEL,
     .src0 = {SDNN_BUF_INPUT, 0, 0},
     .dst = {SDNN_BUF_OUTPUT, 0, 0},
     .kernel = &conv_step},
};

const sdnn_plan sdnn_plan_data = {
    .magic = SDNN_PLAN_MAGIC,
    .version = SDNN_PLAN_VERSION,
    .required_cpu = 0,
    .num_inputs = 1,
    .num_outputs = 1,
    .num_steps = 1,
    .arena_bytes = 0,
    .inputs = inputs,
    .outputs = outputs,
    .steps = steps,
    .producer = "tests/runtime model_conv.c",
};
