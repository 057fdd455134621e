/* model.c — sdnn_model_load / free, model info and status strings of the C ABI (sdnn.h).
 *
 * The model is the plan embedded in this .so (sdnn_plan_data); loading checks that the plan
 * belongs to this runtime (magic, version), that this CPU and OS run the instruction sets its
 * kernels need (cpu.c, including the SDNN_CPU_DISABLE test mask), and that the plan is consistent
 * (plan_check.c). A model is immutable after loading; contexts only read it. */
#include <stdlib.h>

#include "cpu.h"
#include "runtime.h"

SDNN_API sdnn_status sdnn_model_load(sdnn_model** out) {
  if (!out) return SDNN_ERR_INVALID_ARGUMENT;
  *out = NULL;
  const sdnn_plan* plan = &sdnn_plan_data;
  if (plan->magic != SDNN_PLAN_MAGIC || plan->version != SDNN_PLAN_VERSION)
    return SDNN_ERR_INTERNAL;
  if (plan->required_cpu & ~sdnn_cpu_features()) return SDNN_ERR_UNSUPPORTED_CPU;
  if (!sdnn_plan_is_valid(plan)) return SDNN_ERR_INTERNAL;

  sdnn_model* model = malloc(sizeof *model);
  if (!model) return SDNN_ERR_OUT_OF_MEMORY;
  model->plan = plan;
  *out = model;
  return SDNN_OK;
}

SDNN_API void sdnn_model_free(sdnn_model* m) { free(m); }

SDNN_API size_t sdnn_model_num_inputs(const sdnn_model* m) { return m ? m->plan->num_inputs : 0; }

SDNN_API size_t sdnn_model_num_outputs(const sdnn_model* m) {
  return m ? m->plan->num_outputs : 0;
}

SDNN_API const sdnn_tensor_info* sdnn_model_input(const sdnn_model* m, size_t i) {
  return m && i < m->plan->num_inputs ? &m->plan->inputs[i] : NULL;
}

SDNN_API const sdnn_tensor_info* sdnn_model_output(const sdnn_model* m, size_t i) {
  return m && i < m->plan->num_outputs ? &m->plan->outputs[i] : NULL;
}

SDNN_API const char* sdnn_status_string(sdnn_status s) {
  switch (s) {
    case SDNN_OK:
      return "ok";
    case SDNN_ERR_INVALID_ARGUMENT:
      return "invalid argument";
    case SDNN_ERR_UNSUPPORTED_CPU:
      return "unsupported CPU: the model needs instructions this CPU or OS does not provide";
    case SDNN_ERR_OUT_OF_MEMORY:
      return "out of memory";
    case SDNN_ERR_INTERNAL:
      return "internal error (inconsistent model)";
  }
  return "unknown status";
}
