// Locating the shared test data and scratch files for tests.
#pragma once

#include <string>
#include <vector>

namespace rwkvrt::test {

// The shared test data directory: $RWKVRT_TESTDATA, else the path configured at build time.
std::string testdata_dir();
// testdata_dir() + "/" + relative
std::string testdata_path(const std::string& relative);
// A fresh, empty directory for this test's files (removed when the process exits cleanly).
std::string scratch_dir();
// Whole-file helpers.
std::vector<uint8_t> read_file(const std::string& path);
void write_file(const std::string& path, const std::vector<uint8_t>& bytes);
void write_file(const std::string& path, const std::string& bytes);

}  // namespace rwkvrt::test
