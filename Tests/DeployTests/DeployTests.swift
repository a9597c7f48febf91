import DubanTesting
import Foundation
import ServiceKit
import Testing
import Yams

/// deploy/ cannot be run here (no container engine, no cluster), so this checks everything about it
/// that can be checked without one: every file parses, every file and executable it names exists,
/// every flag it passes is one the executable takes, every port matches the one configuration, and
/// every configuration key or variable is one the services read.
@Suite struct DeployTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let deploy = root.appendingPathComponent("deploy")

    static func text(_ relative: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent(relative), encoding: .utf8)
    }

    static func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

    /// The executables Package.swift builds.
    static var products: Set<String> {
        let manifest = (try? text("Package.swift")) ?? ""
        let pattern = try! NSRegularExpression(pattern: #"\.executable\(name: "([^"]+)""#)
        return Set(
            pattern.matches(in: manifest, range: NSRange(manifest.startIndex..., in: manifest)).compactMap {
                Range($0.range(at: 1), in: manifest).map { String(manifest[$0]) }
            })
    }

    /// The one configuration every deployment uses, and the ports it gives each host name.
    static func configuration() async throws -> DeploymentConfiguration {
        try await DeploymentConfiguration.load(configFile: deploy.appendingPathComponent("config/duban.json").path, environment: [:])
    }

    static func hostPorts(_ configuration: DeploymentConfiguration) -> [String: Set<Int>] {
        var result: [String: Set<Int>] = [:]
        let endpoints =
            ServiceName.allCases.flatMap { [configuration[$0].rpc, configuration[$0].events] } + [
                configuration.broker.backend, configuration.broker.eventsIn,
            ]
        for endpoint in endpoints {
            let parts = endpoint.replacingOccurrences(of: "tcp://", with: "").split(separator: ":")
            result[String(parts[0]), default: []].insert(Int(parts[1])!)
        }
        return result
    }

    /// What `executable --help` prints: the flags it takes.
    static func help(_ executable: String) throws -> String {
        try TestSupport.run("\(TestSupport.binDirectory)/\(executable)", ["--help"])
    }

    /// Every `--flag` of a command line is one the executable documents.
    static func checkFlags(_ command: [String], in file: String) throws {
        guard let executable = command.first.map({ ($0 as NSString).lastPathComponent }) else { return }
        #expect(products.contains(executable), "\(file): \(executable) is not an executable Package.swift builds")
        let help = try help(executable)
        for argument in command.dropFirst() where argument.hasPrefix("--") {
            let flag = String(argument.split(separator: "=").first!)
            #expect(help.contains(flag), "\(file): \(executable) has no option \(flag)")
        }
    }

    /// Every DUBAN_ variable is a configuration key's override or one the services read otherwise.
    static func checkVariable(_ name: String, in file: String) {
        let known = Set(
            DeploymentConfiguration.knownKeys.map(DeploymentConfiguration.environmentVariable(for:))
                + DeploymentConfiguration.otherEnvironmentVariables)
        guard name.hasPrefix("DUBAN_") || name == "LOG_LEVEL" else { return }
        #expect(known.contains(name), "\(file): \(name) is not a variable Duban reads")
    }

    static func envFile(_ path: String) throws -> [String: String] {
        var result: [String: String] = [:]
        for line in try String(contentsOfFile: path, encoding: .utf8).split(whereSeparator: \.isNewline) where !line.hasPrefix("#") {
            let parts = line.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { result[String(parts[0])] = String(parts[1]) }
        }
        return result
    }

    // MARK: Keys (PROTOCOL.md section 7, docs/security.md)

    /// Where every deployment puts a service's key directory.
    static let keysDirectory = "/etc/duban/keys"

    /// The secret certificates each host, container or pod holds: its own, and nothing else (the
    /// broker serves the ingest endpoints with the ingest certificate, so it holds that one too).
    static let ownCertificates: [String: Set<String>] = [
        "registry": ["registry"], "cases": ["cases"], "notify": ["notify"], "broker": ["broker", "ingest"],
        "ingest-1": ["ingest-1"], "ingest-2": ["ingest-2"], "web": ["gateway"],
    ]

    /// The key directory a command line names with `--keys DIR` (or `--keys=DIR`).
    static func keysArgument(_ command: [String]) -> String? {
        for (index, argument) in command.enumerated() {
            if argument == "--keys", index + 1 < command.count { return command[index + 1] }
            if argument.hasPrefix("--keys=") { return String(argument.dropFirst("--keys=".count)) }
        }
        return nil
    }

    /// The value of `--instance` in a command line.
    static func instanceArgument(_ command: [String]) -> String? {
        command.firstIndex(of: "--instance").flatMap { $0 + 1 < command.count ? command[$0 + 1] : nil }
    }

    /// Runs `bash -c script` with `arguments` as $0, $1, …; returns its standard output.
    @discardableResult
    static func bash(_ script: String, _ arguments: [String]) throws -> Data {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", "set -euo pipefail; " + script] + arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let problems = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw TestFailure("\(arguments.first ?? script) failed: \(problems)") }
        return data
    }

    /// The files of a directory, by name; empty when it is not there.
    static func files(_ directory: String) -> Set<String> {
        Set((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
    }

    static func mode(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }

    @Test func everyYAMLFileParses() throws {
        let files = FileManager.default.enumerator(atPath: Self.deploy.path)!.compactMap { $0 as? String }.filter {
            $0.hasSuffix(".yaml") || $0.hasSuffix(".yml")
        }
        #expect(files.count >= 9)
        for file in files {
            let documents = try Array(Yams.load_all(yaml: String(contentsOf: Self.deploy.appendingPathComponent(file), encoding: .utf8)))
            #expect(!documents.isEmpty && documents.allSatisfy { $0 is [String: Any] }, "\(file)")
        }
    }

    @Test func theConfigurationUsesOnlyKnownKeysAndEveryVariableNameWorks() async throws {
        let object =
            try JSONSerialization.jsonObject(with: Data(contentsOf: Self.deploy.appendingPathComponent("config/duban.json")))
            as! [String: Any]
        func keys(_ value: [String: Any], _ prefix: String) -> [String] {
            value.flatMap { key, child in (child as? [String: Any]).map { keys($0, prefix + key + ".") } ?? [prefix + key] }
        }
        for key in keys(object, "") {
            #expect(DeploymentConfiguration.knownKeys.contains(key), "deploy/config/duban.json: unknown key \(key)")
        }
        // The variable names given in the docs and files are the ones swift-configuration reads.
        let environment = [
            DeploymentConfiguration.environmentVariable(for: "broker.eventsIn"): "tcp://b:1",
            DeploymentConfiguration.environmentVariable(for: "databaseURL"): "postgres://x@y/z",
            DeploymentConfiguration.environmentVariable(for: "maxPayloadBytes"): "1024",
            DeploymentConfiguration.environmentVariable(for: "thresholds.city_control_value"): "33",
            DeploymentConfiguration.environmentVariable(for: "notify.events"): "tcp://n:2",
        ]
        #expect(
            environment.keys.sorted() == [
                "DUBAN_BROKER_EVENTS_IN", "DUBAN_DATABASE_URL", "DUBAN_MAX_PAYLOAD_BYTES", "DUBAN_NOTIFY_EVENTS",
                "DUBAN_THRESHOLDS_CITY_CONTROL_VALUE",
            ])
        let loaded = try await DeploymentConfiguration.load(environment: environment)
        #expect(loaded.broker.eventsIn == "tcp://b:1" && loaded.databaseURL == "postgres://x@y/z" && loaded.maxPayloadBytes == 1024)
        #expect(loaded.thresholds["city_control_value"] == 33 && loaded[.notify].events == "tcp://n:2")
    }

    @Test func systemdUnitsNameExistingFilesExecutablesAndFlags() throws {
        let directory = Self.deploy.appendingPathComponent("systemd").path
        let units = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".service") }
        #expect(
            Set(units) == [
                "duban-registry.service", "duban-ingest@.service", "duban-cases.service", "duban-notify.service", "duban-broker.service",
                "duban-web.service",
            ])
        for unit in units {
            let lines = try String(contentsOfFile: "\(directory)/\(unit)", encoding: .utf8).split(whereSeparator: \.isNewline).map(
                String.init)
            for line in lines where line.hasPrefix("EnvironmentFile=") {
                let name = (line.dropFirst("EnvironmentFile=".count).trimmingCharacters(in: .whitespaces) as NSString).lastPathComponent
                #expect(Self.exists("\(directory)/\(name)"), "\(unit): \(name) is not in deploy/systemd")
            }
            let exec = try #require(lines.first { $0.hasPrefix("ExecStart=") }, "\(unit) has no ExecStart")
            try Self.checkFlags(exec.dropFirst("ExecStart=".count).split(separator: " ").map(String.init), in: unit)
        }
        for file in try FileManager.default.contentsOfDirectory(atPath: directory) where file.hasSuffix(".env") {
            for name in try Self.envFile("\(directory)/\(file)").keys { Self.checkVariable(name, in: "systemd/\(file)") }
        }
    }

    @Test func theDockerfileCopiesWhatExistsAndBuildsEveryExecutable() async throws {
        let dockerfile = try Self.text("deploy/docker/Dockerfile")
        for line in dockerfile.split(whereSeparator: \.isNewline) where line.hasPrefix("COPY ") && !line.contains("--from") {
            let parts = line.split(separator: " ")
            for source in parts.dropFirst().dropLast() {
                #expect(Self.exists(Self.root.appendingPathComponent(String(source)).path), "Dockerfile: COPY \(source) does not exist")
            }
        }
        let built = Set(dockerfile.components(separatedBy: "--product ").dropFirst().map { String($0.prefix { !$0.isWhitespace }) })
        #expect(built == Self.products, "the image builds \(built), the package has \(Self.products)")
        let exposed = Set(
            dockerfile.split(whereSeparator: \.isNewline).filter { $0.hasPrefix("EXPOSE") }.flatMap {
                $0.split(separator: " ").dropFirst().compactMap { Int($0) }
            })
        let ports = Self.hostPorts(try await Self.configuration()).values.reduce(Set<Int>()) { $0.union($1) }
        #expect(ports.isSubset(of: exposed), "ports \(ports.subtracting(exposed)) are not exposed")
    }

    @Test func composeRunsEveryServiceTwoIngestInstancesTheBrokerAndPostgres() async throws {
        let compose = try #require(try Yams.load(yaml: Self.text("deploy/compose/compose.yaml")) as? [String: Any])
        let services = try #require(compose["services"] as? [String: [String: Any]])
        let configuration = try await Self.configuration()
        // Every host name of the configuration is a compose service.
        for host in Self.hostPorts(configuration).keys { #expect(services[host] != nil, "compose has no service \(host)") }
        #expect(services["postgres"] != nil && URL(string: configuration.databaseURL ?? "")?.host == "postgres")
        let ingest = services.filter { ($0.value["command"] as? [String])?.first == "duban-ingest" }
        #expect(ingest.count == 2 && ingest.values.allSatisfy { ($0["command"] as? [String])?.contains("--behind-broker") == true })
        let compiled = Set(services.compactMap { ($0.value["command"] as? [String])?.first }.filter { $0.hasPrefix("duban-") })
        #expect(compiled == ["duban-registry", "duban-ingest", "duban-cases", "duban-notify", "duban-broker", "duban-web"])
        let composeDirectory = Self.deploy.appendingPathComponent("compose")
        for (name, service) in services {
            if let command = service["command"] as? [String], command.first?.hasPrefix("duban") == true {
                try Self.checkFlags(command, in: "compose \(name)")
            }
            if let entrypoint = service["entrypoint"] as? [String] { #expect(Self.products.contains(entrypoint[0])) }
            // Published ports are the configuration's ports for that host.
            let published = Set(((service["ports"] as? [String]) ?? []).compactMap { Int($0.split(separator: ":").last!) })
            if !published.isEmpty {
                // The web console has no ZeroMQ ports: its HTTP port, on loopback for the host's TLS proxy.
                let expected = Self.hostPorts(configuration)[name] ?? (name == "web" ? [8080] : [])
                #expect(published.isSubset(of: expected), "compose \(name) publishes \(published), the configuration gives it \(expected)")
            }
            // ./keys is made by keys.sh (`duban keys init`) and never committed: checked in composeMountsOnlyEachContainersOwnSecret.
            for volume in (service["volumes"] as? [String]) ?? [] where volume.hasPrefix(".") && !volume.hasPrefix("./keys/") {
                let path = composeDirectory.appendingPathComponent(String(volume.split(separator: ":")[0])).standardized.path
                #expect(Self.exists(path), "compose \(name): \(path) does not exist")
            }
            for file in (service["env_file"] as? [String]) ?? [] {
                #expect(Self.exists(composeDirectory.appendingPathComponent(file).path))
                for variable in try Self.envFile(composeDirectory.appendingPathComponent(file).path).keys {
                    Self.checkVariable(variable, in: file)
                }
            }
            for variable in ((service["environment"] as? [String: Any]) ?? [:]).keys { Self.checkVariable(variable, in: "compose \(name)") }
            for dependency in ((service["depends_on"] as? [String: Any]) ?? [:]).keys { #expect(services[dependency] != nil) }
        }
        if let build = services["registry"]?["build"] as? [String: Any], let context = build["context"] as? String,
            let dockerfile = build["dockerfile"] as? String
        {
            #expect(Self.exists(composeDirectory.appendingPathComponent(context).appendingPathComponent(dockerfile).standardized.path))
        } else {
            Issue.record("compose does not build the image")
        }
    }

    @Test func kubernetesManifestsAreConsistentWithTheConfigurationAndThePlan() async throws {
        let directory = Self.deploy.appendingPathComponent("k8s")
        let kustomization = try #require(try Yams.load(yaml: Self.text("deploy/k8s/kustomization.yaml")) as? [String: Any])
        let resources = try #require(kustomization["resources"] as? [String])
        var objects: [[String: Any]] = []
        for resource in resources {
            let text = try String(contentsOf: directory.appendingPathComponent(resource), encoding: .utf8)
            objects += try Yams.load_all(yaml: text).compactMap { $0 as? [String: Any] }
        }
        // The key Secrets and ConfigMaps are made from a key directory, never committed (make-keys.sh).
        objects += try Self.keyObjects(from: TestKeys.make())
        func named(_ kind: String) -> [String: [String: Any]] {
            Dictionary(
                uniqueKeysWithValues: objects.filter { $0["kind"] as? String == kind }.map {
                    (($0["metadata"] as! [String: Any])["name"] as! String, $0)
                })
        }
        let configMaps = named("ConfigMap")
        let secrets = named("Secret")
        let services = named("Service")
        let claims = named("PersistentVolumeClaim")
        let workloads = named("Deployment").merging(named("StatefulSet")) { first, _ in first }
        #expect(Set(named("Deployment").keys) == ["registry", "ingest-1", "ingest-2", "cases", "notify", "broker", "web"])
        #expect(named("StatefulSet")["postgres"] != nil)

        // The ConfigMap carries exactly the configuration file and the bundled plan.
        let data = try #require(configMaps["duban-config"]?["data"] as? [String: String])
        #expect(data["duban.json"] == (try Self.text("deploy/config/duban.json")), "run deploy/k8s/make-configmap.sh")
        #expect(
            data["plan.yaml"] == (try Self.text("Shared/PlanFormat/Resources/chengzhong-2024-2026.yaml")),
            "run deploy/k8s/make-configmap.sh")
        let environment = try #require(configMaps["duban-env"]?["data"] as? [String: String])
        for name in environment.keys { Self.checkVariable(name, in: "k8s duban-env") }
        #expect(environment["DUBAN_CONFIG"] == "/etc/duban/duban.json")

        let configuration = try await Self.configuration()
        let ports = Self.hostPorts(configuration)
        for host in ports.keys { #expect(services[host] != nil, "no Service named \(host), as the configuration calls it") }
        #expect(services["postgres"] != nil)

        for (name, workload) in workloads {
            let spec = (((workload["spec"] as! [String: Any])["template"] as! [String: Any])["spec"] as! [String: Any])
            let templates = ((workload["spec"] as! [String: Any])["volumeClaimTemplates"] as? [[String: Any]]) ?? []
            let volumes = Set(((spec["volumes"] as? [[String: Any]]) ?? []).map { $0["name"] as! String })
                .union(templates.compactMap { ($0["metadata"] as? [String: Any])?["name"] as? String })
            for volume in (spec["volumes"] as? [[String: Any]]) ?? [] {
                if let map = (volume["configMap"] as? [String: Any])?["name"] as? String {
                    #expect(configMaps[map] != nil, "\(name): no ConfigMap \(map)")
                }
                if let claim = (volume["persistentVolumeClaim"] as? [String: Any])?["claimName"] as? String {
                    #expect(claims[claim] != nil, "\(name): no claim \(claim)")
                }
            }
            for container in spec["containers"] as! [[String: Any]] {
                if let command = container["command"] as? [String] { try Self.checkFlags(command, in: "k8s \(name)") }
                for mount in (container["volumeMounts"] as? [[String: Any]]) ?? [] {
                    #expect(volumes.contains(mount["name"] as! String), "\(name): mount of unknown volume \(mount["name"]!)")
                    if let key = mount["subPath"] as? String, mount["name"] as? String == "config" {
                        #expect(data[key] != nil, "\(name): ConfigMap has no \(key)")
                    }
                }
                for source in (container["envFrom"] as? [[String: Any]]) ?? [] {
                    if let map = (source["configMapRef"] as? [String: Any])?["name"] as? String { #expect(configMaps[map] != nil) }
                }
                for variable in (container["env"] as? [[String: Any]]) ?? [] {
                    Self.checkVariable(variable["name"] as! String, in: "k8s \(name)")
                    if let reference = ((variable["valueFrom"] as? [String: Any])?["secretKeyRef"]) as? [String: Any] {
                        let secret = secrets[reference["name"] as! String]
                        #expect(
                            (secret?["stringData"] as? [String: Any])?[reference["key"] as! String] != nil,
                            "\(name): secret \(reference) missing")
                    }
                }
                // A Service of the workload's name routes only to ports the container has, and the
                // configuration's ports for that host are all there.
                let containerPorts = (container["ports"] as? [[String: Any]]) ?? []
                let portNames = Set(containerPorts.compactMap { $0["name"] as? String })
                let portNumbers = Set(containerPorts.compactMap { $0["containerPort"] as? Int })
                if let service = services[name], let servicePorts = (service["spec"] as? [String: Any])?["ports"] as? [[String: Any]] {
                    for port in servicePorts {
                        let target = port["targetPort"]
                        #expect(
                            (target as? String).map(portNames.contains) ?? (target as? Int).map(portNumbers.contains) ?? false,
                            "\(name): targetPort \(target ?? "?")")
                    }
                    let exposed = Set(servicePorts.compactMap { $0["port"] as? Int })
                    #expect((ports[name] ?? []).isSubset(of: exposed), "Service \(name) lacks \((ports[name] ?? []).subtracting(exposed))")
                }
            }
        }
        // At least two ingest instances, each one pod at a time (its name is its stream's).
        let ingest = named("Deployment").filter { $0.key.hasPrefix("ingest-") }.compactMap { $0.value["spec"] as? [String: Any] }
        #expect(ingest.count >= 2)
        for spec in ingest {
            #expect(spec["replicas"] as? Int == 1 && (spec["strategy"] as? [String: Any])?["type"] as? String == "Recreate")
        }
    }

    /// The Secrets and ConfigMaps deploy/k8s/make-keys.sh makes from `keys`.
    static func keyObjects(from keys: TestKeys) throws -> [[String: Any]] {
        let yaml = try bash(#""$0" "$1""#, [deploy.appendingPathComponent("k8s/make-keys.sh").path, keys.path])
        return try Yams.load_all(yaml: String(decoding: yaml, as: UTF8.self)).compactMap { $0 as? [String: Any] }
    }

    @Test func systemdUnitsStartEveryServiceWithItsOwnCertificateOnly() throws {
        let directory = Self.deploy.appendingPathComponent("systemd").path
        // Each unit and the certificates of its host (the template's instance is `ingest-%i`).
        let units: [String: Set<String>] = [
            "duban-registry.service": ["registry"], "duban-cases.service": ["cases"], "duban-notify.service": ["notify"],
            "duban-broker.service": ["broker", "ingest"], "duban-ingest@.service": ["ingest-%i"],
            "duban-web.service": ["gateway"],
        ]
        for (unit, own) in units {
            let lines = try String(contentsOfFile: "\(directory)/\(unit)", encoding: .utf8).split(whereSeparator: \.isNewline).map(
                String.init)
            let exec = try #require(lines.first { $0.hasPrefix("ExecStart=") })
            let command = exec.dropFirst("ExecStart=".count).split(separator: " ").map(String.init)
            #expect(Self.keysArgument(command) == Self.keysDirectory, "\(unit) is not started with --keys \(Self.keysDirectory)")
            if unit.hasPrefix("duban-ingest@") { #expect(Self.instanceArgument(command) == "ingest-%i") }
            #expect(lines.contains("User=duban"), "\(unit) does not run as its own user")
            // Its own secret certificates, from root's credential store, handed to the unit by systemd; no other.
            let credentials = lines.filter { $0.hasPrefix("LoadCredential=") }.map {
                $0.dropFirst("LoadCredential=".count).split(separator: ":", maxSplits: 1).map(String.init)
            }
            #expect(Set(credentials.map(\.[0])) == Set(own.map { "\($0).key_secret" }), "\(unit) loads \(credentials)")
            for credential in credentials {
                #expect(credential.count == 2 && credential[1] == "/etc/credstore/\(credential[0])", "\(unit): \(credential)")
            }
        }
    }

    @Test func hostKeysGivesEachSystemdHostOnlyItsOwnSecret() throws {
        let keys = try TestKeys.make()
        let script = Self.deploy.appendingPathComponent("systemd/host-keys.sh").path
        let units = [
            "registry": "duban-registry.service", "cases": "duban-cases.service", "notify": "duban-notify.service",
            "broker": "duban-broker.service", "ingest-1": "duban-ingest@1.service", "ingest-2": "duban-ingest@2.service",
            "web": "duban-web.service",
        ]
        for (host, own) in Self.ownCertificates {
            // What the host unpacks under /etc.
            let root = try TestSupport.temporaryDirectory("duban-host-\(host)")
            try Self.bash(#""$0" "$1" "$2" | tar -x -C "$3""#, [script, keys.path, host, root])
            let credstore = "\(root)/credstore"
            let directory = "\(root)/\(Self.keysDirectory.dropFirst("/etc/".count))"
            #expect(Self.files(credstore) == Set(own.map { "\($0).key_secret" }), "\(host) gets \(Self.files(credstore))")
            #expect(Self.mode(credstore) == 0o700)
            for name in own {
                let path = "\(credstore)/\(name).key_secret"
                #expect(Self.mode(path) == 0o600)
                #expect(
                    FileManager.default.contents(atPath: path)
                        == FileManager.default.contents(atPath: keys.directory.secretCertificatePath(name)))
                // In the key directory: a link to where systemd puts the credential while the unit runs.
                #expect(
                    try FileManager.default.destinationOfSymbolicLink(atPath: "\(directory)/\(name).key_secret")
                        == "/run/credentials/\(units[host]!)/\(name).key_secret")
            }
            // No secret key anywhere else in what the host gets.
            for file in FileManager.default.enumerator(atPath: root)!.compactMap({ $0 as? String }) where !file.hasPrefix("credstore") {
                let path = "\(root)/\(file)"
                guard try FileManager.default.attributesOfItem(atPath: path)[.type] as? FileAttributeType == .typeRegular else { continue }
                #expect(!(try String(contentsOfFile: path, encoding: .utf8)).contains("secret-key"), "\(host): \(file) holds a secret key")
            }
            // The public side whole: every admitted principal, every service's public certificate.
            #expect(Self.files("\(directory)/clients") == Self.files(keys.directory.clientsPath))
            #expect(Self.files(directory).filter { $0.hasSuffix(".key") } == Self.files(keys.path).filter { $0.hasSuffix(".key") })
        }
    }

    @Test func composeMountsOnlyEachContainersOwnSecret() throws {
        let compose = try #require(try Yams.load(yaml: Self.text("deploy/compose/compose.yaml")) as? [String: Any])
        let services = try #require(compose["services"] as? [String: [String: Any]])
        let secrets = try #require(compose["secrets"] as? [String: [String: Any]])
        let keys = try TestKeys.make()
        var owners: [String: String] = [:]
        for (name, service) in services {
            let command = ((service["entrypoint"] as? [String]) ?? []) + ((service["command"] as? [String]) ?? [])
            guard command.first?.hasPrefix("duban") == true else { continue }
            #expect(Self.keysArgument(command) == Self.keysDirectory, "compose \(name) is not started with --keys \(Self.keysDirectory)")
            var own: Set<String> = []
            for secret in (service["secrets"] as? [[String: Any]]) ?? [] {
                let source = try #require(secret["source"] as? String)
                let target = try #require(secret["target"] as? String)
                #expect((target as NSString).deletingLastPathComponent == Self.keysDirectory && target.hasSuffix(".key_secret"))
                let certificate = ((target as NSString).lastPathComponent as NSString).deletingPathExtension
                // The secret is that certificate's file, one `duban keys init` makes, and no one else's.
                let file = try #require(secrets[source]?["file"] as? String, "compose has no secret \(source)")
                #expect(file == "./keys/\(certificate).key_secret", "compose secret \(source) is \(file), mounted as \(target)")
                #expect(
                    Self.exists(keys.directory.secretCertificatePath(certificate)), "duban keys init makes no \(certificate).key_secret")
                #expect(owners.updateValue(name, forKey: source) == nil, "compose: two services mount secret \(source)")
                own.insert(certificate)
            }
            #expect(own == (name == "cli" ? ["office"] : Self.ownCertificates[name]), "compose \(name) holds \(own)")
            if let instance = Self.instanceArgument(command) { #expect(own == [instance]) }
            // clients/ shared read-only, and nothing else of keys/ as a volume.
            let volumes = (service["volumes"] as? [String]) ?? []
            let clients = "./keys/clients:\(Self.keysDirectory)/clients:ro"
            #expect(volumes.contains(clients), "compose \(name) does not mount clients/")
            for volume in volumes where volume.hasPrefix("./keys") || volume.contains(Self.keysDirectory) {
                #expect(volume == clients, "compose \(name) mounts \(volume)")
            }
        }
        #expect(Set(owners.values) == Set(Self.ownCertificates.keys).union(["cli"]))
        #expect(Self.files(keys.directory.clientsPath).count > 10)
    }

    @Test func kubernetesPodsMountOnlyTheirOwnSecretAsDirectories() throws {
        let keys = try TestKeys.make()
        var madeSecrets: [String: [String: String]] = [:]
        var madeMaps: [String: [String: String]] = [:]
        for object in try Self.keyObjects(from: keys) {
            let name = ((object["metadata"] as? [String: Any])?["name"] as? String) ?? ""
            switch object["kind"] as? String {
            case "Secret": madeSecrets[name] = (object["data"] as? [String: String]) ?? [:]
            case "ConfigMap": madeMaps[name] = (object["data"] as? [String: String]) ?? [:]
            default: Issue.record("make-keys.sh made a \(object["kind"] ?? "?")")
            }
        }
        // One Secret per workload, holding exactly its own certificates as duban keys init wrote them.
        #expect(Set(madeSecrets.keys) == Set(Self.ownCertificates.keys.map { "duban-key-\($0)" }))
        for (workload, own) in Self.ownCertificates {
            let data = try #require(madeSecrets["duban-key-\(workload)"])
            #expect(Set(data.keys) == Set(own.map { "\($0).key_secret" }), "Secret duban-key-\(workload) holds \(data.keys)")
            for (key, value) in data {
                #expect(Data(base64Encoded: value) == FileManager.default.contents(atPath: "\(keys.path)/\(key)"), "\(key)")
            }
        }
        // ConfigMaps: public only; clients/ whole, each certificate exact.
        for (name, data) in madeMaps {
            for (key, value) in data {
                #expect(!key.hasSuffix(".key_secret") && !value.contains("secret-key"), "ConfigMap \(name) holds \(key)")
            }
        }
        let clients = try #require(madeMaps["duban-clients"])
        #expect(Set(clients.keys) == Self.files(keys.directory.clientsPath))
        for (key, value) in clients {
            #expect(value == (try String(contentsOfFile: "\(keys.directory.clientsPath)/\(key)", encoding: .utf8)), "duban-clients \(key)")
        }
        #expect(Set((madeMaps["duban-keys-public"] ?? [:]).keys).isSuperset(of: ["registry.key", "ingest.key", "broker.key"]))

        let directory = Self.deploy.appendingPathComponent("k8s")
        var workloads: [String: [String: Any]] = [:]
        for file in try FileManager.default.contentsOfDirectory(atPath: directory.path) where file.hasSuffix(".yaml") {
            let text = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
            for object in try Yams.load_all(yaml: text).compactMap({ $0 as? [String: Any] }) where object["kind"] as? String == "Deployment"
            {
                workloads[(object["metadata"] as! [String: Any])["name"] as! String] = object
            }
        }
        #expect(Set(workloads.keys) == Set(Self.ownCertificates.keys))
        for (name, workload) in workloads {
            let spec = (((workload["spec"] as! [String: Any])["template"] as! [String: Any])["spec"] as! [String: Any])
            let volumes = Dictionary(
                uniqueKeysWithValues: ((spec["volumes"] as? [[String: Any]]) ?? []).map { ($0["name"] as! String, $0) })
            // Every Secret it mounts, plain or projected: mode 0400; together its own certificates only.
            var mounted: [String] = []
            for volume in volumes.values {
                if let secret = volume["secret"] as? [String: Any] {
                    #expect(secret["defaultMode"] as? Int == 0o400, "\(name): Secret volume \(volume["name"]!) is not defaultMode 0400")
                    mounted.append((secret["secretName"] as? String) ?? "")
                }
                guard let projected = volume["projected"] as? [String: Any] else { continue }
                for source in (projected["sources"] as? [[String: Any]]) ?? [] {
                    if let secret = source["secret"] as? [String: Any] {
                        #expect(projected["defaultMode"] as? Int == 0o400, "\(name): projected Secret is not defaultMode 0400")
                        for item in (secret["items"] as? [[String: Any]]) ?? [] { #expect(item["mode"] == nil) }
                        mounted.append((secret["name"] as? String) ?? "")
                    }
                    if let map = (source["configMap"] as? [String: Any])?["name"] as? String {
                        #expect(madeMaps[map] != nil, "\(name): make-keys.sh makes no ConfigMap \(map)")
                    }
                }
            }
            #expect(mounted.allSatisfy { madeSecrets[$0] != nil }, "\(name) mounts \(mounted)")
            let held = Set(mounted.flatMap { (madeSecrets[$0] ?? [:]).keys.map { String($0.dropLast(".key_secret".count)) } })
            #expect(held == Self.ownCertificates[name], "\(name) holds \(held)")
            // Secret files belong to root: the non-root user reads them through fsGroup (0440, group 999).
            #expect((spec["securityContext"] as? [String: Any])?["fsGroup"] as? Int == 999, "\(name) has no fsGroup")
            for container in spec["containers"] as! [[String: Any]] {
                let command = (container["command"] as? [String]) ?? []
                #expect(Self.keysArgument(command) == Self.keysDirectory, "\(name) is not started with --keys \(Self.keysDirectory)")
                if let instance = Self.instanceArgument(command) { #expect(held == [instance]) }
                // DIR and DIR/clients as directories: a subPath mount never sees a Secret or ConfigMap change.
                let mounts = (container["volumeMounts"] as? [[String: Any]]) ?? []
                for mount in mounts where ((mount["mountPath"] as? String) ?? "").hasPrefix(Self.keysDirectory) {
                    #expect(mount["subPath"] == nil && mount["subPathExpr"] == nil, "\(name): \(mount["mountPath"]!) uses subPath")
                }
                func volume(at path: String) -> [String: Any]? {
                    mounts.first { $0["mountPath"] as? String == path }.flatMap { volumes[$0["name"] as! String] }
                }
                #expect(volume(at: Self.keysDirectory)?["projected"] != nil, "\(name): \(Self.keysDirectory) is not its key volume")
                #expect(
                    (volume(at: Self.keysDirectory + "/clients")?["configMap"] as? [String: Any])?["name"] as? String == "duban-clients",
                    "\(name): clients/ is not the duban-clients ConfigMap")
            }
        }
    }
}
