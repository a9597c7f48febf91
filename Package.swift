// swift-tools-version: 6.2
import PackageDescription

#if canImport(Glibc)
    import Glibc
#endif

/// One set of settings for every target: Swift 6 language mode with strict concurrency.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny")
]

/// How every executable is linked on Linux. Measured on duban-ingest (Benchmarks/README.md, tenth
/// session): RSS idle 39.5 MB with the default linker, 33.7 MB with these.
/// - lld, because gold cannot pack relative relocations. The toolchain ships it.
/// - Packed relative relocations (DT_RELR): Swift metadata needs ~135,000 of them, 3.2 MB of
///   `.rela.dyn` that the dynamic loader reads whole at every start; packed they take 26 kB. The
///   executables then need glibc 2.36 (Debian 12) where they run: a machine with an older glibc
///   builds without them.
/// - No exported symbol table: swiftc exports every symbol of an executable (46,000-49,000 here, 4 MB
///   of `.dynsym`/`.dynstr` that symbol look-ups from the C libraries touch). Nothing loads symbols
///   from our executables, and the backtracer reads `.symtab`, not `.dynsym`.
let executableLinkerSettings: [LinkerSetting] = [
    .unsafeFlags(
        ["-use-ld=lld", "-Xlinker", "--no-export-dynamic"]
            + (glibcHasPackedRelocations ? ["-Xlinker", "-z", "-Xlinker", "pack-relative-relocs"] : []),
        .when(platforms: [.linux]))
]

/// Whether this machine's glibc reads packed relative relocations (2.36 and later).
var glibcHasPackedRelocations: Bool {
    #if canImport(Glibc)
        var buffer = [CChar](repeating: 0, count: 64)
        guard confstr(Int32(_CS_GNU_LIBC_VERSION), &buffer, buffer.count) > 0 else { return false }
        // "glibc 2.36"
        let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let version = text.split(separator: " ").last?.split(separator: ".").compactMap { Int($0) } ?? []
        return version.count >= 2 && (version[0], version[1]) >= (2, 36)
    #else
        return false
    #endif
}

let package = Package(
    name: "duban",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "duban-registry", targets: ["duban-registry"]),
        .executable(name: "duban-ingest", targets: ["duban-ingest"]),
        .executable(name: "duban-cases", targets: ["duban-cases"]),
        .executable(name: "duban-notify", targets: ["duban-notify"]),
        .executable(name: "duban-broker", targets: ["duban-broker"]),
        .executable(name: "duban", targets: ["DubanCLI"]),
        .executable(name: "duban-web", targets: ["duban-web"]),
        .library(name: "Messaging", targets: ["Messaging"]),
        .library(name: "Schema", targets: ["Schema"]),
        .library(name: "ServiceKit", targets: ["ServiceKit"]),
        // The parsers alone, for the fuzzing package under Fuzz/ (which must not build the server stack).
        .library(name: "Formats", targets: ["Formats"]),
        .library(name: "PlanFormat", targets: ["PlanFormat"]),
        .library(name: "OfficeFormats", targets: ["OfficeFormats"]),
        .library(name: "CertificateFormat", targets: ["CertificateFormat"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-configuration", from: "1.4.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        // The web console only (people speak HTTP to duban-web; services never do).
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth", from: "2.5.0"),
        // Metrics (one registry per service, no MetricsSystem.bootstrap) and the small HTTP
        // server that serves them with /healthz and /readyz.
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // NIOThreadPool (bcrypt runs there, never on the cooperative pool) and the metrics server.
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        // XLSX and DOCX are ZIP archives: reading a workbook, building a Word document in memory.
        .package(url: "https://github.com/weichsel/ZIPFoundation", exact: "0.9.20"),
        // Benchmarks only (latency percentiles); small, pure Swift.
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        // Debian's libzmq (libzmq3-dev), found through pkg-config.
        .systemLibrary(
            name: "CZeroMQ",
            path: "Shared/CZeroMQ",
            pkgConfig: "libzmq",
            providers: [.apt(["libzmq3-dev"])]
        ),
        .target(
            name: "Messaging",
            dependencies: [
                "CZeroMQ", "Schema",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Shared/Messaging",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Schema",
            path: "Shared/Schema",
            swiftSettings: swiftSettings
        ),
        // How every executable writes its log lines (text or JSON).
        .target(
            name: "DubanLogging", dependencies: [.product(name: "Logging", package: "swift-log")], path: "Shared/DubanLogging",
            swiftSettings: swiftSettings),
        // Where every service is and what a deployment sets: read by services and the CLI alike,
        // with no storage in it.
        .target(
            name: "DubanConfig",
            dependencies: [
                "Schema", "DubanLogging",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Configuration", package: "swift-configuration"),
            ],
            path: "Shared/DubanConfig",
            swiftSettings: swiftSettings
        ),
        // Working days: the State Council's holiday notices as data (2024-2027 bundled), replaceable by
        // `holidaysFile`; due dates on a day off move to the next working day. Day arithmetic from Schema's
        // Timestamp.
        .target(
            name: "WorkCalendar",
            dependencies: ["Schema"],
            path: "Shared/WorkCalendar",
            resources: [.copy("Resources/holidays-cn-2024-2027.json")],
            swiftSettings: swiftSettings
        ),
        // The plan file format (the bundled 城中区 plan with it): the registry serves it, ingest
        // takes its targets, the CLI checks a file before loading it.
        .target(
            name: "PlanFormat",
            dependencies: ["Schema", "WorkCalendar", .product(name: "Yams", package: "Yams")],
            path: "Shared/PlanFormat",
            resources: [.copy("Resources/chengzhong-2024-2026.yaml")],
            swiftSettings: swiftSettings
        ),
        // Documents in and out (the ledger's CSV, monitoring exports): no service code.
        .target(
            name: "Formats",
            dependencies: ["Schema"],
            path: "Shared/Formats",
            swiftSettings: swiftSettings
        ),
        // Debian's libxlsxwriter (libxlsxwriter-dev): the XLSX writer, no Swift package writes XLSX.
        .systemLibrary(
            name: "CXlsxWriter",
            path: "Shared/CXlsxWriter",
            pkgConfig: "xlsxwriter",
            providers: [.apt(["libxlsxwriter-dev"])]
        ),
        // Office documents (XLSX in and out, DOCX out) built from and read into wire data. A target
        // of its own so that services, which use Formats for CSV, link no document library.
        .target(
            name: "OfficeFormats",
            dependencies: ["Formats", "Schema", "CXlsxWriter", .product(name: "ZIPFoundation", package: "ZIPFoundation")],
            path: "Shared/OfficeFormats",
            swiftSettings: swiftSettings
        ),
        // The CURVE certificate file format (ZPL), apart so the fuzzer reaches it without the crypto stack.
        .target(name: "CertificateFormat", dependencies: ["Schema"], path: "Shared/CertificateFormat", swiftSettings: swiftSettings),
        // Certificates and key directories (PROTOCOL.md section 7): read by services and the CLI.
        .target(
            name: "Trust",
            dependencies: [
                "Schema", "CertificateFormat",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Shared/Trust",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ServiceKit",
            dependencies: [
                "Messaging", "Schema", "DubanConfig", "DubanLogging", "Trust",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Shared/ServiceKit",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "DubanTesting",
            dependencies: ["Messaging", "Schema", "ServiceKit"],
            path: "Shared/DubanTesting",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TaskRegistry",
            dependencies: ["ServiceKit", "PlanFormat", "WorkCalendar"],
            path: "Services/TaskRegistry",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "IndicatorIngest",
            dependencies: [
                "ServiceKit", "PlanFormat", .product(name: "Yams", package: "Yams"),
                .product(name: "PostgresNIO", package: "postgres-nio"), .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ],
            path: "Services/IndicatorIngest",
            resources: [.copy("Resources/standards.yaml"), .copy("Resources/stations.yaml")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "CaseTracking",
            dependencies: ["ServiceKit", "Formats", .product(name: "AsyncHTTPClient", package: "async-http-client")],
            path: "Services/CaseTracking", swiftSettings: swiftSettings),
        .target(
            name: "Notifications",
            dependencies: ["ServiceKit", "Formats", "WorkCalendar", .product(name: "AsyncHTTPClient", package: "async-http-client")],
            path: "Services/Notifications",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "duban-registry", dependencies: ["TaskRegistry"], path: "Services/Executables/duban-registry",
            swiftSettings: swiftSettings, linkerSettings: executableLinkerSettings),
        .executableTarget(
            name: "duban-ingest", dependencies: ["IndicatorIngest"], path: "Services/Executables/duban-ingest",
            swiftSettings: swiftSettings, linkerSettings: executableLinkerSettings
        ),
        .executableTarget(
            name: "duban-cases", dependencies: ["CaseTracking"], path: "Services/Executables/duban-cases", swiftSettings: swiftSettings,
            linkerSettings: executableLinkerSettings),
        .executableTarget(
            name: "duban-notify", dependencies: ["Notifications"], path: "Services/Executables/duban-notify", swiftSettings: swiftSettings,
            linkerSettings: executableLinkerSettings),
        .executableTarget(
            name: "duban-broker",
            dependencies: [
                "Messaging", "ServiceKit", "DubanConfig", "DubanLogging",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Services/Executables/duban-broker",
            swiftSettings: swiftSettings, linkerSettings: executableLinkerSettings
        ),
        .executableTarget(
            name: "DubanCLI",
            dependencies: [
                // No service and no storage driver: the CLI is a client like any other.
                "Messaging", "Schema", "DubanConfig", "PlanFormat", "Formats", "OfficeFormats", "Trust",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Services/CLI",
            swiftSettings: swiftSettings, linkerSettings: executableLinkerSettings
        ),
        // The web console (#18): HTTP for people, ZeroMQ to the services like any other client; its own SQLite
        // holds accounts, sessions, the login journal and uploaded evidence's metadata.
        .target(
            name: "WebConsole",
            dependencies: [
                "Messaging", "Schema", "DubanConfig", "Trust", "IndicatorIngest", "OfficeFormats",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Services/WebConsole",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "duban-web",
            dependencies: [
                "WebConsole", "DubanConfig", "DubanLogging", "Schema", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"), .product(name: "Logging", package: "swift-log"),
            ],
            path: "Services/Executables/duban-web",
            swiftSettings: swiftSettings, linkerSettings: executableLinkerSettings
        ),
        // Benchmarks (not tests): Benchmarks/run.sh builds them in release mode and prints the figures.
        .executableTarget(
            name: "duban-bench",
            dependencies: [
                "CZeroMQ", "Messaging", "Schema", "ServiceKit", "DubanTesting", "DubanConfig",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            path: "Benchmarks/duban-bench",
            swiftSettings: swiftSettings, linkerSettings: executableLinkerSettings
        ),
        // The chaos run and the soak (not tests: scripts/chaos.sh and scripts/soak.sh run them and print
        // the figures; a small chaos run and a short soak run in EndToEndTests).
        .executableTarget(
            name: "duban-chaos",
            dependencies: [
                "Messaging", "Schema", "ServiceKit", "DubanTesting", "DubanConfig",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            path: "Benchmarks/duban-chaos",
            swiftSettings: swiftSettings, linkerSettings: executableLinkerSettings
        ),
        .testTarget(
            name: "MessagingTests", dependencies: ["Messaging", "Schema", "DubanTesting"], path: "Tests/MessagingTests",
            swiftSettings: swiftSettings),
        .testTarget(
            name: "DeployTests",
            dependencies: ["ServiceKit", "DubanTesting", .product(name: "Yams", package: "Yams")],
            path: "Tests/DeployTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "SchemaTests", dependencies: ["Schema"], path: "Tests/SchemaTests", swiftSettings: swiftSettings),
        .testTarget(
            name: "ServiceKitTests", dependencies: ["ServiceKit", "DubanTesting"], path: "Tests/ServiceKitTests",
            swiftSettings: swiftSettings),
        .testTarget(
            name: "RegistryTests",
            dependencies: ["TaskRegistry", "PlanFormat", "WorkCalendar", "DubanTesting", "Messaging", "Schema", "ServiceKit"],
            path: "Tests/RegistryTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CasesTests",
            dependencies: [
                "CaseTracking", "Formats", "OfficeFormats", "TaskRegistry", "DubanTesting", "Messaging", "Schema", "ServiceKit",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            path: "Tests/CasesTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "IngestTests",
            dependencies: [
                "IndicatorIngest", "TaskRegistry", "PlanFormat", "DubanTesting", "Messaging", "Schema", "ServiceKit", "Formats",
            ],
            path: "Tests/IngestTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "WebTests",
            dependencies: [
                "WebConsole", "DubanTesting", "Messaging", "Schema", "ServiceKit", "DubanConfig",
                "TaskRegistry", "IndicatorIngest", "CaseTracking", "Notifications",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            path: "Tests/WebTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "DubanTesting", "Messaging", "Schema", "ServiceKit", "TaskRegistry", "IndicatorIngest", "CaseTracking", "Notifications",
                .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Tests/EndToEndTests",
            swiftSettings: swiftSettings
        ),
    ]
)
