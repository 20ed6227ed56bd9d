// rwkvrt backends: which backend plugins were found, which can run here, and why not.
#include <cstdio>

#include "cli.h"
#include "core/backend_registry.h"

namespace rwkvrt::cli {

void register_backends_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "backends",
      "List the backend plugins found (RWKVRT_BACKEND_PATH, the install's plugin directory, the "
      "library's own directory), their devices, and why any cannot run here");
  static bool json = false;
  cmd->add_flag("--json", json, "Print one JSON object instead of a table");
  cmd->callback([] {
    BackendRegistry& reg = BackendRegistry::instance();
    const size_t n = reg.count();
    if (json) std::printf("{\"backends\": [");
    for (size_t i = 0; i < n; ++i) {
      const BackendEntry e = reg.entry(i);
      if (json) {
        std::printf("%s{\"name\": \"%s\", \"usable\": %s, \"score\": %g, \"abi\": %u, "
                    "\"path\": \"%s\", \"devices\": [",
                    i ? ", " : "", e.name.c_str(), e.usable() ? "true" : "false", double(e.score),
                    e.abi_version, e.path.c_str());
        for (size_t d = 0; d < e.device_names.size(); ++d)
          std::printf("%s\"%s\"", d ? ", " : "", e.device_names[d].c_str());
        std::printf("], \"unavailable_reason\": \"%s\"}", e.unavailable_reason.c_str());
        continue;
      }
      std::printf("%-6s %s  score %-4g %s\n", e.name.c_str(), e.usable() ? "available  " : "unavailable",
                  double(e.score), e.description.c_str());
      for (size_t d = 0; d < e.device_names.size(); ++d)
        std::printf("       device %zu: %s\n", d, e.device_names[d].c_str());
      if (!e.unavailable_reason.empty()) std::printf("       why not: %s\n", e.unavailable_reason.c_str());
      std::printf("       plugin: %s (ABI %u)\n", e.path.c_str(), e.abi_version);
    }
    if (json) std::printf("]}\n");
    if (!json && n == 0)
      std::printf("no backend plugins found; set RWKVRT_BACKEND_PATH to the directory holding "
                  "librwkvrt-backend-*.so\n");
  });
}

}  // namespace rwkvrt::cli
