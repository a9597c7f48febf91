import Formats
import Foundation
import FuzzSupport
import OfficeFormats

/// An XLSX workbook, as the ledger and readings imports read one: unzipped (with part size caps),
/// the shared strings and the first sheet read into rows, then both imports run on them.
/// Property: any bytes give rows or one `ReadError`, never a crash or a runaway.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzXLSX(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let data = Data(bytes: start, count: count)
    guard let records = try? XLSXReader.read(data) else { return 0 }
    _ = try? LedgerCSV.importRows(records, shortRows: true)
    _ = try? ReadingsImport.rows(records.map { ($0.line, $0.fields) }, defaultStation: "liuyiqiao")
    return 0
}
