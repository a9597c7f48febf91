import Formats
import Foundation
import FuzzSupport

/// A monitoring station's export, as `duban reading import FILE` reads it: decoded, parsed as CSV,
/// turned into readings (long or wide layout). The first byte chooses whether a default station is
/// given (`--station`). Property: every row the import keeps is a reading, a problem or a note.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzReadings(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard count > 0 else { return 0 }
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    let station = bytes[0] & 1 == 1 ? "liuyiqiao" : nil
    guard let decoded = OfficeText.decode(Data(bytes[1...])), let records = try? LedgerCSV.parse(decoded.text) else { return 0 }
    guard let rows = try? ReadingsImport.rows(records.map { ($0.line, $0.fields) }, defaultStation: station) else { return 0 }
    for row in rows where row.reading == nil && row.problem == nil && row.note == nil {
        Fuzz.fail("a readings row with neither a reading, a problem nor a note")
    }
    return 0
}
