#include "support/backends.h"

#include "core/backend_registry.h"

namespace rwkvrt::test {

std::vector<std::string> usable_backends() {
  std::vector<std::string> names;
  BackendRegistry& r = BackendRegistry::instance();
  for (size_t i = 0; i < r.count(); ++i) {
    const BackendEntry e = r.entry(i);
    if (e.usable()) names.push_back(e.name);
  }
  return names;
}

}  // namespace rwkvrt::test
