// Trust's users read certificates through it; the format itself is its own small target
// (CertificateFormat: Foundation and Schema only) so the fuzzer can reach it without the crypto stack.
@_exported import CertificateFormat
