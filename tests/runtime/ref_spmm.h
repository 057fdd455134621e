/* ref_spmm.h — a reference "generated kernel" in plain C, for the hand-made test plans.
 *
 * It stands in for sdnnc's emitted SpMM code and follows the sdnn_kernel_args contract of
 * sdnn_plan.h exactly: everything the real code bakes into instructions (shape, tile height,
 * k-block size, vector length VL, nonzero positions, epilogue) lives in a ref_layer; the weights
 * are read only through args->values, sequentially in consumption order (per block: k ascending,
 * then rows of the tile ascending). Block index = kb * num_tiles + tile. B and C are blocked:
 * column j of row k of B at b + (j / VL) * K * VL + k * VL + j % VL (C likewise with M). The
 * first k block stores C, later ones accumulate, the last adds the bias and applies ReLU when the
 * layer has them — so a runtime that ran k blocks out of order, or on different threads
 * concurrently, gives wrong results.
 *
 * Violations the kernel can see by itself (a call spanning k blocks, n <= 0 or not a multiple of
 * VL, values not at block_begin's values, a bias pointer other than the layer's) abort. */
#ifndef SDNN_TEST_REF_SPMM_H
#define SDNN_TEST_REF_SPMM_H

#include <stdint.h>
#include <stdlib.h>

#include "sdnn_plan.h"
#include "test_model.h"

typedef struct {
  /* "baked in" */
  int rows, cols; /* A is rows (M) x cols (K) */
  int tile_rows, k_block;
  int vl; /* columns per block of B and C */
  int relu;
  int64_t num_tiles, num_k_blocks;
  int32_t* entry_row; /* per value: the row and column it multiplies ("the instructions") */
  int32_t* entry_col;
  /* plan data */
  float* values;
  int64_t* block_offsets; /* num_k_blocks * num_tiles + 1 */
  float* bias;            /* NULL: no bias epilogue */
} ref_layer;

/* Fills values, pattern, offsets and bias from test_model.h's formulas. The arrays must hold
 * rows * cols values and num_k_blocks * num_tiles + 1 offsets. */
static inline void ref_layer_build(ref_layer* layer, uint32_t seed) {
  int64_t count = 0;
  layer->block_offsets[0] = 0;
  for (int64_t kb = 0; kb < layer->num_k_blocks; ++kb) {
    for (int64_t tile = 0; tile < layer->num_tiles; ++tile) {
      const int m0 = (int)tile * layer->tile_rows;
      const int m1 = m0 + layer->tile_rows < layer->rows ? m0 + layer->tile_rows : layer->rows;
      const int k0 = (int)kb * layer->k_block;
      const int k1 = k0 + layer->k_block < layer->cols ? k0 + layer->k_block : layer->cols;
      for (int k = k0; k < k1; ++k)
        for (int m = m0; m < m1; ++m) {
          const float w = tm_weight(seed, m, k);
          if (w == 0.0f) continue;
          layer->values[count] = w;
          layer->entry_row[count] = m;
          layer->entry_col[count] = k;
          ++count;
        }
      layer->block_offsets[kb * layer->num_tiles + tile + 1] = count;
    }
  }
  if (layer->bias)
    for (int m = 0; m < layer->rows; ++m) layer->bias[m] = tm_bias(seed, m);
}

static inline void ref_spmm(const ref_layer* layer, const sdnn_kernel_args* args) {
  const int64_t tiles = layer->num_tiles;
  const int64_t kb = args->block_begin / tiles;
  if (args->n <= 0 || args->n % layer->vl != 0 || args->block_begin < 0 ||
      args->block_end <= args->block_begin ||
      (args->block_end - 1) / tiles != kb || kb >= layer->num_k_blocks ||
      args->values != layer->values + layer->block_offsets[args->block_begin] ||
      args->bias != layer->bias)
    abort();

  const float* v = args->values;
  const int64_t value_base = layer->block_offsets[args->block_begin];
  const int64_t vl = layer->vl, column_blocks = args->n / vl;
  const int64_t b_block = (int64_t)layer->cols * vl, c_block = (int64_t)layer->rows * vl;
  for (int64_t block = args->block_begin; block < args->block_end; ++block) {
    const int64_t tile = block % tiles;
    const int m0 = (int)tile * layer->tile_rows;
    const int m1 = m0 + layer->tile_rows < layer->rows ? m0 + layer->tile_rows : layer->rows;
    for (int64_t jb = 0; jb < column_blocks; ++jb) {
      float* c = args->c + jb * c_block;
      const float* b = args->b + jb * b_block;
      if (kb == 0)
        for (int m = m0; m < m1; ++m)
          for (int64_t j = 0; j < vl; ++j) c[m * vl + j] = 0.0f;
      for (int64_t e = layer->block_offsets[block]; e < layer->block_offsets[block + 1]; ++e) {
        const float w = v[e - value_base];
        float* c_row = c + layer->entry_row[e] * vl;
        const float* b_row = b + layer->entry_col[e] * vl;
        for (int64_t j = 0; j < vl; ++j) c_row[j] += w * b_row[j];
      }
      if (kb == layer->num_k_blocks - 1)
        for (int m = m0; m < m1; ++m)
          for (int64_t j = 0; j < vl; ++j) {
            float x = c[m * vl + j] + (args->bias ? args->bias[m] : 0.0f);
            if (layer->relu && x < 0.0f) x = 0.0f;
            c[m * vl + j] = x;
          }
    }
  }
}

#endif /* SDNN_TEST_REF_SPMM_H */
