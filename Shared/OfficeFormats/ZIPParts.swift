// zlib through the module ZIPFoundation declares for it on Linux (its CZLib target): the same
// library, with no second module map for the same header.
import CZlib
import Foundation

/// The parts of a ZIP archive, for reading only: the central directory read with every offset and
/// size checked against the data, each part inflated from exactly its compressed bytes, with a cap
/// on its size and its CRC-32 checked.
///
/// Not ZIPFoundation's reader: on damaged or hostile files (found by Fuzz/fuzz-xlsx) its
/// in-memory archive traps when a header points past the end of the data, and its inflate loop
/// spins for ever when a deflate stream asks for more bytes than the file has (a truncated part),
/// so a bad workbook crashed or hung `duban case import` and `duban reading import`.
struct ZIPParts {
    struct Part {
        var method: UInt16
        var crc32: UInt32
        var compressedSize: Int
        var uncompressedSize: Int
        var localHeader: Int
    }

    enum Failure: Error {
        case notAZIP
        case damaged(String)
        case tooLarge(String)
    }

    private let bytes: [UInt8]
    private(set) var parts: [String: Part] = [:]

    init(_ data: Data) throws(Failure) {
        bytes = [UInt8](data)
        // The end of central directory record: its signature within the last 64 KiB + 22 bytes.
        guard bytes.count >= 22 else { throw .notAZIP }
        var end = -1
        var index = bytes.count - 22
        while index >= max(0, bytes.count - 22 - 65_535) {
            if u32(index) == 0x0605_4b50 {
                end = index
                break
            }
            index -= 1
        }
        guard end >= 0 else { throw .notAZIP }
        let count = Int(u16(end + 10))
        let directorySize = Int(u32(end + 12))
        var offset = Int(u32(end + 16))
        guard offset + directorySize <= end else { throw .damaged("中央目录超出文件范围") }
        for _ in 0..<count {
            guard offset + 46 <= end, u32(offset) == 0x0201_4b50 else { throw .damaged("中央目录损坏") }
            let nameLength = Int(u16(offset + 28))
            let extraLength = Int(u16(offset + 30))
            let commentLength = Int(u16(offset + 32))
            guard offset + 46 + nameLength <= end else { throw .damaged("中央目录损坏") }
            let name = String(decoding: bytes[(offset + 46)..<(offset + 46 + nameLength)], as: UTF8.self)
            let part = Part(
                method: u16(offset + 10), crc32: u32(offset + 16), compressedSize: Int(u32(offset + 20)),
                uncompressedSize: Int(u32(offset + 24)), localHeader: Int(u32(offset + 42)))
            // The first of a repeated name, as a reader that stops at the first match takes it.
            if parts[name] == nil { parts[name] = part }
            offset += 46 + nameLength + extraLength + commentLength
        }
    }

    /// A part's bytes; nil when there is no such part.
    func extract(_ name: String, limit: Int) throws(Failure) -> Data? {
        guard let part = parts[name] else { return nil }
        guard part.uncompressedSize <= limit else { throw .tooLarge(name) }
        let header = part.localHeader
        guard header + 30 <= bytes.count, u32(header) == 0x0403_4b50 else { throw .damaged(name) }
        let start = header + 30 + Int(u16(header + 26)) + Int(u16(header + 28))
        guard start <= bytes.count, part.compressedSize <= bytes.count - start else { throw .damaged(name) }
        let input = bytes[start..<(start + part.compressedSize)]
        let output: [UInt8]
        switch part.method {
        case 0:
            output = Array(input)
        case 8:
            output = try inflate(input, expected: part.uncompressedSize, name: name)
        default:
            throw .damaged(name)
        }
        guard output.count == part.uncompressedSize else { throw .damaged(name) }
        let checksum = output.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, UInt32($0.count))) }
        guard checksum == part.crc32 else { throw .damaged(name) }
        return Data(output)
    }

    /// Raw deflate (no zlib header), from exactly `input`, to at most `expected` bytes: a stream that
    /// does not end within its input, or would give more, is damaged.
    private func inflate(_ input: ArraySlice<UInt8>, expected: Int, name: String) throws(Failure) -> [UInt8] {
        var stream = z_stream()
        guard inflateInit2_(&stream, -MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else { throw .damaged(name) }
        defer { inflateEnd(&stream) }
        // One byte more than expected: a stream that would give more is told apart from one that fits.
        var output = [UInt8](repeating: 0, count: expected + 1)
        var source = Array(input)
        let result = source.withUnsafeMutableBufferPointer { inBuffer in
            output.withUnsafeMutableBufferPointer { outBuffer in
                stream.next_in = inBuffer.baseAddress
                stream.avail_in = UInt32(inBuffer.count)
                stream.next_out = outBuffer.baseAddress
                stream.avail_out = UInt32(outBuffer.count)
                return CZlib.inflate(&stream, Z_FINISH)
            }
        }
        guard result == Z_STREAM_END, Int(stream.total_out) <= expected else { throw .damaged(name) }
        return Array(output.prefix(Int(stream.total_out)))
    }

    private func u16(_ at: Int) -> UInt16 { UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8 }
    private func u32(_ at: Int) -> UInt32 {
        UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
    }
}
