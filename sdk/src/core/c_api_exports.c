/* The shared library's own translation unit: librwkvrt.so is the core archive linked whole, with
 * only the rwkvrt_* symbols of the C ABI exported (see rwkvrt.map). */
#include "rwkvrt/rwkvrt.h"
