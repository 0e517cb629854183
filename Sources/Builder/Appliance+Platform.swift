import Appliance
import KilnSupport

extension Appliance {
    /// The description as `kiln build --platform` builds it: the platform's `post` list runs in the
    /// target right after `post.base`.
    package func forPlatform(_ platform: Platform?) -> Appliance {
        guard let platform, let commands = post.platforms[platform], !commands.isEmpty else { return self }
        var built = self
        built.post.base += commands
        return built
    }
}
