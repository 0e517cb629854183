import KilnSupport
import Testing

/// One cache folder for all of kiln: packages, builder guests, bases and the KVM record follow the
/// same variables (the builder guest's cache used to ignore XDG_CACHE_HOME).
struct KilnCacheTests {
    @Test func kilnCacheThenXDGThenHome() {
        #expect(KilnCache.root(environment: ["KILN_CACHE": "/c", "XDG_CACHE_HOME": "/x", "HOME": "/h"]) == "/c")
        #expect(KilnCache.root(environment: ["XDG_CACHE_HOME": "/x", "HOME": "/h"]) == "/x/kiln")
        #expect(KilnCache.root(environment: ["KILN_CACHE": "", "XDG_CACHE_HOME": "/x", "HOME": "/h"]) == "/x/kiln")
        // The XDG specification ignores a relative path.
        #expect(KilnCache.root(environment: ["XDG_CACHE_HOME": "rel", "HOME": "/h"]) == "/h/.cache/kiln")
        #expect(KilnCache.root(environment: ["HOME": "/h"]) == "/h/.cache/kiln")
    }
}
