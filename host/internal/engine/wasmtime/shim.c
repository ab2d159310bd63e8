//go:build wasmtime

#include "shim.h"
#include "_cgo_export.h"

wapr_result wapr_call(wasmtime_context_t *cx, const wasmtime_func_t *f,
                      wasmtime_val_raw_t *slots, size_t n, uint64_t deadline) {
  wapr_result r = {NULL, NULL};
  if (deadline != 0) {
    wasmtime_context_set_epoch_deadline(cx, deadline);
  }
  r.err = wasmtime_func_call_unchecked(cx, f, slots, n, &r.trap);
  return r;
}

wapr_mem wapr_memory(const wasmtime_context_t *cx, const wasmtime_memory_t *m) {
  wapr_mem r;
  r.data = wasmtime_memory_data(cx, m);
  r.size = wasmtime_memory_data_size(cx, m);
  return r;
}

static wasm_trap_t *wapr_host_trampoline(void *env, wasmtime_caller_t *caller,
                                         wasmtime_val_raw_t *args, size_t n) {
  wasmtime_context_t *cx = wasmtime_caller_context(caller);
  return waprHostCall((uintptr_t)env, cx,
                      (uintptr_t)wasmtime_context_get_data(cx), args, n);
}

static void wapr_host_finalize(void *env) { waprHostFree((uintptr_t)env); }

wasmtime_error_t *wapr_define(wasmtime_linker_t *l, const char *module,
                              size_t module_len, const char *name,
                              size_t name_len, const uint8_t *params,
                              size_t nparams, const uint8_t *results,
                              size_t nresults, uintptr_t env) {
  wasm_valtype_t *pt[16], *rt[16];
  wasm_valtype_vec_t pv, rv;
  size_t k;
  if (nparams > 16 || nresults > 16) {
    return wasmtime_error_new("too many parameters or results");
  }
  for (k = 0; k < nparams; k++) pt[k] = wasm_valtype_new(params[k]);
  for (k = 0; k < nresults; k++) rt[k] = wasm_valtype_new(results[k]);
  wasm_valtype_vec_new(&pv, nparams, pt);
  wasm_valtype_vec_new(&rv, nresults, rt);
  wasm_functype_t *ty = wasm_functype_new(&pv, &rv);
  wasmtime_error_t *err = wasmtime_linker_define_func_unchecked(
      l, module, module_len, name, name_len, ty, wapr_host_trampoline,
      (void *)env, wapr_host_finalize);
  wasm_functype_delete(ty);
  return err;
}

static wasmtime_error_t *wapr_epoch(wasmtime_context_t *cx, void *data,
                                    uint64_t *delta,
                                    wasmtime_update_deadline_kind_t *kind) {
  (void)data;
  if (waprEpochExpired((uintptr_t)wasmtime_context_get_data(cx))) {
    return wasmtime_error_new("wasm call interrupted");
  }
  *delta = 1;
  *kind = 0; /* WASMTIME_UPDATE_DEADLINE_CONTINUE */
  return NULL;
}

void wapr_watch_epoch(wasmtime_store_t *store) {
  wasmtime_store_epoch_deadline_callback(store, wapr_epoch, NULL, NULL);
}
