import Foundation
import FuzzSupport
import Schema

/// The frame and envelope reader, as every service runs it on every request frame: the request
/// table of every declared type. Properties:
/// - whatever FastJSON parses, JSONSerialization parses too and reads the same way, and
///   `FastJSON.topLevelString` (the routers' quick look) agrees with the parsed tree;
/// - whatever the fast request path accepts, the JSONDecoder path accepts with the same id, type,
///   ts, from, key, cursor and body (the fast path is only an optimisation of it);
/// - the full decode returns or throws its one error, never crashes.
let table = RequestCatalog.typeTable()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEnvelope(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let frame = Data(bytes: start, count: count)

    if let fast = FastJSON.parse(frame) {
        guard let foundation = try? JSONSerialization.jsonObject(with: frame, options: [.fragmentsAllowed]) else {
            Fuzz.fail("FastJSON parsed a document JSONSerialization refuses")
        }
        guard Fuzz.agrees(fast, foundation) else { Fuzz.fail("FastJSON and JSONSerialization read the document differently") }
        if case .object = fast {
            for key in ["id", "type", "re", "stream", "from"] where FastJSON.topLevelString(key, in: frame) != fast[key]?.string {
                Fuzz.fail("topLevelString(\(key)) disagrees with the parsed tree")
            }
        }
    }

    let slow: Result<DecodedRequest, RequestDecodingFailure> = Result { () throws(RequestDecodingFailure) in
        try table.decodeWithFoundation(frame)
    }
    if let fast = table.decodeFast(frame) {
        guard case .success(let request) = slow else { Fuzz.fail("the fast path accepted a frame the JSONDecoder path refuses") }
        guard fast.id == request.id, fast.type == request.type, fast.ts == request.ts, fast.from == request.from,
            fast.key == request.key, fast.cursor == request.cursor
        else { Fuzz.fail("the fast path read the envelope differently") }
        guard let fastBody = fast.body as? any Encodable, let slowBody = request.body as? any Encodable,
            Fuzz.canonical(fastBody) == Fuzz.canonical(slowBody)
        else { Fuzz.fail("the fast path read the body differently") }
    }
    if case .failure(let failure) = slow, failure.error.message.isEmpty { Fuzz.fail("a refusal without a message") }
    _ = try? table.decode(frame)
    return 0
}
