/* cpu.h — CPU feature detection for the model load check (see cpu.c). */
#ifndef SDNN_RUNTIME_CPU_H
#define SDNN_RUNTIME_CPU_H

#include <stdint.h>

/* SDNN_CPU_* bits the CPU and OS support, minus those masked by SDNN_CPU_DISABLE. Reads the
 * environment on every call, so a test may change it between model loads. */
uint32_t sdnn_cpu_features(void);

/* The masking rule alone, for tests: features minus what `disable_list` names. */
uint32_t sdnn_cpu_mask_features(uint32_t features, const char* disable_list);

#endif /* SDNN_RUNTIME_CPU_H */
