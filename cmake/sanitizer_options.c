/* Default sanitizer options, linked into every executable of an RWKVRT_SANITIZE build
 * (cmake/RwkvrtCompilerSettings.cmake): tests, fuzz targets, tools and samples, also when run
 * outside CTest.  Options given at run time (ASAN_OPTIONS, LSAN_OPTIONS, TSAN_OPTIONS,
 * OMP_TOOL_LIBRARIES) still take precedence.  Each sanitizer calls only its own hook; the others
 * are never used.  See docs/SANITIZERS.md. */
#include <stdlib.h>

/* AddressSanitizer, intercept_tls_get_addr=0: up to LLVM 16 and GCC 13 the runtime's
 * __tls_get_addr interceptor takes a dynamic TLS block that happens to start 16 bytes into a page
 * for one with the header of glibc 2.19 and older, and records the two words before it as the
 * block's bounds.  The CPU plugin's thread_local data is dynamic TLS (the plugin is dlopen'ed) and
 * lives in every OpenMP worker, so some runs recorded such garbage and LeakSanitizer's exit-time
 * scan then died with "Tracer caught signal 11" after every test had passed.  Without the
 * interceptor LeakSanitizer still reaches those blocks: glibc allocates them with malloc, from the
 * thread's DTV. */
const char* __asan_default_options(void);
const char* __asan_default_options(void) {
  return "intercept_tls_get_addr=0";
}

/* ThreadSanitizer.  The OpenMP runtime (libomp, also behind oneDNN's GOMP calls) is not
 * instrumented, so ThreadSanitizer cannot see the synchronisation of its fork/join and barriers.
 * Archer, LLVM's OpenMP tool, reports it through ThreadSanitizer's annotations; libomp loads it
 * from OMP_TOOL_LIBRARIES, set here before main (libomp starts later, with the plugin) unless the
 * environment names a tool already.  RWKVRT_ARCHER_LIBRARY is the path CMake found.
 *
 * called_from_lib:libomp.so: libomp's internal locks still race in ThreadSanitizer's view (a
 * worker's pthread_mutex_init against the master's pthread_mutex_lock, both inside libomp, whose
 * own spin-waits order them).  Calls from libomp are not checked; Archer covers its semantics. */
const char* __tsan_default_suppressions(void);
const char* __tsan_default_suppressions(void) {
  return "called_from_lib:libomp.so\n";
}

#ifdef RWKVRT_ARCHER_LIBRARY
__attribute__((constructor)) static void rwkvrt_load_archer(void) {
  setenv("OMP_TOOL_LIBRARIES", RWKVRT_ARCHER_LIBRARY, 0);
}
#endif
