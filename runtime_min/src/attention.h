/* attention.h — SDNN_STEP_ATTENTION: multi-head attention on FeatureBlocked activations.
 *
 * Q, K, V and the output are [ceil(B*S/VL)][F][VL] (sdnn_plan.h): column c = b*S + s is token s
 * of sequence b, feature f of it at (c / VL) * F * VL + f * VL + c % VL. In this layout every
 * per-query reduction runs across the VL lanes of a vector at once: for one head and a block of
 * VL queries the scores are an [S keys][VL] panel (each key's K values broadcast against the
 * queries' Q vectors, as in the sparse kernels), the softmax over keys is a vertical max / sum
 * over the panel, and P V is again broadcast-times-vector. No transposes are ever materialized.
 *
 * Unit of the work split: (sequence b, head h, query block i) with query block i = queries
 * [i*VL, min(S, (i+1)*VL)) of sequence b; units = B * H * ceil(S / VL). Each unit writes only its
 * queries' D features of head h, so units never share output memory. Scratch per thread:
 * sdnn_attention_scratch_floats(p) floats (sdnn_plan.h), 64-byte aligned. */
#ifndef SDNN_RUNTIME_ATTENTION_H
#define SDNN_RUNTIME_ATTENTION_H

#include <stdint.h>

#include "sdnn_plan.h"

int64_t sdnn_attention_units(const sdnn_attention_params* p);

/* Runs units [unit_begin, unit_end). mask may be NULL when !p->has_mask (p->mask_const wins over
 * it when set). cpu: the plan's SDNN_CPU_* bits (AVX-512 code when SDNN_CPU_AVX512F is set and
 * p->vl == 16, AVX2 code when p->vl == 8, portable C otherwise). */
void sdnn_attention_run(const sdnn_attention_params* p, float* dst, const float* q, const float* k,
                        const float* v, const float* mask, float* scratch, int64_t unit_begin,
                        int64_t unit_end, uint32_t cpu);

#endif /* SDNN_RUNTIME_ATTENTION_H */
