import Testing

@testable import BuildVM

/// What `kiln test` types at an encrypted image's console, line by line as the console shows it: the
/// prompts of Debian's cryptsetup-initramfs and of systemd-cryptsetup, as they print them.
struct PassphrasePromptsTests {
    @Test func eachPromptIsAnsweredOnceEvenWhenItsLineIsSeenAgain() throws {
        var prompts = PassphrasePrompts(passphrase: "correct horse")
        #expect(try prompts.answer(to: "Begin: Loading essential drivers ... done.", tail: []) == nil)
        // The prompt has no newline yet: seen as the unfinished last line, answered.
        #expect(try prompts.answer(to: "Please unlock disk root_crypt: ", tail: []) == "correct horse\n")
        // The typed newline finishes that line: the same prompt, not a new one.
        #expect(try prompts.answer(to: "Please unlock disk root_crypt: ", tail: []) == nil)
        #expect(try prompts.answer(to: "cryptsetup: root_crypt: set up successfully", tail: []) == nil)
        // A second disk, asked for by systemd later in the boot.
        let systemd = "🔐 Please enter passphrase for disk srv_crypt (srv_crypt): "
        #expect(try prompts.answer(to: systemd, tail: []) == "correct horse\n")
        #expect(try prompts.answer(to: systemd + "(press TAB for no echo)", tail: []) == nil)
        #expect(prompts.answered == 2)
    }

    @Test func aRefusedPassphraseOrNoneFailsAtOnce() {
        var prompts = PassphrasePrompts(passphrase: "wrong")
        #expect(throws: BuildVMError.self) {
            try prompts.answer(
                to: "cryptsetup: ERROR: root_crypt: cryptsetup failed, bad password or options?", tail: [])
        }
        var none = PassphrasePrompts(passphrase: nil)
        #expect(throws: BuildVMError.self) { try none.answer(to: "Please unlock disk root_crypt: ", tail: []) }
    }
}
