/* A plugin built against the first revision of ABI version 1: its table ends at graph_free, so
 * it lacks the appended entries (matmul_bias_act).  The host must still load it.
 * Only the discovery slots are filled; it reports that it cannot run. */
#include <stdio.h>
#include <string.h>

#include "rwkvrt/backend.h"

static const char* last_error(void) { return ""; }
static float probe(char* reason, size_t cap) {
  snprintf(reason, cap, "a test plugin");
  return 0.0f;
}
static int32_t device_count(void) { return 0; }

static rwkvrt_backend_v1 table;

__attribute__((visibility("default"))) int rwkvrt_backend_negotiate(rwkvrt_bk_negotiation* n) {
  n->plugin_min_version = 1;
  n->plugin_max_version = 1;
  if (n->host_min_version > 1 || n->host_max_version < 1) return RWKVRT_BK_UNSUPPORTED;
  memset(&table, 0, sizeof(table));
  table.struct_size = (uint32_t)(RWKVRT_BACKEND_V1_MIN_SIZE);
  table.abi_version = 1;
  table.name = "firstrevision";
  table.description = "test plugin";
  table.last_error = last_error;
  table.probe = probe;
  table.device_count = device_count;
  n->chosen_version = 1;
  n->table = &table;
  return RWKVRT_BK_OK;
}
