/// Text that came from data, made safe to show on a terminal or a page. A case title, a reason or a
/// comment is anyone's input: `ESC[2J` in it would clear an operator's screen, `ESC[8m` hide what
/// follows, a right-to-left override make `12` read as `21`. What a person sees keeps every printable
/// character and newline and tab; the C0 controls, DEL, the C1 controls and the bidirectional
/// overrides and isolates are dropped. The CLI applies this to everything it prints; the web console
/// is to do the same.
public enum DisplayText {
    /// Whether a scalar is dropped from displayed text.
    @inlinable
    public static func isUnsafe(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09, 0x0A: return false
        case 0x00...0x1F, 0x7F, 0x80...0x9F: return true
        case 0x202A...0x202E, 0x2066...0x2069: return true
        default: return false
        }
    }

    /// `text` without the scalars `isUnsafe` names (returned as is when it has none, the usual case).
    public static func sanitized(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isUnsafe) else { return text }
        var scalars = String.UnicodeScalarView()
        scalars.append(contentsOf: text.unicodeScalars.lazy.filter { !isUnsafe($0) })
        return String(scalars)
    }
}
