// The holder record: its header, writing it in one pwrite, reading it back.
#include "record.h"

#include <errno.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "common.h"

namespace instance_lock {

namespace {

uint32_t Fnv1a(const char* p, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) {
    h ^= static_cast<unsigned char>(p[i]);
    h *= 16777619u;
  }
  return h;
}

// Eight lowercase hex digits, as "%08x" would print them (snprintf is a
// measurable part of an acquisition).
void Hex8(char* out, uint32_t v) {
  static const char kDigits[] = "0123456789abcdef";
  for (int i = 7; i >= 0; i--, v >>= 4) out[i] = kDigits[v & 0xf];
}

}  // namespace

// Writes the record whose JSON text, `json_len` bytes, follows kHeaderLen
// bytes of head room at `buf`, which the header fills.
int WriteRecord(int fd, char* buf, size_t json_len) {
  memcpy(buf, "IL1 ", 4);
  Hex8(&buf[4], static_cast<uint32_t>(json_len));
  buf[12] = ' ';
  Hex8(&buf[13], Fnv1a(buf + kHeaderLen, json_len));
  buf[21] = '\n';
  size_t total = kHeaderLen + json_len;
  size_t off = 0;
  while (off < total) {
    ssize_t n = pwrite(fd, buf + off, total - off, static_cast<off_t>(off));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    off += static_cast<size_t>(n);
  }
  return 0;
}

int WriteRecord(int fd, Utf8Arg& arg) { return WriteRecord(fd, arg.base(), arg.size()); }

namespace {

bool ParseHex8(const char* p, uint32_t* out) {
  uint32_t v = 0;
  for (int i = 0; i < 8; i++) {
    char c = p[i];
    uint32_t d;
    if (c >= '0' && c <= '9') d = static_cast<uint32_t>(c - '0');
    else if (c >= 'a' && c <= 'f') d = static_cast<uint32_t>(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') d = static_cast<uint32_t>(c - 'A' + 10);
    else return false;
    v = v << 4 | d;
  }
  *out = v;
  return true;
}

ssize_t PreadFull(int fd, char* buf, size_t len, off_t off) {
  size_t got = 0;
  while (got < len) {
    ssize_t n = pread(fd, buf + got, len - got, off + static_cast<off_t>(got));
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  return static_cast<ssize_t>(got);
}

// Returns true and the JSON text if a complete, intact record is there. One
// pread for a record that fits the buffer: on a regular file a short read
// means the end of the file, so reading on to see 0 would only cost a call.
bool ReadRecordOnce(int fd, std::string* out) {
  char buf[4096];
  ssize_t n;
  do n = pread(fd, buf, sizeof buf, 0);
  while (n < 0 && errno == EINTR);
  if (n < static_cast<ssize_t>(kHeaderLen) || memcmp(buf, "IL1 ", 4) != 0 || buf[12] != ' ' || buf[21] != '\n')
    return false;
  uint32_t len = 0, sum = 0;
  if (!ParseHex8(&buf[4], &len) || !ParseHex8(&buf[13], &sum) || len > kMaxRecord) return false;
  out->assign(buf + kHeaderLen, std::min<size_t>(len, static_cast<size_t>(n) - kHeaderLen));
  if (out->size() < len) {
    if (n < static_cast<ssize_t>(sizeof buf)) return false;  // shorter than its header says
    size_t have = out->size();
    out->resize(len);
    ssize_t m = PreadFull(fd, &(*out)[have], len - have, static_cast<off_t>(kHeaderLen + have));
    if (m != static_cast<ssize_t>(len - have)) return false;
  }
  return Fnv1a(out->data(), out->size()) == sum;
}

}  // namespace

// A reader can land in the middle of the holder's pwrite; a torn record fails
// its checksum and is read again.
bool ReadRecord(int fd, std::string* out) {
  for (int i = 0; i < 3; i++) {
    if (ReadRecordOnce(fd, out)) return true;
  }
  return false;
}

Napi::Value RecordOrNull(Napi::Env env, int fd) {
  std::string json;
  if (ReadRecord(fd, &json)) return Napi::String::New(env, json);
  return env.Null();
}

}  // namespace instance_lock
