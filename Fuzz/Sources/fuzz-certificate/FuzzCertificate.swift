import CertificateFormat
import Foundation
import FuzzSupport

/// The certificate reader, as a service and the CLI read a key directory's files (anyone who can
/// drop a file there, or a pyzmq tool's output). Properties: any text gives a certificate or a
/// `CertificateError`; a certificate read is written back (its secret text) and read again the
/// same; its principal is either named or refused with a `CertificateError`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCertificate(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard let text = String(validating: UnsafeRawBufferPointer(start: start, count: count), as: UTF8.self) else { return 0 }
    let certificate: Certificate
    do {
        certificate = try Certificate.parse(text, path: "fuzz.key_secret")
    } catch is CertificateError {
        return 0
    } catch {
        Fuzz.fail("a refusal that is not a CertificateError: \(error)")
    }
    if certificate.publicKey.utf8.count != 40 { Fuzz.fail("a public key of \(certificate.publicKey.utf8.count) bytes was accepted") }
    do {
        let again = try Certificate.parse(certificate.secretText, path: "fuzz.key_secret")
        if again != certificate { Fuzz.fail("written back and read again, the certificate changed: \(certificate) → \(again)") }
    } catch {
        Fuzz.fail("a certificate written back cannot be read again: \(error)")
    }
    do {
        _ = try certificate.principal(name: "fuzz")
    } catch is CertificateError {
    } catch {
        Fuzz.fail("a principal refused with something else than a CertificateError: \(error)")
    }
    return 0
}
