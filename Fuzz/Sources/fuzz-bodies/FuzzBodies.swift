import Foundation
import FuzzSupport
import Schema

/// Every request body decoder, driven from the declarations (`RequestCatalog.all`): a new request
/// type is fuzzed without touching this file. The input is a type name, a newline, and the body's
/// bytes; a first line that names no type picks one by a stable hash, so that any bytes reach
/// every decoder. Properties, for a body JSONDecoder accepts:
/// - it encodes, and what it encodes to decodes again to the same canonical JSON (what a server
///   accepted, a client built from the same type can send again);
/// - a type with a fast path reads the same body to the same value, and never accepts what
///   JSONDecoder refuses;
/// - a type's idempotency fingerprint is the same for the decoded and the re-decoded value;
/// - the client's encoder (`FastJSONEncoding`) writes it so that it reads back to the same value;
/// - the client's tree decoder (`FastJSONDecoding`) never reads a body or a reply JSONDecoder refuses,
///   and reads what it accepts to the same value; its reply-body path likewise for whole envelopes.
let declarations = RequestCatalog.all
let byName = RequestCatalog.byName

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzBodies(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: start, count: count)
    let newline = input.firstIndex(of: 0x0A) ?? count
    let head = input[0..<newline]
    let body = Data(input[min(newline + 1, count)...])
    let declaration =
        String(validating: head, as: UTF8.self).flatMap { byName[$0] } ?? declarations[Fuzz.stableIndex(head, count: declarations.count)]
    check(declaration.bodyType, body, declaration.name)
    checkTreeDecoder(declaration.bodyType, body, declaration.name)
    checkTreeDecoder(declaration.replyType, body, declaration.name + " (reply)")
    checkTreeDecoder(AnyEvent.self, body, "an event")
    checkReplyBody(declaration.replyType, body, declaration.name + " (reply envelope)")
    return 0
}

/// A typed call's fast path (`FastJSONDecoding.replyBody`): only what ReplyEnvelope reads as a
/// successful reply, and to the same body.
func checkReplyBody<Value: Codable & Sendable>(_ type: Value.Type, _ bytes: Data, _ name: String) {
    guard let body = FastJSONDecoding.replyBody(Value.self, from: bytes) else { return }
    guard let envelope = try? WireCoding.decoder().decode(ReplyEnvelope<Value>.self, fromUntrusted: bytes),
        let value = try? envelope.result()
    else {
        Fuzz.fail("\(name): the body path accepts what ReplyEnvelope refuses")
    }
    guard Fuzz.canonical(body) == Fuzz.canonical(value) else { Fuzz.fail("\(name): the body path reads it differently") }
}

func checkTreeDecoder<Value: Codable & Sendable>(_ type: Value.Type, _ bytes: Data, _ name: String) {
    guard let tree = FastJSONDecoding.decode(Value.self, from: bytes) else { return }
    guard let value = try? WireCoding.decoder().decode(Value.self, fromUntrusted: bytes) else {
        Fuzz.fail("\(name): the tree decoder accepts what JSONDecoder refuses")
    }
    guard Fuzz.canonical(tree) == Fuzz.canonical(value) else { Fuzz.fail("\(name): the tree decoder reads it differently") }
}

func check<Body: Codable & Sendable>(_ type: Body.Type, _ body: Data, _ name: String) {
    let decoder = WireCoding.decoder()
    let fast = (Body.self as? any FastDecodable.Type).flatMap { fastType in FastJSON.parse(body).flatMap { fastType.fastDecode($0) } }
    guard let value = try? decoder.decode(Body.self, fromUntrusted: body) else {
        if fast != nil { Fuzz.fail("\(name): the fast path accepts a body JSONDecoder refuses") }
        return
    }
    guard let encoded = Fuzz.canonical(value) else { Fuzz.fail("\(name): an accepted body does not encode") }
    guard let again = try? decoder.decode(Body.self, from: encoded) else {
        Fuzz.fail("\(name): an accepted body, encoded again, is refused: \(String(decoding: encoded.prefix(300), as: UTF8.self))")
    }
    guard Fuzz.canonical(again) == encoded else { Fuzz.fail("\(name): decoding what it encoded gives another value") }
    // The client's encoder: what it writes reads back to the same value, through both decoders.
    if let compact = FastJSONEncoding.encode(value) {
        guard let back = try? decoder.decode(Body.self, from: compact), Fuzz.canonical(back) == encoded else {
            Fuzz.fail(
                "\(name): the client's encoder writes what does not read back: \(String(decoding: compact.prefix(300), as: UTF8.self))")
        }
        if let tree = FastJSONDecoding.decode(Body.self, from: compact), Fuzz.canonical(tree) != encoded {
            Fuzz.fail("\(name): the client's encoder writes what the tree decoder reads differently")
        }
    }
    if let fast {
        guard let fastValue = fast as? any Encodable, Fuzz.canonical(fastValue) == encoded else {
            Fuzz.fail("\(name): the fast path reads the body differently")
        }
    }
    if let first = value as? any Fingerprintable, let second = again as? any Fingerprintable {
        var a: [UInt8] = []
        var b: [UInt8] = []
        first.fingerprint(into: &a)
        second.fingerprint(into: &b)
        guard a == b else { Fuzz.fail("\(name): the same body gives two idempotency fingerprints") }
    }
}
