/* A plugin built for ABI versions 7..9 only: the runtime must refuse it and say what it offered. */
#include "rwkvrt/backend.h"

__attribute__((visibility("default"))) int rwkvrt_backend_negotiate(rwkvrt_bk_negotiation* n) {
  n->plugin_min_version = 7;
  n->plugin_max_version = 9;
  n->chosen_version = 0;
  n->table = 0;
  return RWKVRT_BK_UNSUPPORTED;
}
