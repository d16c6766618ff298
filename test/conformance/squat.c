// Windows only: occupies a kernel object name with an event, as another
// program could, so the runner can check that a lock whose mutex name is
// taken by another kind of object fails with a clear error, not a crash.
//   squat.exe NAME    prints "ready" once the event exists, then waits to be killed
#include <stdio.h>
#include <windows.h>

int wmain(int argc, wchar_t** argv) {
  if (argc != 2) return 2;
  HANDLE e = CreateEventW(NULL, TRUE, FALSE, argv[1]);
  if (e == NULL) return 1;
  printf("ready\n");
  fflush(stdout);
  WaitForSingleObject(e, INFINITE);
  return 0;
}
