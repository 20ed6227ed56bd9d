// <immintrin.h> for the AVX-512 files; include it before any other header.  GCC 12's AVX-512
// intrinsics start their results from _mm512_undefined_*(), which its uninitialised-use warnings
// report once inlined (GCC bug 105593, fixed in GCC 13).  The warnings are silenced for the
// header's own lines only, so they still apply to our code.  Clang has no such false positive and
// no -Wmaybe-uninitialized (naming it would be an unknown-warning error under -Werror).
#pragma once

#if !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#if !defined(__clang__)
#pragma GCC diagnostic pop
#endif
