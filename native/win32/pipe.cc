// The message endpoint on Windows: a named pipe served by a thread of the
// addon's. Node's own pipe server cannot create the first instance
// exclusively (FILE_FLAG_FIRST_PIPE_INSTANCE), refuse remote clients
// (PIPE_REJECT_REMOTE_CLIENTS), set a DACL, or say which process connected
// (its handle has no descriptor to ask with), so the server side is here:
//
// The thread accepts one client at a time (overlapped ConnectNamedPipe, so
// pipeClose can stop it), asks the kernel for the client's pid
// (GetNamedPipeClientProcessId), and reads its two frames (the format of
// src/messages/frame.ts) within a deadline; a client that sends nothing,
// garbage, an oversized or half a frame is disconnected and the instance
// reused. A complete request is parked under an id and handed to JS through
// a thread-safe function; the thread then creates the next instance at
// once, so later senders queue in the pipe while JS handles this one. JS
// writes the reply with pipeReply(), which closes the parked instance.
//
// What it does not judge: the request's content. src/messages/ parses it.
#include "common.h"

#include <sddl.h>

#include <algorithm>

namespace instance_lock {

struct PipeServer {
  State* state = nullptr;
  uint32_t id = 0;
  std::wstring name;
  PSECURITY_DESCRIPTOR sd = nullptr;  // LocalFree'd when the server goes
  HANDLE next = nullptr;              // the instance the thread accepts on
  HANDLE stop = nullptr;              // manual-reset
  HANDLE thread = nullptr;
  DWORD deadline_ms = 0;
  napi_threadsafe_function tsfn = nullptr;
  CRITICAL_SECTION lock;
  std::map<uint32_t, HANDLE> parked;  // guarded by lock
  uint32_t next_conn = 1;             // the thread's
};

namespace {

constexpr DWORD kMaxPayload = 64 * 1024;
constexpr DWORD kBufferSize = kMaxPayload + 16;
constexpr uint8_t kHello = 1;
constexpr uint8_t kData = 2;

std::map<uint32_t, PipeServer*>& Servers(State* s) { return s->pipes; }

// user scope: the user alone; machine scope: the holder's user in full, any
// interactive or service user on this machine to read and write (not to
// create instances: FILE_APPEND_DATA is FILE_CREATE_PIPE_INSTANCE on a
// pipe), never a network logon.
std::wstring Sddl(const std::wstring& sid, bool machine) {
  std::wstring s = L"D:P(D;;GA;;;NU)(A;;GA;;;" + sid + L")";
  if (machine) s += L"(A;;0x12019B;;;AU)(A;;0x12019B;;;SY)";
  return s;
}

HANDLE CreateInstance(PipeServer* s, bool first, DWORD* err) {
  SECURITY_ATTRIBUTES sa = {sizeof sa, s->sd, FALSE};
  DWORD open = PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED | (first ? FILE_FLAG_FIRST_PIPE_INSTANCE : 0);
  HANDLE h = CreateNamedPipeW(s->name.c_str(), open,
                              PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
                              PIPE_UNLIMITED_INSTANCES, kBufferSize, kBufferSize, 0, &sa);
  if (h == INVALID_HANDLE_VALUE) {
    *err = GetLastError();
    return nullptr;
  }
  return h;
}

// Waits for an overlapped operation on `h`, at most `ms` (INFINITE: no
// limit) and until `stop`: true once it completed with `*n` bytes.
bool Finish(PipeServer* s, HANDLE h, OVERLAPPED* ov, DWORD ms, DWORD* n) {
  HANDLE objs[2] = {s->stop, ov->hEvent};
  DWORD r = WaitForMultipleObjects(2, objs, FALSE, ms);
  if (r != WAIT_OBJECT_0 + 1) {
    CancelIoEx(h, ov);
    GetOverlappedResult(h, ov, n, TRUE);
    return false;
  }
  return GetOverlappedResult(h, ov, n, FALSE) != 0;
}

// Reads exactly `len` bytes before `end` (GetTickCount64).
bool ReadExact(PipeServer* s, HANDLE h, HANDLE ev, char* buf, DWORD len, ULONGLONG end) {
  DWORD got = 0;
  while (got < len) {
    ULONGLONG now = GetTickCount64();
    if (now >= end) return false;
    OVERLAPPED ov = {};
    ov.hEvent = ev;
    ResetEvent(ev);
    DWORD n = 0;
    if (!ReadFile(h, buf + got, len - got, &n, &ov)) {
      if (GetLastError() != ERROR_IO_PENDING) return false;
      if (!Finish(s, h, &ov, static_cast<DWORD>(end - now), &n)) return false;
    } else if (!GetOverlappedResult(h, &ov, &n, FALSE)) {
      return false;
    }
    if (n == 0) return false;
    got += n;
  }
  return true;
}

bool ReadFrame(PipeServer* s, HANDLE h, HANDLE ev, uint8_t type, std::string* out, ULONGLONG end) {
  unsigned char head[5];
  if (!ReadExact(s, h, ev, reinterpret_cast<char*>(head), 5, end)) return false;
  DWORD len = (DWORD{head[0]} << 24) | (DWORD{head[1]} << 16) | (DWORD{head[2]} << 8) | DWORD{head[3]};
  if (head[4] != type || len > kMaxPayload) return false;
  out->resize(len);
  return len == 0 || ReadExact(s, h, ev, &(*out)[0], len, end);
}

struct Delivery {
  uint32_t conn;
  DWORD pid;
  std::string hello;
  std::string data;
};

DWORD WINAPI ServeThread(void* arg) {
  PipeServer* s = static_cast<PipeServer*>(arg);
  HANDLE ev = CreateEventW(nullptr, TRUE, FALSE, nullptr);
  HANDLE pipe = s->next;
  s->next = nullptr;
  while (ev != nullptr && WaitForSingleObject(s->stop, 0) != WAIT_OBJECT_0) {
    if (pipe == nullptr) {
      DWORD err = 0;
      pipe = CreateInstance(s, false, &err);
      // Out of resources for a moment: try again, unless stopped.
      if (pipe == nullptr) {
        WaitForSingleObject(s->stop, 100);
        continue;
      }
    }
    OVERLAPPED ov = {};
    ov.hEvent = ev;
    ResetEvent(ev);
    DWORD n = 0;
    bool connected = ConnectNamedPipe(pipe, &ov) != 0;
    if (!connected) {
      DWORD err = GetLastError();
      if (err == ERROR_PIPE_CONNECTED) connected = true;
      else if (err == ERROR_IO_PENDING) connected = Finish(s, pipe, &ov, INFINITE, &n);
    }
    if (!connected) {
      DisconnectNamedPipe(pipe);
      continue;
    }
    ULONG pid = 0;
    Delivery* d = new Delivery();
    ULONGLONG end = GetTickCount64() + s->deadline_ms;
    if (!GetNamedPipeClientProcessId(pipe, &pid) || pid == 0 || !ReadFrame(s, pipe, ev, kHello, &d->hello, end) ||
        !ReadFrame(s, pipe, ev, kData, &d->data, end)) {
      delete d;
      DisconnectNamedPipe(pipe);
      continue;
    }
    d->pid = pid;
    d->conn = s->next_conn++;
    EnterCriticalSection(&s->lock);
    s->parked[d->conn] = pipe;
    LeaveCriticalSection(&s->lock);
    pipe = nullptr;
    if (napi_call_threadsafe_function(s->tsfn, d, napi_tsfn_blocking) != napi_ok) delete d;
  }
  if (pipe != nullptr) CloseHandle(pipe);
  if (ev != nullptr) CloseHandle(ev);
  napi_release_threadsafe_function(s->tsfn, napi_tsfn_release);
  return 0;
}

void Deliver(napi_env env, napi_value cb, void*, void* data) {
  Delivery* d = static_cast<Delivery*>(data);
  if (env != nullptr && cb != nullptr) {
    napi_value argv[4], undefined;
    napi_create_uint32(env, d->conn, &argv[0]);
    napi_create_uint32(env, d->pid, &argv[1]);
    napi_create_buffer_copy(env, d->hello.size(), d->hello.data(), nullptr, &argv[2]);
    napi_create_buffer_copy(env, d->data.size(), d->data.data(), nullptr, &argv[3]);
    napi_get_undefined(env, &undefined);
    napi_call_function(env, undefined, cb, 4, argv, nullptr);
  }
  delete d;
}

// Stops the thread and joins it, then closes every parked instance (their
// senders see the pipe end without a reply).
void StopServer(PipeServer* s) {
  SetEvent(s->stop);
  WaitForSingleObject(s->thread, INFINITE);
  CloseHandle(s->thread);
  CloseHandle(s->stop);
  for (auto& p : s->parked) CloseHandle(p.second);
  DeleteCriticalSection(&s->lock);
  LocalFree(s->sd);
  delete s;
}

// The environment goes away with the server running (a Worker ends):
// runs before the thread-safe function's own hook (hooks run in reverse
// order), so the thread is done with it first.
void CleanupServer(void* arg) {
  PipeServer* s = static_cast<PipeServer*>(arg);
  Servers(s->state).erase(s->id);
  StopServer(s);
}

PipeServer* Find(Napi::Env env, const Napi::Value& id) {
  auto& servers = Servers(GetState(env));
  auto it = servers.find(id.As<Napi::Number>().Uint32Value());
  return it == servers.end() ? nullptr : it->second;
}

// pipeListen(name, machine, deadlineMs, callback(conn, pid, hello, data)) -> id.
// The first instance is created here, so a name taken by anyone else (a
// squatter, another holder's leftover) fails now, with ERROR_ACCESS_DENIED
// or ERROR_PIPE_BUSY.
Napi::Value PipeListen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString() || !info[1].IsBoolean() || !IsInteger(info[2], 1, 600000) || !info[3].IsFunction())
    return ThrowType(env, "pipeListen(name: string, machine: boolean, deadlineMs, callback: function)");
  std::string name = info[0].As<Napi::String>();
  bool machine = info[1].As<Napi::Boolean>();
  PipeServer* s = new PipeServer();
  s->name = Wide(name);
  s->deadline_ms = info[2].As<Napi::Number>().Uint32Value();
  InitializeCriticalSection(&s->lock);
  DWORD err = 0;
  const char* syscall = "CreateNamedPipeW";
  HANDLE token = nullptr;
  std::wstring sid;
  // The holder's own SID, as the user-scope names use (userSid()).
  if (OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token)) {
    char buf[256];
    DWORD len = 0;
    wchar_t* text = nullptr;
    if (GetTokenInformation(token, TokenUser, buf, sizeof buf, &len) &&
        ConvertSidToStringSidW(reinterpret_cast<TOKEN_USER*>(buf)->User.Sid, &text)) {
      sid = text;
      LocalFree(text);
    }
    CloseHandle(token);
  }
  if (sid.empty()) {
    err = GetLastError();
    syscall = "GetTokenInformation";
  } else if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(Sddl(sid, machine).c_str(), SDDL_REVISION_1, &s->sd,
                                                                   nullptr)) {
    err = GetLastError();
    syscall = "ConvertStringSecurityDescriptorToSecurityDescriptorW";
  } else {
    s->next = CreateInstance(s, true, &err);
  }
  if (s->next != nullptr) {
    s->stop = CreateEventW(nullptr, TRUE, FALSE, nullptr);
    if (s->stop == nullptr) {
      err = GetLastError();
      syscall = "CreateEventW";
    }
  }
  napi_value resource;
  napi_create_string_utf8(env, "instance-lock:messages", NAPI_AUTO_LENGTH, &resource);
  if (err == 0 && napi_create_threadsafe_function(env, info[3], nullptr, resource, 0, 1, nullptr, nullptr, nullptr,
                                                  Deliver, &s->tsfn) != napi_ok) {
    err = ERROR_NOT_ENOUGH_MEMORY;
    syscall = "napi_create_threadsafe_function";
  }
  if (err == 0) {
    // Listening does not keep the process alive; a message being handled does (JS).
    napi_unref_threadsafe_function(env, s->tsfn);
    s->thread = CreateThread(nullptr, 64 * 1024, ServeThread, s, STACK_SIZE_PARAM_IS_A_RESERVATION, nullptr);
    if (s->thread == nullptr) {
      err = GetLastError();
      syscall = "CreateThread";
      napi_release_threadsafe_function(s->tsfn, napi_tsfn_abort);
    }
  }
  if (err != 0) {
    if (s->next != nullptr) CloseHandle(s->next);
    if (s->stop != nullptr) CloseHandle(s->stop);
    DeleteCriticalSection(&s->lock);
    if (s->sd != nullptr) LocalFree(s->sd);
    delete s;
    ThrowSystemError(env, static_cast<int>(err), syscall, name);
    return env.Undefined();
  }
  s->state = GetState(env);
  s->id = s->state->next++;
  Servers(s->state)[s->id] = s;
  napi_add_env_cleanup_hook(env, CleanupServer, s);
  return Napi::Number::New(env, s->id);
}

// pipeReply(id, conn, frame: Buffer): writes the answer to a parked client
// (at most a second: the pipe's buffer holds a whole frame, so only a
// client gone wrong could block it) and closes its instance; its unread
// data stays readable by the client until it closes. false: no such client
// (already answered, or the server closed).
Napi::Value PipeReply(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!IsUint32(info[0]) || !IsUint32(info[1]) || !info[2].IsBuffer())
    return ThrowType(env, "pipeReply(id, conn, frame: Buffer)");
  PipeServer* s = Find(env, info[0]);
  if (s == nullptr) return Napi::Boolean::New(env, false);
  HANDLE pipe = nullptr;
  EnterCriticalSection(&s->lock);
  auto it = s->parked.find(info[1].As<Napi::Number>().Uint32Value());
  if (it != s->parked.end()) {
    pipe = it->second;
    s->parked.erase(it);
  }
  LeaveCriticalSection(&s->lock);
  if (pipe == nullptr) return Napi::Boolean::New(env, false);
  Napi::Buffer<char> frame = info[2].As<Napi::Buffer<char>>();
  OVERLAPPED ov = {};
  ov.hEvent = CreateEventW(nullptr, TRUE, FALSE, nullptr);
  DWORD n = 0;
  if (ov.hEvent != nullptr) {
    if (!WriteFile(pipe, frame.Data(), static_cast<DWORD>(std::min<size_t>(frame.Length(), kBufferSize)), &n, &ov) &&
        GetLastError() == ERROR_IO_PENDING && WaitForSingleObject(ov.hEvent, 1000) != WAIT_OBJECT_0) {
      CancelIoEx(pipe, &ov);
    }
    GetOverlappedResult(pipe, &ov, &n, TRUE);
    CloseHandle(ov.hEvent);
  }
  CloseHandle(pipe);
  return Napi::Boolean::New(env, true);
}

// pipeClose(id): stops accepting, and closes the parked clients. Idempotent.
Napi::Value PipeClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!IsUint32(info[0])) return ThrowType(env, "pipeClose(id)");
  PipeServer* s = Find(env, info[0]);
  if (s != nullptr) {
    Servers(s->state).erase(s->id);
    napi_remove_env_cleanup_hook(env, CleanupServer, s);
    StopServer(s);
  }
  return env.Undefined();
}

// pipeServerPid(name) -> the pid of the process serving the pipe `name`, as
// the kernel reports it, or 0 when nobody serves it now (no such pipe, every
// instance busy). A sender checks it is the lock's holder before it sends.
Napi::Value PipeServerPid(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) return ThrowType(env, "pipeServerPid(name: string)");
  std::wstring name = Wide(info[0].As<Napi::String>());
  HANDLE h = CreateFileW(name.c_str(), GENERIC_READ | GENERIC_WRITE, 0, nullptr, OPEN_EXISTING, 0, nullptr);
  if (h == INVALID_HANDLE_VALUE) return Napi::Number::New(env, 0);
  ULONG pid = 0;
  if (!GetNamedPipeServerProcessId(h, &pid)) pid = 0;
  CloseHandle(h);
  return Napi::Number::New(env, pid);
}

}  // namespace

void RegisterPipe(Napi::Env env, Napi::Object exports) {
  exports.Set("pipeListen", Napi::Function::New(env, PipeListen, "pipeListen"));
  exports.Set("pipeReply", Napi::Function::New(env, PipeReply, "pipeReply"));
  exports.Set("pipeClose", Napi::Function::New(env, PipeClose, "pipeClose"));
  exports.Set("pipeServerPid", Napi::Function::New(env, PipeServerPid, "pipeServerPid"));
}

}  // namespace instance_lock
