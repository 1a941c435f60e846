/*
 * The C library's own sin, cos, atan2 and asin, for the environment's geometry.
 *
 * The reference computes headings in CPython, whose math module calls the platform's libm.
 * V8 ships its own (fdlibm) versions, which differ from glibc's in the last bit on a few per
 * cent of arguments; the bearing formula cancels, so a last-bit difference becomes a visible
 * heading difference between two close geocodes. Calling the same libm gives the same bits.
 * Optional: where this does not build, src/domain/virl/libm.ts falls back to JS.
 */
#include <math.h>
#include <node_api.h>

typedef double (*unary)(double);

static napi_value call1(napi_env env, napi_callback_info info, unary f) {
  size_t argc = 1;
  napi_value argv[1];
  double x = NAN;
  napi_value result;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc >= 1) napi_get_value_double(env, argv[0], &x);
  napi_create_double(env, f(x), &result);
  return result;
}

static napi_value js_sin(napi_env env, napi_callback_info info) { return call1(env, info, sin); }
static napi_value js_cos(napi_env env, napi_callback_info info) { return call1(env, info, cos); }
static napi_value js_asin(napi_env env, napi_callback_info info) { return call1(env, info, asin); }

static napi_value js_atan2(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  double y = NAN, x = NAN;
  napi_value result;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc >= 2) {
    napi_get_value_double(env, argv[0], &y);
    napi_get_value_double(env, argv[1], &x);
  }
  napi_create_double(env, atan2(y, x), &result);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"sin", NULL, js_sin, NULL, NULL, NULL, napi_enumerable, NULL},
    {"cos", NULL, js_cos, NULL, NULL, NULL, napi_enumerable, NULL},
    {"asin", NULL, js_asin, NULL, NULL, NULL, napi_enumerable, NULL},
    {"atan2", NULL, js_atan2, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
