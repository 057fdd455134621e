/* abi_run.c — runs a model.so through the C ABI from plain C, as a C deployment would.
 *
 *   sdnn-abi-run MODEL.so THREADS IN0.bin [IN1.bin ...] -- OUT0.bin [OUT1.bin ...]
 *
 * Inputs and outputs are raw little-endian float32 files in the model's logical shapes (the
 * golden tests write and read them with numpy). The model is dlopen'ed and every sdnn_* entry
 * point looked up with dlsym; each input's size is checked against the shape the model reports.
 * Exit 0 on success, 1 with "sdnn-abi-run: error: ..." otherwise. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sdnn.h"

#define FAIL(...)                                   \
  do {                                              \
    fprintf(stderr, "sdnn-abi-run: error: ");       \
    fprintf(stderr, __VA_ARGS__);                   \
    fprintf(stderr, "\n");                          \
    exit(1);                                        \
  } while (0)

static void* sym(void* lib, const char* name) {
  void* p = dlsym(lib, name);
  if (!p) FAIL("the model does not export %s", name);
  return p;
}

static size_t elements(const sdnn_tensor_info* t) {
  size_t n = 1;
  for (int i = 0; i < t->rank; ++i) n *= (size_t)t->dims[i];
  return n;
}

int main(int argc, char** argv) {
  if (argc < 4) FAIL("usage: sdnn-abi-run MODEL.so THREADS IN.bin... -- OUT.bin...");
  void* lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!lib) FAIL("cannot load %s: %s", argv[1], dlerror());
  sdnn_status (*load)(sdnn_model**) = (sdnn_status (*)(sdnn_model**))sym(lib, "sdnn_model_load");
  void (*model_free)(sdnn_model*) = (void (*)(sdnn_model*))sym(lib, "sdnn_model_free");
  size_t (*num_in)(const sdnn_model*) = (size_t (*)(const sdnn_model*))sym(lib, "sdnn_model_num_inputs");
  size_t (*num_out)(const sdnn_model*) = (size_t (*)(const sdnn_model*))sym(lib, "sdnn_model_num_outputs");
  const sdnn_tensor_info* (*input)(const sdnn_model*, size_t) =
      (const sdnn_tensor_info* (*)(const sdnn_model*, size_t))sym(lib, "sdnn_model_input");
  const sdnn_tensor_info* (*output)(const sdnn_model*, size_t) =
      (const sdnn_tensor_info* (*)(const sdnn_model*, size_t))sym(lib, "sdnn_model_output");
  sdnn_status (*ctx_create)(const sdnn_model*, int, sdnn_context**) =
      (sdnn_status (*)(const sdnn_model*, int, sdnn_context**))sym(lib, "sdnn_context_create");
  void (*ctx_free)(sdnn_context*) = (void (*)(sdnn_context*))sym(lib, "sdnn_context_free");
  sdnn_status (*run)(sdnn_context*, const float* const*, float* const*) =
      (sdnn_status (*)(sdnn_context*, const float* const*, float* const*))sym(lib, "sdnn_run");
  const char* (*status_string)(sdnn_status) = (const char* (*)(sdnn_status))sym(lib, "sdnn_status_string");

  sdnn_model* m = NULL;
  sdnn_status st = load(&m);
  if (st != SDNN_OK) FAIL("sdnn_model_load: %s", status_string(st));
  const int threads = atoi(argv[2]);
  int sep = 3;
  while (sep < argc && strcmp(argv[sep], "--") != 0) ++sep;
  const size_t nin = (size_t)(sep - 3), nout = sep < argc ? (size_t)(argc - sep - 1) : 0;
  if (nin != num_in(m) || nout != num_out(m))
    FAIL("the model has %zu inputs and %zu outputs; got %zu and %zu files", num_in(m), num_out(m), nin, nout);

  const float** ins = calloc(nin, sizeof *ins);
  float** outs = calloc(nout, sizeof *outs);
  for (size_t i = 0; i < nin; ++i) {
    /* raw float32, or raw int64 for an SDNN_I64 input (passed cast, as sdnn.h says) */
    const size_t n = elements(input(m, i));
    const size_t item = input(m, i)->dtype == SDNN_I64 ? sizeof(int64_t) : sizeof(float);
    char* buf = malloc(n * item + 8);
    FILE* f = fopen(argv[3 + i], "rb");
    if (!f || !buf) FAIL("cannot read %s", argv[3 + i]);
    size_t got = fread(buf, item, n + 1, f);
    fclose(f);
    if (got != n) FAIL("input '%s': %s holds %zu elements, the model expects %zu", input(m, i)->name, argv[3 + i], got, n);
    ins[i] = (const float*)(const void*)buf;
  }
  for (size_t j = 0; j < nout; ++j) {
    outs[j] = malloc(elements(output(m, j)) * sizeof(float));
    if (!outs[j]) FAIL("out of memory");
  }
  sdnn_context* c = NULL;
  st = ctx_create(m, threads, &c);
  if (st != SDNN_OK) FAIL("sdnn_context_create(%d threads): %s", threads, status_string(st));
  st = run(c, ins, outs);
  if (st != SDNN_OK) FAIL("sdnn_run: %s", status_string(st));
  for (size_t j = 0; j < nout; ++j) {
    const char* path = argv[sep + 1 + j];
    FILE* f = fopen(path, "wb");
    const size_t n = elements(output(m, j));
    if (!f || fwrite(outs[j], sizeof(float), n, f) != n || fclose(f) != 0) FAIL("cannot write %s", path);
    free(outs[j]);
  }
  for (size_t i = 0; i < nin; ++i) free((void*)ins[i]);
  free(ins);
  free(outs);
  ctx_free(c);
  model_free(m);
  dlclose(lib);
  return 0;
}
