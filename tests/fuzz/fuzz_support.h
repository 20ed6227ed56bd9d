// Pieces shared by the libFuzzer targets and the seed generator.
//
// A finding is anything other than rwkvrt::Error leaving a parser: a crash, a sanitizer report, an
// exception of another type, a hang, an allocation past -malloc_limit_mb, or a violation of the
// result contracts checked here.  Contract violations abort with a message naming the contract,
// which libFuzzer records as a crash with its input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "loaders/tensor_set.h"
#include "model/synthetic_model.h"

namespace rwkvrt::fuzz {

// An anonymous in-memory file (memfd) that readers taking a path open as /proc/self/fd/<n>.  One
// per process: libFuzzer runs one input at a time, and several fuzzer processes never share it, so
// parallel jobs and CTest runs cannot clobber each other's input.  Nothing is left on disk.
class MemoryFile {
 public:
  MemoryFile();
  ~MemoryFile();
  MemoryFile(const MemoryFile&) = delete;
  MemoryFile& operator=(const MemoryFile&) = delete;

  // Replaces the file's content with `size` bytes at `data` and returns its path.  Callers must
  // have released every mapping of the previous content (readers' results own their mappings).
  const std::string& write(const uint8_t* data, size_t size);
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  std::string path_;
};

// The process's input file, created on first use.  Failing to create it aborts: that is a broken
// harness, not a finding.
MemoryFile& input_file();

// Checks the TensorSet contract every checkpoint reader promises and that model/ relies on, and
// reads every byte of every tensor so that a range pointing outside the file mapping (or outside a
// buffer the reader allocated) faults or trips ASan here rather than later.  Contract: names are
// unique and found by find(); every dimension is >= 0; nbytes is exactly the bytes the shape and
// dtype need (numel / block values × block bytes, numel a multiple of the block for quantised
// types, last dimension too); data is non-null when nbytes > 0.  Aborts on a violation.
void check_tensor_set(const TensorSet& set, const char* reader);

// Aborts with "contract violated (<where>): <what>"; for the targets' own checks.
[[noreturn]] void contract_violation(const char* where, const std::string& what);

// Makes the CRC-32 fields of a zip archive's entries match their data, so that mutated pickles and
// byteorder entries get past the readers' checksum checks and reach the code behind them (a fuzzer
// cannot fix a CRC by mutation).  Follows the structure leniently: the end-of-central-directory
// record (zip64 when a locator precedes it), then every central directory entry and its local
// header, skipping whatever lies outside `bytes`.  Stored entries get the CRC of their data,
// deflated ones of their inflated data (up to 16 MiB).  The central entry's CRC is always
// rewritten; the local header's only when it carries one (no data-descriptor flag).  Returns
// whether any byte changed.
bool repair_zip_crcs(std::vector<uint8_t>& bytes);

// The tiny RWKV-7 model the state-blob target loads blobs into and whose blobs seed it.  The seed
// generator and the target must build it identically, or every seed fails the fingerprint check.
SyntheticShape tiny_v7_shape();

}  // namespace rwkvrt::fuzz
