import Crypto
import Foundation
import Schema

/// The audit trail's hash chain: each entry's hash is SHA-256 over the entry (its `chainedBytes`,
/// which include `prev`), so changing, inserting or removing an entry breaks every link after it.
/// The services write it; `duban audit --verify` recomputes it on the reader's side, trusting
/// nothing but the entries themselves.
public enum AuditChain {
    public static func hash(_ entry: AuditEntry) -> String {
        Hex.lowercase(SHA256.hash(data: entry.chainedBytes))
    }

    /// Checks entries of one stream in `seq` order from the first: every link and every hash.
    /// Returns the first entry that does not hold and why, or nil when the chain is whole.
    public static func firstBreak(_ entries: [AuditEntry], startingAfter prev: String = AuditEntry.genesis) -> (seq: Int, problem: String)?
    {
        var expected = prev
        var lastSeq = 0
        for entry in entries {
            if entry.seq != lastSeq + 1 && lastSeq != 0 {
                return (entry.seq, "第 \(lastSeq) 条之后应为第 \(lastSeq + 1) 条，实际为第 \(entry.seq) 条（有条目被删除）")
            }
            lastSeq = entry.seq
            if entry.prev != expected { return (entry.seq, "第 \(entry.seq) 条与前一条的链接不符（前一条被改动或删除）") }
            if hash(entry) != entry.hash { return (entry.seq, "第 \(entry.seq) 条的内容与其哈希不符（条目被改动）") }
            expected = entry.hash
        }
        return nil
    }
}
