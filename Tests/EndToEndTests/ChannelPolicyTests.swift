import DubanTesting
import Foundation
import Schema
import Testing

@testable import Notifications

/// What a channel may reach, without a service: the file channels' directory against links planted in it.
@Suite struct ChannelPolicyTests {
    @Test func fileTargetsStayInsideTheDirectoryThroughLinksPlantedAtAnyTime() throws {
        let root = try TestSupport.temporaryDirectory()
        let outside = try TestSupport.temporaryDirectory()
        let files = FileChannelDirectory(path: "\(root)/channels")
        try files.prepare()
        let manager = FileManager.default

        try files.validate("notices.jsonl")
        try files.validate("./eco/2026/notices.jsonl")
        for bad in ["/etc/passwd", "../notices.jsonl", "eco/../../notices.jsonl", "", "eco/", "..", "."] {
            #expect(throws: FileChannelDirectory.Refusal.notRelative, "\(bad)") { try files.validate(bad) }
        }
        // A link out of the directory, as a directory or as the file itself.
        try manager.createSymbolicLink(atPath: "\(root)/channels/out", withDestinationPath: outside)
        #expect(throws: FileChannelDirectory.Refusal.escapes) { try files.validate("out/notices.jsonl") }
        try manager.createSymbolicLink(atPath: "\(root)/channels/passwd.jsonl", withDestinationPath: "\(outside)/passwd")
        #expect(throws: FileChannelDirectory.Refusal.escapes) { try files.validate("passwd.jsonl") }
        // A link that stays inside is fine.
        try manager.createDirectory(atPath: "\(root)/channels/real", withIntermediateDirectories: false)
        try manager.createSymbolicLink(atPath: "\(root)/channels/alias", withDestinationPath: "\(root)/channels/real")
        try files.validate("alias/notices.jsonl")
        try files.append(Data("one\n".utf8), to: "alias/notices.jsonl")
        #expect(try String(contentsOfFile: "\(root)/channels/real/notices.jsonl", encoding: .utf8) == "one\n")

        // Valid when set; then the directory is swapped for a link out: nothing is written outside.
        try files.append(Data("first\n".utf8), to: "eco/2026/notices.jsonl")
        #expect(try String(contentsOfFile: "\(root)/channels/eco/2026/notices.jsonl", encoding: .utf8) == "first\n")
        try manager.removeItem(atPath: "\(root)/channels/eco")
        try manager.createSymbolicLink(atPath: "\(root)/channels/eco", withDestinationPath: outside)
        #expect(throws: FileChannelDirectory.Refusal.escapes) { try files.append(Data("second\n".utf8), to: "eco/2026/notices.jsonl") }
        #expect(!manager.fileExists(atPath: "\(outside)/2026"), "no directory was made outside")
        // The file itself replaced by a link out.
        try files.append(Data("x\n".utf8), to: "plain.jsonl")
        try manager.removeItem(atPath: "\(root)/channels/plain.jsonl")
        try manager.createSymbolicLink(atPath: "\(root)/channels/plain.jsonl", withDestinationPath: "\(outside)/plain.jsonl")
        #expect(throws: FileChannelDirectory.Refusal.escapes) { try files.append(Data("y\n".utf8), to: "plain.jsonl") }
        #expect(!manager.fileExists(atPath: "\(outside)/plain.jsonl"))
        // A FIFO is not waited on, and not written.
        #expect(mkfifo("\(root)/channels/pipe.jsonl", 0o600) == 0)
        #expect(throws: FileChannelDirectory.Refusal.self) { try files.append(Data("z\n".utf8), to: "pipe.jsonl") }
        #expect(try manager.contentsOfDirectory(atPath: outside).isEmpty)
    }
}
