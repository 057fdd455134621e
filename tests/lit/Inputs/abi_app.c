/* A program using a model.so through the installed sdnn.h, as README.md's example does: prints
   the first input's name and shape, then runs the model once on ones and prints the status and
   the first output's sum. */
#include <stdio.h>
#include <stdlib.h>

#include "sdnn.h"

static size_t elements(const sdnn_tensor_info* t) {
  size_t n = 1;
  for (int d = 0; d < t->rank; ++d) n *= (size_t)t->dims[d];
  return n;
}

int main(void) {
  sdnn_model* m;
  sdnn_context* c;
  sdnn_status s = sdnn_model_load(&m);
  if (s != SDNN_OK) {
    printf("load: %s\n", sdnn_status_string(s));
    return 1;
  }
  const sdnn_tensor_info* in = sdnn_model_input(m, 0);
  const sdnn_tensor_info* out = sdnn_model_output(m, 0);
  printf("input %s rank %d:", in->name, in->rank);
  for (int d = 0; d < in->rank; ++d) printf(" %lld", (long long)in->dims[d]);
  printf("\n");
  float* x = malloc(elements(in) * sizeof(float));
  float* y = malloc(elements(out) * sizeof(float));
  for (size_t i = 0; i < elements(in); ++i) x[i] = 1.0f;
  const float* inputs[] = {x};
  float* outputs[] = {y};
  if ((s = sdnn_context_create(m, 2, &c)) == SDNN_OK) {
    s = sdnn_run(c, inputs, outputs);
    sdnn_context_free(c);
  }
  double sum = 0;
  for (size_t i = 0; i < elements(out); ++i) sum += y[i];
  printf("run: %s, sum %.6g\n", sdnn_status_string(s), sum);
  sdnn_model_free(m);
  free(x);
  free(y);
  return s != SDNN_OK;
}
