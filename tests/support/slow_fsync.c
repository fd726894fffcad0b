/* slow_fsync: an LD_PRELOAD library for tests that makes the disk slow. Every fsync and
 * fdatasync first sleeps for the number of milliseconds in the file named by
 * PARLEY_TEST_FSYNC_DELAY_FILE (read at each call, so a test turns the delay on and off while
 * the process runs; no file or no number: no delay), then does the real call. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static long delay_ms(void) {
  const char* path = getenv("PARLEY_TEST_FSYNC_DELAY_FILE");
  if (path == NULL) return 0;
  FILE* f = fopen(path, "re");
  if (f == NULL) return 0;
  long ms = 0;
  if (fscanf(f, "%ld", &ms) != 1) ms = 0;
  fclose(f);
  return ms > 0 ? ms : 0;
}

static void slow_down(void) {
  const long ms = delay_ms();
  if (ms == 0) return;
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

int fsync(int fd) {
  static int (*real)(int) = NULL;
  if (real == NULL) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
  slow_down();
  return real(fd);
}

int fdatasync(int fd) {
  static int (*real)(int) = NULL;
  if (real == NULL) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
  slow_down();
  return real(fd);
}
