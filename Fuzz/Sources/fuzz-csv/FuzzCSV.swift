import Formats
import Foundation
import FuzzSupport

/// The case ledger's CSV import, as `duban case import FILE.csv` reads a file: the encoding
/// guessed (UTF-8, UTF-16, GB18030), RFC 4180 parsed, rows turned into `case.open` bodies.
/// Properties: every outcome is rows or one syntax error with a line; a row written back with
/// `LedgerCSV.row` parses to the same fields (the export and the import are inverse).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCSV(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let data = Data(bytes: start, count: count)
    guard let decoded = OfficeText.decode(data) else { return 0 }
    let records: [LedgerCSV.Record]
    do {
        records = try LedgerCSV.parse(decoded.text)
    } catch let error as LedgerCSV.SyntaxError {
        if error.line < 1 { Fuzz.fail("a syntax error before the first line") }
        return 0
    } catch {
        Fuzz.fail("LedgerCSV.parse threw something other than its SyntaxError")
    }
    let written = records.map { LedgerCSV.row($0.fields) }.joined()
    guard let reread = try? LedgerCSV.parse(written) else { Fuzz.fail("the rows written back do not parse") }
    guard reread.map(\.fields) == records.map(\.fields) else { Fuzz.fail("the rows written back parse to other fields") }
    for shortRows in [false, true] {
        if let rows = try? LedgerCSV.importRows(records, shortRows: shortRows) {
            for row in rows where row.body == nil && (row.problem ?? "").isEmpty {
                Fuzz.fail("an import row with neither a body nor a problem")
            }
        }
    }
    return 0
}
