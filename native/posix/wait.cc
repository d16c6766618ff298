#include "wait.h"

#include "common.h"

#if IL_LINUX
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <uv.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <vector>

#include "env.h"
#include "lockfile.h"
#include "record.h"

namespace instance_lock {

namespace {

// Waiting: a thread of our own (never one of libuv's pool) blocks in
// flock(LOCK_EX), so the kernel itself hands the lock over the moment the
// holder releases it or dies, with no polling and no event to miss. The
// thread then does what the loop would do after a flock (check the file,
// re-check that the descriptor still names it, write the holder record
// stamped with the time, set the inspection indicator) and reports. A
// process woken from idle runs slowly for a while, so the less its loop has
// to do, the sooner the caller holds the lock.
//
// Threads are kept for the next wait (up to kMaxIdle, parked on a condition
// variable, costing nothing): creating one per wait, and its exit, cost more
// than the rest of a handoff. Each environment (thread running JS) has one
// async handle and one callback for all its waits; ended waits queue for it.
//
// Cancelling (a timeout, an abort, the environment ending) is synchronous
// and never unwinds the thread: the canceller sets the wait's flag and sends
// the thread a real-time signal whose handler, only while the thread is
// "armed" around its flock call, jumps out of it. Every moment the signal
// can land is handled: before the flag check (the check sees it), between
// the check and the call, in the call (EINTR), or just as flock returned 0
// (then the lock was ours and goes with the descriptor). The canceller waits
// until the thread has let go of the wait (microseconds: the thread is never
// anywhere slow), then unlocks and closes the descriptor itself. So a wait
// that settled as timed out or aborted holds nothing afterwards, and no
// thread works for an environment that is gone. Asynchronous thread
// cancellation is not used: a cancel request delivered after a thread
// disabled cancellation can still unwind it in some C libraries.
enum WaitState { kWaitAcquired = 0, kWaitStale = 2, kWaitFailed = 3 };

struct BlockingWait;

struct WaitThread {
  pthread_t thread{};
  pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
  BlockingWait* job = nullptr;  // guarded by g_mutex
  sigjmp_buf jump;
  volatile sig_atomic_t armed = 0;  // this thread only, and its signal handler
};

pthread_mutex_t g_mutex = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t g_let_go = PTHREAD_COND_INITIALIZER;  // a thread let go of a cancelled wait
std::vector<WaitThread*> g_idle;                     // guarded by g_mutex
constexpr size_t kMaxIdle = 4;
int g_wake_signal = 0;  // guarded by g_mutex; set once per process

// The waiting thread running here, for the signal handler. initial-exec, so
// the handler never allocates (the general-dynamic model of a dlopen'ed
// library may, on a thread's first access).
__thread WaitThread* t_self __attribute__((tls_model("initial-exec"))) = nullptr;

void OnWakeSignal(int) {
  WaitThread* t = t_self;
  if (t != nullptr && t->armed) {
    t->armed = 0;
    siglongjmp(t->jump, 1);
  }
}

// Picks a real-time signal nothing in the process uses (default action, no
// handler) and installs the wake-up handler on it, once per process; 0 if
// every one is taken. No SA_RESTART: an interrupted flock returns EINTR.
//
// From then on the addon stays loaded for the life of the process: Node
// unloads an addon when the last environment that loaded it ends (a Worker,
// where the main thread never loaded it), which would leave the handler and
// the parked threads pointing into unmapped code.
int WakeSignal() {
  if (g_wake_signal != 0) return g_wake_signal;
  Dl_info self;
  if (dladdr(reinterpret_cast<void*>(&OnWakeSignal), &self) == 0 || self.dli_fname == nullptr ||
      dlopen(self.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE) == nullptr)
    return 0;
  for (int sig = SIGRTMAX; sig >= SIGRTMIN; sig--) {
    struct sigaction old;
    if (sigaction(sig, nullptr, &old) != 0 || (old.sa_flags & SA_SIGINFO) != 0 || old.sa_handler != SIG_DFL) continue;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = OnWakeSignal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, nullptr) == 0) {
      g_wake_signal = sig;
      break;
    }
  }
  return g_wake_signal;
}

struct BlockingWait {
  uint32_t id = 0;
  int fd = -1;
  int dirfd = AT_FDCWD;  // our own duplicate, closed at the end
  std::string name;
  bool writable = false;
  mode_t mode = 0;
  int checks = 0;
  // The holder record, header room in front, with kStampPlaceholder where
  // the acquisition time goes; empty for none.
  std::string record;
  size_t stamp_at = 0;
  Waits* owner = nullptr;
  // Guarded by g_mutex: the thread working on it (from dispatch until it
  // lets go), whether it is done with it, whether it reported, and whether
  // it was cancelled (also in `stop`, which the thread reads unlocked).
  WaitThread* runner = nullptr;
  bool done = false;
  bool reported = false;
  bool cancel = false;
  bool orphaned = false;  // the canceller gave up waiting: the thread cleans up
  std::atomic<bool> stop{false};
  // The outcome, written by the thread before it lets go.
  int state = -1;
  int err = 0;
  const char* syscall = "flock";
  double at = 0;           // kWaitAcquired: ms since the epoch
  bool cancelled = false;  // loop thread only
};

}  // namespace

// The waits of one environment. `ended` is filled by the threads and
// emptied by the loop; a thread reports with the mutex held, so once a wait
// is in `ended` its thread has finished with the environment's handle too.
struct Waits {
  napi_env env = nullptr;
  Env* home = nullptr;
  bool closing = false;  // the environment ends: no more callbacks
  uv_async_t* async = nullptr;
  napi_ref callback = nullptr;
  napi_ref resource = nullptr;
  napi_async_context context = nullptr;
  std::vector<BlockingWait*> active;  // loop thread only
  size_t referenced = 0;              // active waits not cancelled
  uint32_t next_id = 1;
  pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
  std::vector<BlockingWait*> ended;  // guarded by mutex
};

namespace {

void Report(BlockingWait* w) {
  Waits* waits = w->owner;
  pthread_mutex_lock(&waits->mutex);
  waits->ended.push_back(w);
  uv_async_send(waits->async);
  pthread_mutex_unlock(&waits->mutex);
}

// The time as src/core/record.ts stamps it, 24 characters: 1970-01-01T00:00:00.000Z.
const char kStampPlaceholder[] = "\"startedAt\":\"1970-01-01T00:00:00.000Z\"";
constexpr size_t kStampOffset = 13;  // of the time within the placeholder

double StampNow(char* out) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  time_t secs = ts.tv_sec;
  int ms = static_cast<int>(ts.tv_nsec / 1000000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[64];
  snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
           tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  memcpy(out, buf, 24);
  return static_cast<double>(secs) * 1000 + ms;
}

// After flock(LOCK_EX) returned 0: as LockFd and Publish after a
// successful flock.
void Acquired(BlockingWait* w) {
  int state = VerifyLocked(w->fd, w->dirfd, w->name.c_str(), w->mode, w->checks, &w->err, &w->syscall);
  if (state < 0) {
    w->state = kWaitFailed;
    return;
  }
  if (state == kStale) {
    w->state = kWaitStale;
    return;
  }
  char* stamp = w->record.empty() ? nullptr : &w->record[kHeaderLen + w->stamp_at + kStampOffset];
  char ignored[24];
  w->at = StampNow(stamp != nullptr ? stamp : ignored);
  if (stamp != nullptr && w->writable) WriteRecord(w->fd, &w->record[0], w->record.size() - kHeaderLen);
  SetIndicator(w->fd, w->writable);
  w->state = kWaitAcquired;
}

// Blocks in flock(LOCK_EX) on the wait's descriptor: 0 once it is locked,
// an errno, or -1 when the wait was cancelled (the lock may then be held:
// the canceller drops it with the descriptor).
int BlockInFlock(WaitThread* t, BlockingWait* w) {
  for (;;) {
    // Nothing here is modified between sigsetjmp and the jump back.
    if (sigsetjmp(t->jump, 1) != 0) {
      if (w->stop.load()) return -1;
      continue;  // a wake-up meant for an earlier wait: wait on
    }
    t->armed = 1;
    if (w->stop.load()) {
      t->armed = 0;
      return -1;
    }
    int r = flock(w->fd, LOCK_EX);
    int err = errno;
    t->armed = 0;
    if (r == 0) return 0;
    if (err != EINTR) return err;
  }
}

// One wait, on the thread `t`. Returns whether the thread may be reused.
bool RunWait(WaitThread* t, BlockingWait* w) {
  int r = BlockInFlock(t, w);
  if (r == 0 && !w->stop.load()) {
    Acquired(w);
  } else if (r > 0) {
    w->err = r;
    w->state = kWaitFailed;
  }
  pthread_mutex_lock(&g_mutex);
  t->job = nullptr;
  w->runner = nullptr;
  w->done = true;
  if (w->orphaned) {
    // Nobody waits for it any more: drop what it may hold, and free it.
    ReleaseFd(w->fd);
    if (w->dirfd != AT_FDCWD) close(w->dirfd);
    delete w;
  } else if (w->cancel) {
    pthread_cond_broadcast(&g_let_go);
  } else {
    // The last touch of `w` and of its environment: once reported, the
    // loop may free it.
    w->reported = true;
    Report(w);
  }
  bool keep = g_idle.size() < kMaxIdle;
  if (keep) g_idle.push_back(t);
  pthread_mutex_unlock(&g_mutex);
  return keep;
}

void* WaitThreadMain(void* arg) {
  auto* t = static_cast<WaitThread*>(arg);
  t_self = t;
  // Named for ps -L, top -H and /proc/<pid>/task/*/comm.
  prctl(PR_SET_NAME, "instance-lock");
  // Created with every signal blocked, so the process's signals go to its
  // other threads; only the wake-up signal reaches this one.
  sigset_t set;
  sigfillset(&set);
  pthread_mutex_lock(&g_mutex);
  sigdelset(&set, g_wake_signal);
  pthread_sigmask(SIG_SETMASK, &set, nullptr);
  for (;;) {
    while (t->job == nullptr) pthread_cond_wait(&t->wake, &g_mutex);
    BlockingWait* w = t->job;
    pthread_mutex_unlock(&g_mutex);
    if (!RunWait(t, w)) break;
    pthread_mutex_lock(&g_mutex);
  }
  pthread_cond_destroy(&t->wake);
  delete t;
  return nullptr;
}

// Hands `w` to a parked thread, or to a new one. 0 or an errno. g_mutex held.
int Dispatch(BlockingWait* w) {
  if (!g_idle.empty()) {
    WaitThread* t = g_idle.back();
    g_idle.pop_back();
    t->job = w;
    w->runner = t;
    pthread_cond_signal(&t->wake);
    return 0;
  }
  auto* t = new WaitThread();
  t->job = w;
  w->runner = t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  // It runs flock, a few more calls and the signal handler.
  pthread_attr_setstacksize(&attr, 256 * 1024);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int err = pthread_create(&t->thread, &attr, WaitThreadMain, t);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  pthread_attr_destroy(&attr);
  if (err != 0) {
    w->runner = nullptr;
    delete t;
  }
  return err;
}

// A pending wait keeps the process alive, as a timer does; a cancelled one
// does not.
void Unreference(Waits* waits) {
  if (--waits->referenced == 0) uv_unref(reinterpret_cast<uv_handle_t*>(waits->async));
}

void Detach(BlockingWait* w) {
  auto& active = w->owner->active;
  for (size_t i = 0; i < active.size(); i++) {
    if (active[i] == w) {
      active[i] = active.back();
      active.pop_back();
      break;
    }
  }
}

// Lets go of a wait that no thread will touch again.
void Finish(BlockingWait* w) {
  Detach(w);
  if (w->dirfd != AT_FDCWD) close(w->dirfd);
  delete w;
}

// How long a canceller waits for the thread, resending the signal every
// millisecond: the first one normally ends the wait within microseconds,
// but another library could have replaced the handler with one that
// restarts flock. Past that the wait is left to its thread, which drops
// the lock and frees it whenever flock returns: never a hang.
constexpr int kCancelTries = 1000;

// Ends the wait now: when this returns its thread has let go of it, and its
// descriptor (with the lock, if the thread got it meanwhile) is unlocked
// and closed. A wait whose report is still queued is freed by the loop.
void Cancel(Env* env, BlockingWait* w) {
  w->cancelled = true;
  Unreference(w->owner);
  pthread_mutex_lock(&g_mutex);
  w->cancel = true;
  w->stop.store(true);
  for (int i = 0; !w->done; i++) {
    if (i == kCancelTries) {
      w->orphaned = true;
      break;
    }
    pthread_kill(w->runner->thread, g_wake_signal);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += 1000000;
    if (until.tv_nsec >= 1000000000) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&g_let_go, &g_mutex, &until);
  }
  bool orphaned = w->orphaned;
  bool queued = w->reported;
  pthread_mutex_unlock(&g_mutex);
  Untrack(env, w->fd);
  if (orphaned) {
    Detach(w);
    return;
  }
  ReleaseFd(w->fd);
  w->fd = -1;
  if (!queued) Finish(w);
}

// Runs from the libuv loop, also while the environment is being torn down,
// when calling into JS is no longer possible: plain Node-API calls with their
// status checked, so a failure is a quiet return and never an abort.
// callback(id, state, value, syscall) for each ended wait not cancelled:
// kWaitAcquired with the time, kWaitStale, or kWaitFailed with errno and
// syscall.
void OnWaitsEnded(uv_async_t* handle) {
  auto* waits = static_cast<Waits*>(handle->data);
  if (waits->closing) return;
  std::vector<BlockingWait*> ended;
  pthread_mutex_lock(&waits->mutex);
  ended.swap(waits->ended);
  pthread_mutex_unlock(&waits->mutex);
  napi_env env = waits->env;
  for (BlockingWait* w : ended) {
    if (w->cancelled) {
      Finish(w);
      continue;
    }
    uint32_t id = w->id;
    int state = w->state;
    double value = state == kWaitAcquired ? w->at : w->err;
    const char* syscall = w->syscall;
    Unreference(waits);
    Finish(w);
    napi_handle_scope scope;
    if (napi_open_handle_scope(env, &scope) != napi_ok) continue;
    napi_value fn, resource, argv[4], ret;
    bool ok = napi_get_reference_value(env, waits->callback, &fn) == napi_ok &&
              napi_get_reference_value(env, waits->resource, &resource) == napi_ok &&
              napi_create_uint32(env, id, &argv[0]) == napi_ok && napi_create_int32(env, state, &argv[1]) == napi_ok &&
              napi_create_double(env, value, &argv[2]) == napi_ok &&
              napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &argv[3]) == napi_ok;
    // MakeCallback drains the microtask and nextTick queues afterwards, as
    // any libuv-driven call into JS must.
    napi_status status = ok ? napi_make_callback(env, waits->context, resource, fn, 4, argv, &ret) : napi_ok;
    if (status == napi_pending_exception) {
      napi_value err;
      if (napi_get_and_clear_last_exception(env, &err) == napi_ok) napi_fatal_exception(env, err);
    }
    napi_close_handle_scope(env, scope);
  }
}

// The environment ends: cancel every wait (each returns once its thread has
// let go), and free what the loop would have.
void StopWaits(Env* env) {
  Waits* waits = env->waits;
  // From the end: Cancel may remove the wait it ends, putting the last one
  // (already seen) in its place.
  for (size_t i = waits->active.size(); i-- > 0;) {
    BlockingWait* w = waits->active[i];
    if (!w->cancelled) Cancel(env, w);
  }
  OnWaitsEnded(waits->async);  // every wait is cancelled: nothing is called
}

// waitInit(callback) -> whether waits can block on a thread of ours: this
// environment's callback for ended waits, and its async handle. Once; later
// calls keep the first callback.
Napi::Value WaitInit(const Napi::CallbackInfo& info) {
  Napi::Env napi_env_ = info.Env();
  Env* env = EnvOf(napi_env_);
  if (!info[0].IsFunction()) return ThrowType(napi_env_, "waitInit(callback: function)");
  if (env->waits != nullptr) return Napi::Boolean::New(napi_env_, true);
  pthread_mutex_lock(&g_mutex);
  int sig = WakeSignal();
  pthread_mutex_unlock(&g_mutex);
  if (sig == 0) return Napi::Boolean::New(napi_env_, false);
  auto* waits = new Waits();
  waits->env = napi_env_;
  waits->home = env;
  napi_create_reference(napi_env_, info[0], 1, &waits->callback);
  napi_value resource;
  napi_create_object(napi_env_, &resource);
  napi_create_reference(napi_env_, resource, 1, &waits->resource);
  napi_async_init(napi_env_, resource, Napi::String::New(napi_env_, "instance-lock:wait"), &waits->context);
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(napi_env_, &loop);
  waits->async = new uv_async_t();
  uv_async_init(loop, waits->async, OnWaitsEnded);
  waits->async->data = waits;
  uv_unref(reinterpret_cast<uv_handle_t*>(waits->async));
  env->waits = waits;
  // glibc sets up the time zone (reads /etc/localtime) at the first
  // gmtime_r of a process, even for UTC: here, not on a waiting thread
  // between getting the lock and reporting it (StampNow).
  tzset();
  return Napi::Boolean::New(napi_env_, true);
}

// waitStart(fd, dirfd, name, writable, mode, checks, record|null) -> id.
// A thread blocks in flock(fd, LOCK_EX), then checks and verifies the lock
// and writes `record` (made for an acquisition at time 0: its startedAt is
// replaced by the time of the acquisition) as lock() does, and the callback
// given to waitInit is called with the id. Until then the pending wait keeps
// the process alive, as a timer does.
Napi::Value WaitStart(const Napi::CallbackInfo& info) {
  Napi::Env napi_env_ = info.Env();
  Env* env = EnvOf(napi_env_);
  Waits* waits = env->waits;
  if (waits == nullptr) return ThrowType(napi_env_, "waitStart before waitInit");
  if (!IsFd(info[0]) || !IsDirFd(info[1]) || !info[2].IsString() || !info[3].IsBoolean() || !IsMode(info[4]) ||
      !IsChecks(info[5]) || !IsStringOrNull(info[6]))
    return ThrowType(napi_env_,
                     "waitStart(fd, dirfd, name: string, writable: boolean, mode, checks, record: string|null)");
  auto* w = new BlockingWait();
  w->fd = info[0].As<Napi::Number>().Int32Value();
  int dirfd = info[1].As<Napi::Number>().Int32Value();
  {
    Utf8Arg name(napi_env_, info[2]);
    if (!name.ok()) {
      delete w;
      return napi_env_.Undefined();
    }
    w->name = name.str();
  }
  w->writable = info[3].As<Napi::Boolean>();
  w->mode = info[4].As<Napi::Number>().Uint32Value();
  w->checks = info[5].As<Napi::Number>().Int32Value();
  if (info[6].IsString()) {
    Utf8Arg record(napi_env_, info[6], kHeaderLen);
    if (!record.ok()) {
      delete w;
      return napi_env_.Undefined();
    }
    const char* json = record.c_str();
    const char* at =
        static_cast<const char*>(memmem(json, record.size(), kStampPlaceholder, sizeof kStampPlaceholder - 1));
    if (at != nullptr) {
      w->record.assign(record.base(), kHeaderLen + record.size());
      w->stamp_at = static_cast<size_t>(at - json);
    }
  }
  if (dirfd != AT_FDCWD) {
    w->dirfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
    if (w->dirfd < 0) {
      int err = errno;
      delete w;
      ThrowSystemError(napi_env_, err, "fcntl", "");
      return napi_env_.Undefined();
    }
  }
  w->owner = waits;
  w->id = waits->next_id++;
  if (waits->next_id == 0) waits->next_id = 1;
  pthread_mutex_lock(&g_mutex);
  int err = Dispatch(w);
  pthread_mutex_unlock(&g_mutex);
  if (err != 0) {
    if (w->dirfd != AT_FDCWD) close(w->dirfd);
    delete w;
    ThrowSystemError(napi_env_, err, "pthread_create", "");
    return napi_env_.Undefined();
  }
  waits->active.push_back(w);
  if (waits->referenced++ == 0) uv_ref(reinterpret_cast<uv_handle_t*>(waits->async));
  return Napi::Number::New(napi_env_, w->id);
}

// waitCancel(id): ends the wait without calling back. When it returns, the
// wait's thread has let go of it and its descriptor is unlocked and closed
// (dropping the lock if the thread got it meanwhile); nothing of it keeps
// the process alive. Only for a wait whose callback has not run.
Napi::Value WaitCancel(const Napi::CallbackInfo& info) {
  Napi::Env napi_env_ = info.Env();
  Env* env = EnvOf(napi_env_);
  if (!IsUint32(info[0])) return ThrowType(napi_env_, "waitCancel(id)");
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  if (env->waits != nullptr) {
    for (BlockingWait* w : env->waits->active) {
      if (w->id == id && !w->cancelled) {
        Cancel(env, w);
        break;
      }
    }
  }
  return napi_env_.Undefined();
}
void OnAsyncClosed(uv_handle_t* handle) {
  auto* waits = static_cast<Waits*>(handle->data);
  Env* env = waits->home;
  delete reinterpret_cast<uv_async_t*>(handle);
  pthread_mutex_destroy(&waits->mutex);
  delete waits;
  napi_remove_async_cleanup_hook(env->cleanup);
  delete env;
}

}  // namespace

void RegisterWaits(Napi::Env env, Napi::Object exports) {
  exports.Set("waitInit", Napi::Function::New(env, WaitInit, "waitInit"));
  exports.Set("waitStart", Napi::Function::New(env, WaitStart, "waitStart"));
  exports.Set("waitCancel", Napi::Function::New(env, WaitCancel, "waitCancel"));
}

void EndWaits(Env* env) {
  Waits* waits = env->waits;
  if (waits != nullptr) {
    StopWaits(env);
    napi_async_destroy(waits->env, waits->context);
    napi_delete_reference(waits->env, waits->callback);
    napi_delete_reference(waits->env, waits->resource);
  }
}

bool CloseWaits(Env* env) {
  Waits* waits = env->waits;
  if (waits == nullptr) return false;
  waits->closing = true;
  uv_close(reinterpret_cast<uv_handle_t*>(waits->async), OnAsyncClosed);
  return true;
}

}  // namespace instance_lock
#endif
