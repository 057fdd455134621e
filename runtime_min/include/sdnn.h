/* sdnn.h — the C ABI of every model.so produced by sdnnc.
 *
 * A model.so holds generated kernels, their weights and a plan; this header is all a deployment
 * needs to load and run it (dlopen + dlsym, or link against the .so directly). Tensors cross the
 * ABI dense and row-major, in the ONNX model's logical shapes (f32; int64 for integer inputs);
 * internal layouts never leak.
 *
 * Threading: an sdnn_model is immutable and may be shared by any number of threads. An
 * sdnn_context is one inference stream (its own activation arena and worker threads); use one
 * context per concurrent caller. Nothing here sets errno or throws. */
#ifndef SDNN_H
#define SDNN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define SDNN_API __attribute__((visibility("default")))
#else
#define SDNN_API
#endif

typedef enum {
  SDNN_OK = 0,
  SDNN_ERR_INVALID_ARGUMENT,
  SDNN_ERR_UNSUPPORTED_CPU,
  SDNN_ERR_OUT_OF_MEMORY,
  SDNN_ERR_INTERNAL
} sdnn_status;

typedef struct sdnn_model sdnn_model;     /* code + weights + plan; immutable, shared */
typedef struct sdnn_context sdnn_context; /* one inference stream: own arena, own threads */
/* Element types of the tensors crossing the ABI: f32 for every output and most inputs; integer
 * inputs (token ids, integer attention masks) are int64. */
typedef enum { SDNN_F32 = 0, SDNN_I64 = 1 } sdnn_dtype;

typedef struct {
  const char* name;
  int rank;
  const int64_t* dims;
  int dtype; /* sdnn_dtype */
} sdnn_tensor_info;

/* Loads the model embedded in this shared object. Fails with SDNN_ERR_UNSUPPORTED_CPU when the
 * CPU lacks an instruction set the kernels were generated for. */
SDNN_API sdnn_status sdnn_model_load(sdnn_model** out);
SDNN_API void sdnn_model_free(sdnn_model* m);
SDNN_API size_t sdnn_model_num_inputs(const sdnn_model* m);
SDNN_API size_t sdnn_model_num_outputs(const sdnn_model* m);
/* NULL when m is NULL or i is out of range. The pointers live as long as the model. */
SDNN_API const sdnn_tensor_info* sdnn_model_input(const sdnn_model* m, size_t i);
SDNN_API const sdnn_tensor_info* sdnn_model_output(const sdnn_model* m, size_t i);
/* num_threads >= 1 (the calling thread plus num_threads - 1 workers), at most 1024. */
SDNN_API sdnn_status sdnn_context_create(const sdnn_model* m, int num_threads, sdnn_context** out);
SDNN_API void sdnn_context_free(sdnn_context* c);
/* inputs[i] / outputs[j] point to dense row-major tensors of the shapes and types the model
 * reports (an SDNN_I64 input's int64_t data is passed cast to const float*). Output buffers must not
 * overlap inputs. Fails with SDNN_ERR_INVALID_ARGUMENT, leaving the outputs undefined, when an
 * index input holds an index outside the table it selects from. */
SDNN_API sdnn_status sdnn_run(sdnn_context* c, const float* const* inputs, float* const* outputs);
SDNN_API const char* sdnn_status_string(sdnn_status s);

#ifdef __cplusplus
}
#endif

#endif /* SDNN_H */
