#include <zlib.h>

// deflateInit2 and inflateInit2 are macros that Swift cannot call; these wrap them.
static inline int kiln_deflateInit2(z_streamp strm, int level, int method, int windowBits, int memLevel,
                                    int strategy) {
    return deflateInit2(strm, level, method, windowBits, memLevel, strategy);
}

static inline int kiln_inflateInit2(z_streamp strm, int windowBits) {
    return inflateInit2(strm, windowBits);
}
