//go:build wasmtime

// The part of wasmtime's C API that this package calls itself, declared by
// hand: cgo cannot point an include path at the wasmtime-go module's
// build/include, and the symbols are linked from the libwasmtime.a that
// wasmtime-go links anyway. TestShimMatchesHeaders compiles this file
// against the real wasmtime.h, so a declaration that drifts fails a test.
//
// Types only used through pointers are declared opaque; the two vector
// layouts are from wasm.h (WASM_DECLARE_VEC) and checked by that test.

#ifndef WAPR_WASMTIME_SHIM_H
#define WAPR_WASMTIME_SHIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct wasmtime_context wasmtime_context_t;
typedef struct wasmtime_store wasmtime_store_t;
typedef struct wasmtime_caller wasmtime_caller_t;
typedef struct wasmtime_linker wasmtime_linker_t;
typedef struct wasmtime_error wasmtime_error_t;
typedef struct wasmtime_func wasmtime_func_t;
typedef struct wasmtime_memory wasmtime_memory_t;
typedef union wasmtime_val_raw wasmtime_val_raw_t;
typedef struct wasm_trap_t wasm_trap_t;
typedef struct wasm_valtype_t wasm_valtype_t;
typedef struct wasm_functype_t wasm_functype_t;
typedef uint8_t wasm_valkind_t;
typedef uint8_t wasmtime_trap_code_t;
typedef uint8_t wasmtime_update_deadline_kind_t;

#ifndef WAPR_SHIM_CHECK
typedef struct wasm_byte_vec_t {
  size_t size;
  char *data;
} wasm_byte_vec_t;
typedef struct wasm_valtype_vec_t {
  size_t size;
  wasm_valtype_t **data;
} wasm_valtype_vec_t;
#endif

typedef wasm_trap_t *(*wasmtime_func_unchecked_callback_t)(
    void *env, wasmtime_caller_t *caller, wasmtime_val_raw_t *args_and_results,
    size_t num_args_and_results);

// wasmtime.h
wasmtime_error_t *wasmtime_func_call_unchecked(wasmtime_context_t *store,
                                               const wasmtime_func_t *func,
                                               wasmtime_val_raw_t *args_and_results,
                                               size_t args_and_results_len,
                                               wasm_trap_t **trap);
wasmtime_context_t *wasmtime_caller_context(wasmtime_caller_t *caller);
void *wasmtime_context_get_data(const wasmtime_context_t *context);
void wasmtime_context_set_epoch_deadline(wasmtime_context_t *context,
                                         uint64_t ticks_beyond_current);
void wasmtime_store_epoch_deadline_callback(
    wasmtime_store_t *store,
    wasmtime_error_t *(*func)(wasmtime_context_t *context, void *data,
                              uint64_t *epoch_deadline_delta,
                              wasmtime_update_deadline_kind_t *update_kind),
    void *data, void (*finalizer)(void *));
uint8_t *wasmtime_memory_data(const wasmtime_context_t *store,
                              const wasmtime_memory_t *memory);
size_t wasmtime_memory_data_size(const wasmtime_context_t *store,
                                 const wasmtime_memory_t *memory);
wasmtime_error_t *wasmtime_linker_define_func_unchecked(
    wasmtime_linker_t *linker, const char *module, size_t module_len,
    const char *name, size_t name_len, const wasm_functype_t *ty,
    wasmtime_func_unchecked_callback_t cb, void *data,
    void (*finalizer)(void *));
wasmtime_error_t *wasmtime_error_new(const char *);
void wasmtime_error_delete(wasmtime_error_t *error);
void wasmtime_error_message(const wasmtime_error_t *error,
                            wasm_byte_vec_t *message);
bool wasmtime_error_exit_status(const wasmtime_error_t *, int *status);
wasm_trap_t *wasmtime_trap_new(const char *msg, size_t msg_len);
bool wasmtime_trap_code(const wasm_trap_t *, wasmtime_trap_code_t *code);

// wasm.h
void wasm_trap_delete(wasm_trap_t *);
void wasm_trap_message(const wasm_trap_t *, wasm_byte_vec_t *out);
void wasm_byte_vec_delete(wasm_byte_vec_t *);
wasm_valtype_t *wasm_valtype_new(wasm_valkind_t);
void wasm_valtype_vec_new(wasm_valtype_vec_t *out, size_t,
                          wasm_valtype_t *const[]);
wasm_functype_t *wasm_functype_new(wasm_valtype_vec_t *params,
                                   wasm_valtype_vec_t *results);
void wasm_functype_delete(wasm_functype_t *);

// Trap code of an epoch deadline reached without a callback (trap.h).
#define WAPR_TRAP_CODE_INTERRUPT 10

// shim.c

// The outcome of wapr_call: at most one of err and trap is set; the caller
// owns it.
typedef struct wapr_result {
  wasmtime_error_t *err;
  wasm_trap_t *trap;
} wapr_result;

// wapr_call calls f with the raw slots in one cgo crossing; a nonzero
// deadline first sets the store's epoch deadline to that many ticks.
wapr_result wapr_call(wasmtime_context_t *cx, const wasmtime_func_t *f,
                      wasmtime_val_raw_t *slots, size_t n, uint64_t deadline);

// A linear memory's base and size, read in one crossing.
typedef struct wapr_mem {
  uint8_t *data;
  size_t size;
} wapr_mem;

wapr_mem wapr_memory(const wasmtime_context_t *cx, const wasmtime_memory_t *m);

// wapr_define defines module.name in l as a host function of the given
// wasm_valkind_t parameters and results (at most 16 each) that calls
// waprHostCall with env; wasmtime calls waprHostFree(env) when it drops it.
wasmtime_error_t *wapr_define(wasmtime_linker_t *l, const char *module,
                              size_t module_len, const char *name,
                              size_t name_len, const uint8_t *params,
                              size_t nparams, const uint8_t *results,
                              size_t nresults, uintptr_t env);

// wapr_watch_epoch makes the store ask waprEpochExpired at each epoch
// deadline instead of trapping.
void wapr_watch_epoch(wasmtime_store_t *store);

#endif
