// The backends a test should cover: every usable one found by the registry (the CPU backend in
// CI; the CUDA backend too on a GPU machine).
#pragma once

#include <string>
#include <vector>

namespace rwkvrt::test {

std::vector<std::string> usable_backends();

}  // namespace rwkvrt::test
