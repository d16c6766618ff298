#ifndef INSTANCE_LOCK_POSIX_RECORD_H_
#define INSTANCE_LOCK_POSIX_RECORD_H_

// The holder record in the lock file.
#include <napi.h>

#include <cstddef>
#include <string>

namespace instance_lock {

class Utf8Arg;

// Holder record: "IL1 <len:8 hex> <fnv1a32:8 hex>\n<json>". It is written at
// offset 0 and never truncated (truncating to 0 and rewriting makes ext4
// flush on close, ~60x the cost of the lock itself); bytes past `len` are
// leftovers of a longer earlier record. The checksum lets a reader that
// races the holder's write reject a torn record instead of believing it.
constexpr size_t kHeaderLen = 22;
constexpr size_t kMaxRecord = 64 * 1024;

int WriteRecord(int fd, char* buf, size_t json_len);
// The record in `arg`, made with kHeaderLen bytes of head room.
int WriteRecord(int fd, Utf8Arg& arg);
bool ReadRecord(int fd, std::string* out);
// The record's JSON text, or null when there is no intact one.
Napi::Value RecordOrNull(Napi::Env env, int fd);

}  // namespace instance_lock

#endif
