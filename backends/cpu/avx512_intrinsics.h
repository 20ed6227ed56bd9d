// <immintrin.h> for the AVX-512 files; include it before any other header.  GCC 12's AVX-512
// intrinsics start their results from _mm512_undefined_*(), which its uninitialised-use warnings
// report once inlined (GCC bug 105593, fixed in GCC 13).  The warnings are silenced for the
// header's own lines only, so they still apply to our code.
#pragma once

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
