// swift-tools-version: 6.2
import PackageDescription

// libFuzzer targets for everything that reads bytes from outside: one executable per entry point.
// Built apart from the server stack (`scripts/fuzz.sh`: `swift build --package-path Fuzz
// --scratch-path .build-fuzz --sanitize=fuzzer`), so only the schema and parser targets are
// compiled with the fuzzer's instrumentation.
//
// The certificate reader is reached through CertificateFormat, not Trust: Trust links swift-crypto
// and ServiceLifecycle, which would put BoringSSL and the lifecycle stack under instrumentation.

/// Each target defines `LLVMFuzzerTestOneInput` and no `main` (libFuzzer brings it).
let fuzzerSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .unsafeFlags(["-parse-as-library"]),
]

let duban = "duban"

let package = Package(
    name: "duban-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: duban, path: "..")],
    targets: [
        // What the harnesses share: comparing decoded values, a harness's failure message.
        .target(
            name: "FuzzSupport", dependencies: [.product(name: "Schema", package: duban)], path: "Sources/FuzzSupport",
            swiftSettings: [.enableUpcomingFeature("ExistentialAny")]),
        .executableTarget(
            name: "fuzz-envelope", dependencies: ["FuzzSupport", .product(name: "Schema", package: duban)], path: "Sources/fuzz-envelope",
            swiftSettings: fuzzerSettings),
        .executableTarget(
            name: "fuzz-bodies", dependencies: ["FuzzSupport", .product(name: "Schema", package: duban)], path: "Sources/fuzz-bodies",
            swiftSettings: fuzzerSettings),
        .executableTarget(
            name: "fuzz-csv", dependencies: ["FuzzSupport", .product(name: "Formats", package: duban)], path: "Sources/fuzz-csv",
            swiftSettings: fuzzerSettings),
        .executableTarget(
            name: "fuzz-readings", dependencies: ["FuzzSupport", .product(name: "Formats", package: duban)], path: "Sources/fuzz-readings",
            swiftSettings: fuzzerSettings),
        .executableTarget(
            name: "fuzz-xlsx",
            dependencies: ["FuzzSupport", .product(name: "Formats", package: duban), .product(name: "OfficeFormats", package: duban)],
            path: "Sources/fuzz-xlsx", swiftSettings: fuzzerSettings),
        .executableTarget(
            name: "fuzz-plan", dependencies: ["FuzzSupport", .product(name: "PlanFormat", package: duban)], path: "Sources/fuzz-plan",
            swiftSettings: fuzzerSettings),
        .executableTarget(
            name: "fuzz-certificate", dependencies: ["FuzzSupport", .product(name: "CertificateFormat", package: duban)],
            path: "Sources/fuzz-certificate", swiftSettings: fuzzerSettings),
    ]
)
