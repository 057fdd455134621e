/* cpu.c — which SDNN_CPU_* features this machine can run, for sdnn_model_load.
 *
 * A feature counts only when both the CPU reports it (CPUID) and the OS saves the register state it
 * needs (XCR0 via xgetbv, after checking OSXSAVE):
 *   SDNN_CPU_AVX2      AVX + AVX2 + FMA3, XCR0 bits 1-2 (XMM, YMM)
 *   SDNN_CPU_AVX512F   AVX-512F on top of AVX2, XCR0 bits 5-7 (opmask, ZMM_Hi256, Hi16_ZMM)
 *   SDNN_CPU_AVX512BW  AVX-512BW on top of AVX-512F
 *
 * Test-only masking: the environment variable SDNN_CPU_DISABLE, read at each model load, is a
 * comma-separated list of features to pretend are absent: `avx512f`, `avx2` (names compared
 * case-insensitively, surrounding blanks ignored, unknown names ignored). Features depend on each
 * other, so disabling avx2 also disables avx512f, and disabling avx512f also disables avx512bw.
 * Example: SDNN_CPU_DISABLE=avx512f makes a model built for AVX-512 fail to load with
 * SDNN_ERR_UNSUPPORTED_CPU on an AVX-512 machine.
 *
 * Only baseline x86-64 instructions are used here (cpuid, xgetbv after the OSXSAVE check). */
#include "cpu.h"

#include <cpuid.h>
#include <stddef.h>
#include <stdlib.h>
#include <strings.h>

#include "sdnn_plan.h"

enum {
  XCR0_SSE_AVX = (1u << 1) | (1u << 2),
  XCR0_AVX512 = (1u << 5) | (1u << 6) | (1u << 7),
};

static uint64_t read_xcr0(void) {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((uint64_t)hi << 32) | lo;
}

static uint32_t detect_features(void) {
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
  const int has_fma = (ecx & bit_FMA) != 0;
  if (!(ecx & bit_OSXSAVE) || !(ecx & bit_AVX)) return 0;
  const uint64_t xcr0 = read_xcr0();
  if ((xcr0 & XCR0_SSE_AVX) != XCR0_SSE_AVX) return 0;
  if (__get_cpuid_max(0, NULL) < 7) return 0;
  __cpuid_count(7, 0, eax, ebx, ecx, edx);

  uint32_t features = 0;
  if ((ebx & bit_AVX2) && has_fma) features |= SDNN_CPU_AVX2;
  if ((features & SDNN_CPU_AVX2) && (ebx & bit_AVX512F) && (xcr0 & XCR0_AVX512) == XCR0_AVX512)
    features |= SDNN_CPU_AVX512F;
  if ((features & SDNN_CPU_AVX512F) && (ebx & bit_AVX512BW)) features |= SDNN_CPU_AVX512BW;
  return features;
}

/* Features that disappear when `name` (length len) is disabled; 0 for unknown names. */
static uint32_t disabled_by(const char* name, size_t len) {
  static const struct {
    const char* name;
    uint32_t removes;
  } table[] = {
      {"avx2", SDNN_CPU_AVX2 | SDNN_CPU_AVX512F | SDNN_CPU_AVX512BW},
      {"avx512f", SDNN_CPU_AVX512F | SDNN_CPU_AVX512BW},
  };
  for (size_t i = 0; i < sizeof table / sizeof table[0]; ++i) {
    size_t n = 0;
    while (table[i].name[n]) ++n;
    if (n == len && strncasecmp(table[i].name, name, len) == 0) return table[i].removes;
  }
  return 0;
}

static int is_blank(char c) { return c == ' ' || c == '\t'; }

uint32_t sdnn_cpu_mask_features(uint32_t features, const char* disable_list) {
  if (!disable_list) return features;
  const char* p = disable_list;
  while (*p) {
    while (is_blank(*p) || *p == ',') ++p;
    const char* begin = p;
    while (*p && *p != ',') ++p;
    const char* end = p;
    while (end > begin && is_blank(end[-1])) --end;
    if (end > begin) features &= ~disabled_by(begin, (size_t)(end - begin));
  }
  return features;
}

uint32_t sdnn_cpu_features(void) {
  return sdnn_cpu_mask_features(detect_features(), getenv("SDNN_CPU_DISABLE"));
}
