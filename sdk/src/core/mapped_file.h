// A read-only memory mapping of a whole file.  Checkpoints are mapped, not read, so a 15 GB model
// costs no copy and only the pages actually used are touched.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace rwkvrt {

class MappedFile {
 public:
  // Maps `path`.  Throws Error(IO) naming the file and the OS error on failure.
  static std::shared_ptr<const MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

}  // namespace rwkvrt
