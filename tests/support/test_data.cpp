#include "support/test_data.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace rwkvrt::test {

std::string testdata_dir() {
  if (const char* env = std::getenv("RWKVRT_TESTDATA")) return env;
  return RWKVRT_TESTDATA_DEFAULT;
}

std::string testdata_path(const std::string& relative) { return testdata_dir() + "/" + relative; }

namespace {
struct ScratchRoot {
  std::filesystem::path path;
  ScratchRoot() {
    const auto base = std::filesystem::temp_directory_path();
    for (int i = 0;; ++i) {
      path = base / ("rwkvrt-test-" + std::to_string(::getpid()) + "-" + std::to_string(i));
      if (std::filesystem::create_directory(path)) break;
    }
  }
  ~ScratchRoot() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};
}  // namespace

std::string scratch_dir() {
  static ScratchRoot root;
  static int counter = 0;
  const auto dir = root.path / std::to_string(counter++);
  std::filesystem::create_directories(dir);
  return dir.string();
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

void write_file(const std::string& path, const std::string& bytes) {
  write_file(path, std::vector<uint8_t>(bytes.begin(), bytes.end()));
}

}  // namespace rwkvrt::test
