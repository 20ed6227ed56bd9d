/* A version-1 plugin that reports it cannot run on this machine (score 0 and a reason), as a GPU
 * backend does without a GPU.  Only the discovery slots are filled.  Built several times:
 *   FAKE_NAME        the backend's name
 *   FAKE_REASON      why it cannot run
 *   FAKE_TABLE_SIZE  the struct_size it reports: the whole table, the first revision's
 *                    (RWKVRT_BACKEND_V1_MIN_SIZE, which the host must accept), or less (refused).
 */
#include <stdio.h>
#include <string.h>

#include "rwkvrt/backend.h"

static const char* last_error(void) {
  return "";
}
static float probe(char* reason, size_t cap) {
  snprintf(reason, cap, "%s", FAKE_REASON);
  return 0.0f;
}
static int32_t device_count(void) {
  return 0;
}

static rwkvrt_backend_v1 table;

__attribute__((visibility("default"))) int rwkvrt_backend_negotiate(rwkvrt_bk_negotiation* n) {
  n->plugin_min_version = 1;
  n->plugin_max_version = 1;
  if (n->host_min_version > 1 || n->host_max_version < 1) return RWKVRT_BK_UNSUPPORTED;
  memset(&table, 0, sizeof(table));
  table.struct_size = (uint32_t)(FAKE_TABLE_SIZE);
  table.abi_version = 1;
  table.name = FAKE_NAME;
  table.description = "test plugin without devices";
  table.last_error = last_error;
  table.probe = probe;
  table.device_count = device_count;
  n->chosen_version = 1;
  n->table = &table;
  return RWKVRT_BK_OK;
}
