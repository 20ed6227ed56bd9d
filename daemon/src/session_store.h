// Persistent sessions: one file per session in the state directory, written atomically, plus an
// in-memory index with the limits and the per-session lock every operation takes.
//
// File "<id>.session" (little-endian):
//   "RWKVRTDS"  u32 format version (1)  u32 n  n bytes of JSON metadata
//   u64 m  m bytes of state blob (rwkvrt_session_save_state)  u32 CRC-32 of all bytes before it
// A file is written to a temporary name, fsync'ed, renamed over the old one and the directory
// fsync'ed, so a crash at any moment leaves either the old or the new file, never a torn one.
#pragma once

#include <grpcpp/support/status.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace rwkvrtd {

struct SessionMeta {
  std::string id;
  std::string model;
  int64_t created_ms = 0;
  int64_t last_used_ms = 0;
  uint32_t turns = 0;    // completed generations
  uint64_t tokens = 0;   // tokens fed since creation or the last import
};

// What listings report about a session.
struct SessionStatus {
  SessionMeta meta;
  uint64_t file_bytes = 0;
  bool resident = false;
  bool generating = false;
};

int64_t unix_millis_now();

// A session id: "s-" and 32 hex digits, from the system's random source.
std::string new_session_id();
// True if `id` has the shape of a session id (guards file names against path tricks).
bool is_valid_session_id(const std::string& id);

// Thread-safe.  File I/O for one session is only done by the holder of that session's lock
// (acquire/reserve), so files of one session are never written concurrently.
class SessionStore {
 public:
  SessionStore(std::string dir, uint32_t max_sessions, uint64_t max_bytes);

  // Creates the directory (mode 0700) if needed, deletes temporary files a crash left behind and
  // indexes every session file (reading its header).  A damaged file is renamed to
  // "<id>.session.damaged" and reported in the log, never deleted.  Throws std::runtime_error if
  // the directory is unusable.
  void open();

  // Registers a new session id, locked by the caller and invisible to listings until its first
  // persist().  RESOURCE_EXHAUSTED when max_sessions or max_bytes (counting `expected_bytes`)
  // would be exceeded.
  grpc::Status reserve(const std::string& model, uint64_t expected_bytes, SessionMeta* out_meta);
  // Drops a reservation whose session never got persisted (creation failed).
  void abandon(const std::string& id);

  // Locks session `id` for one operation by `holder` (a request id, or an operation name).
  // NOT_FOUND for an unknown session; FAILED_PRECONDITION if another operation holds it.
  grpc::Status acquire(const std::string& id, const std::string& holder, SessionMeta* out_meta);
  void release(const std::string& id);

  // The holder of the lock of `id`, if it is locked.
  std::optional<std::string> holder(const std::string& id) const;

  // Writes the session file atomically (see above) and updates the index.  The caller holds the
  // session.  INTERNAL (with the errno text) if the file cannot be written; the old file stays.
  grpc::Status persist(const SessionMeta& meta, const std::vector<uint8_t>& blob);

  // Reads a session file and checks it.  DATA_LOSS if it is damaged.
  grpc::Status load(const std::string& id, SessionMeta* out_meta, std::vector<uint8_t>* out_blob) const;

  // Deletes the session's file and index entry.  The caller holds the session.
  grpc::Status remove(const std::string& id);

  void set_resident(const std::string& id, bool resident);

  std::optional<SessionStatus> status(const std::string& id) const;
  std::vector<SessionStatus> list(const std::string& model) const;  // model "" = all

  size_t count() const;
  size_t resident_count() const;
  uint64_t bytes() const;
  const std::string& dir() const { return dir_; }

 private:
  struct Entry {
    SessionMeta meta;
    uint64_t file_bytes = 0;
    bool persisted = false;     // a file exists
    uint64_t reserved_bytes = 0;  // counted against max_bytes until the first persist
    bool resident = false;
    std::string holder;         // "" = unlocked
  };

  std::string path_of(const std::string& id) const;

  const std::string dir_;
  const uint32_t max_sessions_;
  const uint64_t max_bytes_;
  mutable std::mutex mutex_;
  std::map<std::string, Entry> entries_;
  uint64_t total_bytes_ = 0;  // file bytes plus reservations
};

}  // namespace rwkvrtd
