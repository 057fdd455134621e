/* test_model.h — sizes and weights of the hand-made test models of tests/runtime.
 *
 * Shared by the plan files (model_*.c, which pack the weights for the reference kernel) and the
 * tests (which compute expected outputs from the same formulas in double precision). Valid C and
 * C++. Sizes are deliberately not multiples of the tile height, k block, n_align or VL, so every
 * tail path runs (partial tiles, k blocks, column ranges and padded column blocks). */
#ifndef SDNN_TEST_MODEL_H
#define SDNN_TEST_MODEL_H

#include <stdint.h>

/* "mlp": input x [TOKENS][FEATURES]; outputs
 *   y[t][m] = relu(sum_k A[m][k] x[t][k] + bias[m]) + x[t][m]   (A is FEATURES x FEATURES)
 *   x_copy  = x
 * Steps: pack rows, kernel (2 k blocks, bias), relu in place, add in place, unpack rows, copy.
 * Blocked with VL 16 (AVX-512 width); N_ALIGN = 2 VL, so the last column range is a single VL. */
#define TM_MLP_TOKENS 301
#define TM_MLP_FEATURES 75
#define TM_MLP_TILE_ROWS 8
#define TM_MLP_K_BLOCK 40
#define TM_MLP_VL 16
#define TM_MLP_N_ALIGN 32
#define TM_MLP_SEED 1u

/* "conv": a 1x1 convolution on NCHW, input img [BATCH][IN][H][W], output out [BATCH][OUT][H][W]
 * with out[b] = relu(A * img[b] + bias). Steps: pack channels, one batched kernel (3 k blocks,
 * bias + ReLU epilogue), unpack channels. Blocked with VL 8 (AVX2 width); N_ALIGN = VL. */
#define TM_CONV_BATCH 3
#define TM_CONV_IN 21
#define TM_CONV_OUT 38
#define TM_CONV_H 14
#define TM_CONV_W 14
#define TM_CONV_HW (TM_CONV_H * TM_CONV_W)
#define TM_CONV_TILE_ROWS 8
#define TM_CONV_K_BLOCK 8
#define TM_CONV_VL 8
#define TM_CONV_N_ALIGN 8
#define TM_CONV_SEED 2u

/* Columns padded to a multiple of VL. */
#define TM_PADDED(n, vl) (((n) + (vl) - 1) / (vl) * (vl))

static inline uint32_t tm_hash(uint32_t a, uint32_t b) {
  uint32_t h = a * 0x9E3779B1u ^ (b + 0x7F4A7C15u + (a << 6) + (a >> 2));
  h ^= h >> 16;
  h *= 0x85EBCA6Bu;
  h ^= h >> 13;
  h *= 0xC2B2AE35u;
  h ^= h >> 16;
  return h;
}

/* A value in [-1, 1] on a 1/1024 grid. */
static inline float tm_uniform(uint32_t h) {
  return (float)((int32_t)(h % 2049u) - 1024) / 1024.0f;
}

/* A[m][k]: row m keeps 5-64 % of its weights, every 7th row (m % 7 == 3) none, so tiles carry
 * unequal nonzero counts and some rows are empty. Kept weights are never 0. */
static inline float tm_weight(uint32_t seed, int m, int k) {
  const uint32_t keep_percent = m % 7 == 3 ? 0u : 5u + (uint32_t)(m * 37) % 60u;
  const uint32_t h = tm_hash(seed * 7919u + (uint32_t)m, (uint32_t)k);
  if (h % 100u >= keep_percent) return 0.0f;
  const float v = tm_uniform(h >> 7);
  return v == 0.0f ? 0.5f : v;
}

static inline float tm_bias(uint32_t seed, int m) {
  return tm_uniform(tm_hash(seed + 101u, (uint32_t)m));
}

/* Element i of a test input; `variant` gives different inputs for repeated runs. */
static inline float tm_input(uint32_t variant, int64_t i) {
  return tm_uniform(tm_hash(variant * 31u + 555u, (uint32_t)i));
}

#endif /* SDNN_TEST_MODEL_H */
