import ArgumentParser
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Histogram

/// gRPC-swift 2 doing what Duban's `task.get` does: decode a small JSON request, encode the task as
/// JSON, send it back. The message bodies are JSON through a byte serializer (not protobuf), so the
/// comparison measures the transports and runtimes, not JSON against protobuf.
@main
struct GRPCReference: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grpc-reference",
        abstract: "gRPC-swift 2 unary reference for the Duban benchmarks.",
        subcommands: [Serve.self, Client.self]
    )
}

struct Serve: AsyncParsableCommand {
    @Option(help: "Port to listen on (0 picks a free one; the chosen port is printed as `port N`).")
    var port: Int = 0

    @Option(help: "A JSON file holding the task the reply carries (a captured task.get body).")
    var replyFile: String

    func run() async throws {
        let task = try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: URL(fileURLWithPath: replyFile)))
        let server = GRPCServer(
            transport: .http2NIOPosix(address: .ipv4(host: "127.0.0.1", port: port), transportSecurity: .plaintext),
            services: [TaskService(task: task)]
        )
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await server.serve() }
            if let address = try await server.listeningAddress?.ipv4 {
                // Unbuffered: the benchmark reads this line from a pipe while the server runs.
                FileHandle.standardOutput.write(Data("port \(address.port)\n".utf8))
            }
        }
    }
}

struct Client: AsyncParsableCommand {
    @Option var port: Int
    @Option(help: "Sequential calls measured for latency.") var calls: Int = 20_000
    @Option(help: "Calls made for the pipelined throughput figure.") var pipelinedCalls: Int = 20_000
    @Option(help: "Calls in flight for the throughput figure.") var concurrency: Int = 64
    @Option var warmup: Int = 2_000

    func run() async throws {
        try await withGRPCClient(
            transport: .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext)
        ) { client in
            let request = try JSONEncoder().encode(TaskGetRequest(id: "3.1"))
            let bytes = [UInt8](request)
            for _ in 0..<warmup { _ = try await call(client, bytes) }

            var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
            for _ in 0..<calls {
                let start = DispatchTime.now().uptimeNanoseconds
                _ = try await call(client, bytes)
                histogram.record(DispatchTime.now().uptimeNanoseconds - start)
            }

            let perWorker = max(1, pipelinedCalls / concurrency)
            let start = DispatchTime.now().uptimeNanoseconds
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<concurrency {
                    group.addTask { for _ in 0..<perWorker { _ = try await call(client, bytes) } }
                }
                try await group.waitForAll()
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            let result: [String: Double] = [
                "p50_us": Double(histogram.valueAtPercentile(50)) / 1000,
                "p99_us": Double(histogram.valueAtPercentile(99)) / 1000,
                "p999_us": Double(histogram.valueAtPercentile(99.9)) / 1000,
                "calls_per_s": Double(perWorker * concurrency) / seconds,
                "concurrency": Double(concurrency),
            ]
            let json = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
            print(String(decoding: json, as: UTF8.self))
        }
    }

    private func call(_ client: GRPCClient<HTTP2ClientTransport.Posix>, _ bytes: [UInt8]) async throws -> Int {
        try await client.unary(
            request: ClientRequest(message: bytes),
            descriptor: taskGet,
            serializer: BytesSerializer(),
            deserializer: BytesDeserializer(),
            options: .defaults
        ) { response in try response.message.count }
    }
}

let taskGet = MethodDescriptor(fullyQualifiedService: "duban.registry.Registry", method: "TaskGet")

struct TaskGetRequest: Codable { var id: String }

struct TaskService: RegistrableRPCService {
    let task: JSONValue

    func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        let task = self.task
        router.registerHandler(forMethod: taskGet, deserializer: BytesDeserializer(), serializer: BytesSerializer()) {
            streamingRequest, _ in
            let request = try await ServerRequest(stream: streamingRequest)
            let decoded = try JSONDecoder().decode(TaskGetRequest.self, from: Data(request.message))
            guard !decoded.id.isEmpty else { throw RPCError(code: .invalidArgument, message: "id is empty") }
            let reply = try JSONEncoder().encode(task)
            return StreamingServerResponse(single: ServerResponse(message: [UInt8](reply)))
        }
    }
}

struct BytesSerializer: MessageSerializer {
    func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes { Bytes(message) }
}

struct BytesDeserializer: MessageDeserializer {
    func deserialize<Bytes: GRPCContiguousBytes>(_ bytes: Bytes) throws -> [UInt8] {
        bytes.withUnsafeBytes { Array($0) }
    }
}

/// Any JSON document, kept as a Codable tree so each reply is encoded afresh, as Duban's is.
enum JSONValue: Codable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}
