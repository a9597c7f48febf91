import Foundation
import GRDB
import Logging
import PlanFormat
import Prometheus
import Schema
import ServiceKit
import ServiceLifecycle
import Synchronization

/// Indicator ingestion: readings from the stations, the statistics behind the 13 targets,
/// evaluation against GB 3838 and GB 3095, and alerts.
public struct IngestService: DubanService {
    public static let name = ServiceName.ingest
    public static let topics = [
        IngestTypes.readingsAccepted, IngestTypes.indicatorUpdated, IngestTypes.alertRaised, IngestTypes.alertCleared,
    ]

    let store: any IngestStore
    let stations: [StationConfig]
    let rules: ReadingRules
    let standards: Standards
    /// The targets in force (the plan file, then the registry's plan, reloads included).
    let catalog: IndicatorCatalog
    /// The registry's plan, followed from its events; nil when the registry cannot be reached from here.
    let peers: PeerClients?
    let directory: RegistryDirectory?
    let clock: ServiceClock
    let logger: Logger
    let tick: Duration
    let derived: DerivedIndicators
    /// Readings accepted, refused and already held (`--metrics`).
    let readingCounters: (accepted: Counter, refused: Counter, duplicates: Counter)

    public static func migrations(_ migrator: inout DatabaseMigrator) { SQLiteIngestStore.migrations(&migrator) }

    /// SQLite by default; PostgreSQL, shared with other instances, when a database URL is configured.
    public static func openStorage(settings: ServiceSettings, logger: Logger) async throws -> any EventStorage {
        if let url = settings.deployment.databaseURL {
            return try await PostgresEventStorage.connect(url: url, stream: settings.instance, origin: name.rawValue, logger: logger)
        }
        return try ServiceStore(path: settings.databasePath, stream: settings.instance, origin: name.rawValue, migrations: migrations)
    }

    public init(context: ServiceContext) async throws {
        let stationsPath = context.deployment.stationsFile ?? StationsFile.bundledPath() ?? ""
        stations = try StationsFile.load(path: stationsPath)
        rules = ReadingRules(stations: stations)
        standards = try Standards.bundled()
        let planPath = context.deployment.planFile ?? PlanLoader.bundledPlanPath ?? ""
        let plan = try PlanLoader.load(path: planPath)
        // Targets follow the registry's plan (reloads included) once it has answered; the file holds
        // until then, so ingestion starts and judges while the registry is down.
        var peers: PeerClients?
        var directory: RegistryDirectory?
        do {
            let clients = try await PeerClients(deployment: context.deployment, peers: [.registry], from: "ingest", logger: context.logger)
            peers = clients
            directory = try RegistryDirectory(
                client: clients[.registry], events: context.deployment[.registry].events, store: context.storage as? ServiceStore,
                logger: context.logger)
        } catch {
            context.logger.warning(
                "the registry cannot be reached from here; targets stay those of the plan file", metadata: ["error": "\(error)"])
        }
        self.peers = peers
        self.directory = directory
        // HJ 663-2013's reporting precision of the PM2.5 annual mean (whole µg/m³ in every edition held).
        let pm25Decimals = standards.air.last?.parameters["pm25"]?.decimals
        catalog = IndicatorCatalog(
            plan: plan, thresholds: context.deployment.thresholds, decimals: pm25Decimals.map { ["pm25_annual_mean": $0] } ?? [:],
            directory: directory, logger: context.logger)
        clock = context.clock
        logger = context.logger
        tick = .milliseconds(Int(context.deployment.tickSeconds * 1000))
        readingCounters = (
            context.metrics.counter("duban_readings_accepted_total", help: "Readings stored."),
            context.metrics.counter("duban_readings_refused_total", help: "Readings refused, each with its index and reason."),
            context.metrics.counter("duban_readings_duplicate_total", help: "Readings already held (a retried batch).")
        )
        store = try IngestStores.open(context: context)
        // Alerts open, at every scrape (PostgreSQL or SQLite, through the store).
        let alertStore = store as any IngestStore
        context.metrics.onScrape { metrics in
            guard let active = try? await alertStore.activeAlerts() else { return }
            metrics.gauge("duban_alerts_open", help: "Alerts raised and not yet cleared.").set(Int64(active.count))
            // Each station's newest reading: "readings stopped" alerts in Prometheus.
            if let latest = try? await alertStore.latestTimes() {
                for (station, ms) in latest {
                    metrics.gauge(
                        "duban_station_last_reading_seconds", help: "Time of each station's newest reading (Unix seconds).",
                        labels: [("station", station)]
                    ).set(ms / 1000)
                }
            }
        }
        derived = DerivedIndicators(
            store: store, stations: stations, standards: standards, catalog: catalog, clock: clock, logger: logger)
        logger.info(
            "ingest ready", metadata: ["ingest.stations": "\(stations.map(\.id))", "ingest.storage": "\(store.eventStorage.location)"])
    }

    public func backgroundServices() -> [any Service] {
        // PostgreSQL's pool first, so that it stops after everything that uses it (the server stops
        // before any of these).
        let pool: [any Service] = (store.eventStorage as? PostgresEventStorage).map { [$0] } ?? []
        // Shut down in reverse: the directory stops before the clients it uses close.
        let registry: [any Service] = ([peers, directory] as [(any Service)?]).compactMap { $0 }
        return pool + registry + [
            PeriodicTask(name: "station-silence", interval: tick, logger: logger) { [store, stations, clock] in
                let transitions = AlertRules.silence(
                    latest: try await store.latestTimes(), stations: stations, active: try await store.activeAlerts(), now: clock.now())
                try await store.apply(transitions)
            },
            PeriodicTask(name: "water-trend", interval: tick, logger: logger) { [store, stations, standards, clock] in
                let now = clock.now()
                let nowMs = Int64(now.timeIntervalSince1970 * 1000)
                let from = nowMs - Int64(AlertRules.trendWindowDays * 86_400_000)
                for station in stations where station.kind == "water" && station.targetClass != nil {
                    let samples = try await store.samples(station: station.id, parameters: nil, from: from, to: nowMs).judged
                    let transitions = AlertRules.trend(
                        samples, station: station, standards: standards, active: try await store.activeAlerts(), now: now)
                    if !transitions.isEmpty { try await store.apply(transitions) }
                }
            },
            PeriodicTask(
                name: "derived-indicators", interval: .milliseconds(min(1000, Int(tick.components.seconds * 1000) + 1)), logger: logger
            ) {
                [derived] in
                try await derived.recomputeDirty()
            },
        ]
    }

    /// A station submits readings of its own stations only (PROTOCOL.md section 7).
    static func requireOwnStations(_ batch: CheckedBatch, _ context: RequestContext) throws {
        guard context.caller.role == .station, let principal = context.caller.principal else { return }
        let own = Set(principal.stations)
        if let index = batch.good.firstIndex(where: { !own.contains($0.station) }) {
            throw ErrorBody.permissionDenied(
                "站点证书 \(principal.name) 只能报送 \(principal.stations.joined(separator: "、")) 的读数，不能报送 \(batch.good[index].station)",
                field: "body.readings")
        }
    }

    public func register(_ handlers: inout HandlerTable) {
        let store = self.store
        let catalog = self.catalog
        let rules = self.rules
        let counters = readingCounters
        let standards = self.standards
        let clock = self.clock
        let derived = self.derived
        let stations = Dictionary(uniqueKeysWithValues: self.stations.map { ($0.id, $0) })
        let stationList = self.stations

        handlers.on(IngestTypes.stationList) { _, _ in ListReply(items: stationList.map(\.station)) }

        // Checking and normalising readings needs no storage: it runs ahead of the transaction of the
        // batch before (see HandlerTable's prepare).
        handlers.on(
            IngestTypes.readingSubmit,
            prepare: { request -> Result<CheckedBatch, ErrorBody> in
                guard request.readings.count <= IngestTypes.maxReadingsPerMessage else {
                    return .failure(
                        ErrorBody.invalidArgument(
                            "每条消息最多 \(IngestTypes.maxReadingsPerMessage) 条读数，本条有 \(request.readings.count) 条",
                            field: "body.readings"))
                }
                let now = clock.now()
                var batch = CheckedBatch(now: now)
                batch.good.reserveCapacity(request.readings.count)
                for (index, reading) in request.readings.enumerated() {
                    switch rules.check(reading, index: index, now: now) {
                    case .success(let normalized): batch.good.append(normalized)
                    case .failure(let item): batch.rejected.append(item)
                    }
                }
                return .success(batch)
            },
            handler: { checked, context in
                let batch = try checked.get()
                try Self.requireOwnStations(batch, context)
                let now = batch.now
                let reply = try await store.submit(
                    batch.good, rejected: batch.rejected, context: context, dayWindow: Self.dayWindow,
                    evaluate: { batches, active in
                        AlertRules.evaluate(batches, stations: stations, standards: standards, active: active, now: now)
                    })
                derived.markDirty(DerivedIndicators.keys(of: batch.good))
                counters.accepted.increment(by: Int64(reply.accepted))
                counters.refused.increment(by: Int64(reply.rejected.count))
                counters.duplicates.increment(by: Int64(reply.duplicates))
                return reply
            })

        handlers.on(IngestTypes.findingList) { request, _ in
            if let station = request.station, stations[station] == nil {
                throw ErrorBody.notFound("没有站点 \(ErrorBody.quote(station))", field: "body.station")
            }
            return ListReply(items: try await store.findings(request))
        }

        handlers.on(IngestTypes.indicatorList) { _, _ in
            var items: [Indicator] = []
            for definition in catalog.current().indicators { items.append(try await Self.view(definition, store: store, history: false)) }
            return ListReply(items: items)
        }

        handlers.on(IngestTypes.indicatorGet) { request, _ in
            guard let definition = catalog.current().byID[request.id] else {
                throw ErrorBody.notFound("没有指标 \(ErrorBody.quote(request.id))", field: "body.id")
            }
            return try await Self.view(definition, store: store, history: true)
        }

        handlers.on(IngestTypes.indicatorReport) { request, context in
            let known = catalog.current()
            let reporters = known.reporters
            guard let definition = known.byID[request.indicator] else {
                throw ErrorBody.notFound(
                    "没有指标 \(ErrorBody.quote(request.indicator))，可选：\(known.byID.keys.sorted().joined(separator: ", "))",
                    field: "body.indicator")
            }
            if context.caller.principal != nil, !context.caller.isOffice {
                let own = context.caller.unit ?? ""
                guard context.caller.role == .unit, reporters[definition.id]?.contains(own) == true else {
                    throw ErrorBody.permissionDenied(
                        "指标 \(definition.id) 由\((reporters[definition.id] ?? []).sorted().joined(separator: "、"))或专项工作组办公室报送，"
                            + "\(ErrorBody.quote(own.isEmpty ? context.caller.role.chineseName : own)) 无权报送",
                        field: "body.indicator")
                }
            }
            guard let end = IndicatorPeriod.end(request.period) else {
                throw ErrorBody.invalidArgument("period 应为 YYYY、YYYY-Qn 或 YYYY-MM", field: "body.period")
            }
            let today = Timestamp.districtDate(clock.now())
            // A quarter starts with its first month (2026-Q4: 2026-10-01), not its last.
            let quarter = request.period.contains("-Q") ? Int(request.period.suffix(1)) : nil
            let start =
                request.period.count == 4
                ? "\(request.period)-01-01"
                : quarter.map { "\(request.period.prefix(4))-" + String(format: "%02d", $0 * 3 - 2) + "-01" } ?? String(end.prefix(8))
                    + "01"
            guard start <= today else { throw ErrorBody.invalidArgument("报告期 \(request.period) 尚未开始", field: "body.period") }
            _ = end
            guard !request.source.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                throw ErrorBody.invalidArgument("请在 source 中注明数据来源", field: "body.source")
            }
            try definition.validate(request.value)
            let value = IndicatorValue(
                period: request.period, value: request.value, source: request.source, note: request.note,
                reportedAt: Timestamp.format(clock.now()))
            return try await store.record(value, for: definition, alerts: [], context: context)
        }

        handlers.on(IngestTypes.waterClass) { request, _ in
            guard let station = stations[request.station], station.kind == "water" else {
                throw ErrorBody.notFound("没有水质监测站点 \(ErrorBody.quote(request.station))", field: "body.station")
            }
            guard let from = Self.instant(request.from, endOfDay: false) else {
                throw ErrorBody.invalidArgument("from 应为 YYYY-MM-DD 或 RFC 3339 时间", field: "body.from")
            }
            guard let to = Self.instant(request.to, endOfDay: true) else {
                throw ErrorBody.invalidArgument("to 应为 YYYY-MM-DD 或 RFC 3339 时间", field: "body.to")
            }
            guard from <= to else { throw ErrorBody.invalidArgument("to 早于 from", field: "body.to") }
            let samples = try await store.samples(station: station.id, parameters: nil, from: from, to: to).judged
            guard let reply = Self.waterClass(samples, station: station, standards: standards, day: String(request.to.prefix(10))) else {
                throw ErrorBody.notFound(
                    "站点 \(station.id) 在 \(ErrorBody.quote(request.from)) 至 \(ErrorBody.quote(request.to)) 之间没有监测数据", field: "body.from")
            }
            return reply
        }

        handlers.on(ReadingsTypes.query) { request, _ in
            guard let station = stations[request.station] else {
                throw ErrorBody.notFound(
                    "没有监测站点 \(ErrorBody.quote(request.station))，可选：\(stations.keys.sorted().joined(separator: "、"))", field: "body.station")
            }
            guard let from = Self.instant(request.from, endOfDay: false) else {
                throw ErrorBody.invalidArgument("from 应为 YYYY-MM-DD 或 RFC 3339 时间", field: "body.from")
            }
            guard let to = Self.instant(request.to, endOfDay: true) else {
                throw ErrorBody.invalidArgument("to 应为 YYYY-MM-DD 或 RFC 3339 时间", field: "body.to")
            }
            guard from <= to else { throw ErrorBody.invalidArgument("to 早于 from", field: "body.to") }
            try PlausibleRange.dateOrInstant(request.from, field: "body.from")
            try PlausibleRange.dateOrInstant(request.to, field: "body.to")
            // The plan runs three years: a longer window would read more raw readings than any chart needs.
            guard to - from <= Int64(3 * 366 + 1) * 86_400_000 else {
                throw ErrorBody.invalidArgument("查询时段最长三年，请缩短 from 至 to 的范围", field: "body.from")
            }
            let parameters = request.parameters ?? station.parameters
            guard !parameters.isEmpty, parameters.count <= 30 else {
                throw ErrorBody.invalidArgument("parameters 应为 1 到 30 个监测项目", field: "body.parameters")
            }
            for (index, parameter) in parameters.enumerated() where !station.parameters.contains(parameter) {
                throw ErrorBody.notFound(
                    "站点 \(station.id) 不监测 \(ErrorBody.quote(parameter))，可选：\(station.parameters.joined(separator: "、"))",
                    field: "body.parameters[\(index)]")
            }
            let every = request.every ?? .day
            let span: Int64 = every == .hour ? 3_600_000 : every == .day ? 86_400_000 : 28 * 86_400_000
            guard (to - from) / span * Int64(parameters.count) <= Int64(ReadingsTypes.maxPoints) else {
                throw ErrorBody.invalidArgument(
                    "查询范围过大：按\(["hour": "小时", "day": "日", "month": "月"][every.rawValue]!)最多 \(ReadingsTypes.maxPoints) 个数据点，"
                        + "请缩短时段、减少项目或改用更长的间隔（every）", field: "body.from")
            }
            let samples = try await store.samples(station: station.id, parameters: parameters, from: from, to: to)
            return ReadingsQuery.answer(
                samples, station: station, parameters: parameters, from: from, to: to, every: every, standards: standards)
        }

        handlers.on(IngestTypes.airAnnual) { request, _ in
            guard let station = stations[request.station], station.kind == "air" else {
                throw ErrorBody.notFound("没有空气监测站点 \(ErrorBody.quote(request.station))", field: "body.station")
            }
            guard (2000...2100).contains(request.year), let start = Timestamp.startOfDistrictDay("\(request.year)-01-01"),
                let end = Timestamp.startOfDistrictDay("\(request.year + 1)-01-01")
            else { throw ErrorBody.invalidArgument("year 应在 2000 到 2100 之间", field: "body.year") }
            let samples = try await store.samples(
                station: station.id, parameters: ["pm25"], from: Int64(start.timeIntervalSince1970 * 1000),
                to: Int64(end.timeIntervalSince1970 * 1000) - 1
            ).judged
            return AirEvaluation.annual(
                parameter: "pm25", year: request.year, samples: samples.map { ($0.ts, $0.value) }, standards: standards,
                today: Timestamp.districtDate(clock.now()))
        }
    }

    /// A batch of readings checked and normalised, ready for its transaction.
    struct CheckedBatch: Sendable {
        var now: Date
        var good: [NormalizedReading] = []
        var rejected: [RejectedItem] = []
    }

    /// The district day (local midnight to midnight, ms) around an instant.
    @Sendable static func dayWindow(_ ms: Int64) -> (Int64, Int64) {
        let offset = Int64(Timestamp.districtOffset) * 1000
        let day: Int64 = 86_400_000
        let start = ((ms + offset) / day) * day - offset
        return (start, start + day)
    }

    /// `YYYY-MM-DD` (the day's start or end) or an RFC 3339 time, in ms.
    static func instant(_ text: String, endOfDay: Bool) -> Int64? {
        if text.count == 10, let day = Timestamp.startOfDistrictDay(text) {
            return Int64(day.timeIntervalSince1970 * 1000) + (endOfDay ? 86_400_000 - 1 : 0)
        }
        return Timestamp.parse(text).map { Int64($0.timeIntervalSince1970 * 1000) }
    }

    /// Single-factor class of the period's means; nil without samples.
    ///
    /// 《地表水环境质量评价办法（试行）》(环办〔2011〕22号, 一、（二）数据统计): a month is judged on
    /// the arithmetic mean of its samples, and a quarter or a year on the mean of its monthly
    /// values, not of every raw sample, so a month sampled hourly during a spill weighs no more than
    /// a month sampled once. Each parameter's value is therefore the mean of its monthly means (district
    /// calendar months); within one month that is simply the mean of its samples.
    static func waterClass(_ samples: [StoredSample], station: StationConfig, standards: Standards, day: String) -> WaterClassReply? {
        guard !samples.isEmpty else { return nil }
        var monthly: [String: [String: (sum: Double, count: Int)]] = [:]
        for sample in samples {
            let month = String(Timestamp.districtDate(Date(timeIntervalSince1970: Double(sample.ts) / 1000)).prefix(7))
            monthly[sample.parameter, default: [:]][month, default: (0, 0)].sum += sample.value
            monthly[sample.parameter, default: [:]][month, default: (0, 0)].count += 1
        }
        let means = monthly.mapValues { months -> Double in
            let mean = months.values.map { $0.sum / Double($0.count) }.reduce(0, +) / Double(months.count)
            return (mean * 10_000).rounded() / 10_000
        }
        let months = Set(monthly.values.flatMap(\.keys)).count
        guard let result = standards.evaluateWater(means, on: day, lake: station.isLake) else { return nil }
        return WaterClassReply(
            class: result.class.label, factors: result.factors, means: means, samples: Set(samples.map(\.ts)).count, months: months)
    }

    static func view(_ definition: IndicatorDefinition, store: any IngestStore, history: Bool) async throws -> Indicator {
        let values = try await store.indicatorValues(definition.id)
        let latest = SQLiteIngestStore.latest(values)
        var parts: [Indicator]?
        var attainment = definition.attainment(of: latest)
        if !definition.parts.isEmpty {
            var views: [Indicator] = []
            for part in definition.parts { views.append(try await view(part, store: store, history: history)) }
            parts = views
            // The parts decide once any has a value; until then a true/false reported for the whole
            // target (as before the parts existed) still does.
            if views.contains(where: { $0.latest != nil }) { attainment = IndicatorDefinition.combined(views.map(\.attainment)) }
        }
        let provisional = latest?.provisional == true
        let judged = definition.decimals == nil ? nil : definition.judged(latest?.value)
        return Indicator(
            id: definition.id, name: definition.name, target: definition.target.text, operator: definition.target.op,
            threshold: definition.threshold,
            unit: definition.target.unit, tasks: definition.target.tasks, latest: latest,
            attainment: attainment,
            history: history ? values : nil, projection: history ? IndicatorPeriod.projection(values).map(JSONValue.number) : nil,
            provisional: provisional ? true : nil, provisionalText: provisional ? (latest?.note ?? "有效数据不足，暂不评价") : nil,
            judgedValue: judged, parts: parts)
    }
}

/// Indicators that follow from readings (六一桥's annual class, the PM2.5 annual mean), recomputed
/// for stations that received readings, at most about once a second each.
final class DerivedIndicators: Sendable {
    /// A station's year to recompute: the years the readings fell in, so that December's readings
    /// arriving in January still complete (and can make valid) the year they belong to.
    struct Key: Hashable, Sendable, Comparable {
        var station: String
        var year: Int
        static func < (a: Key, b: Key) -> Bool { (a.station, a.year) < (b.station, b.year) }
    }

    /// The district year of an instant in ms.
    static func year(_ ms: Int64) -> Int { Int(Timestamp.districtDate(Date(timeIntervalSince1970: Double(ms) / 1000)).prefix(4)) ?? 0 }

    private let dirty = Mutex<Set<Key>>([])
    let store: any IngestStore
    let stations: [StationConfig]
    let standards: Standards
    let catalog: IndicatorCatalog
    let clock: ServiceClock
    let logger: Logger

    init(
        store: any IngestStore, stations: [StationConfig], standards: Standards, catalog: IndicatorCatalog, clock: ServiceClock,
        logger: Logger
    ) {
        self.store = store
        self.stations = stations
        self.standards = standards
        self.catalog = catalog
        self.clock = clock
        self.logger = logger
    }

    func markDirty(_ keys: Set<Key>) { dirty.withLock { $0.formUnion(keys) } }

    /// The station years of readings. A year is worked out once per run of readings on the same
    /// district day: formatting a date for each of a batch's thousand readings cost more than the
    /// rest of the bookkeeping.
    static func keys(of readings: [NormalizedReading]) -> Set<Key> {
        var keys: Set<Key> = []
        var last: (station: String, day: Int64)?
        for reading in readings {
            let shifted = reading.ts + Int64(Timestamp.districtOffset) * 1000
            let day = shifted >= 0 ? shifted / 86_400_000 : (shifted - 86_399_999) / 86_400_000
            if let last, last.day == day, last.station == reading.station { continue }
            last = (reading.station, day)
            keys.insert(Key(station: reading.station, year: year(reading.ts)))
        }
        return keys
    }

    func recomputeDirty() async throws {
        let pending = dirty.withLock { set -> Set<Key> in
            defer { set.removeAll() }
            return set
        }
        let thisYear = Self.year(Int64(clock.now().timeIntervalSince1970 * 1000))
        for key in pending.sorted() where key.year <= thisYear {
            guard let station = stations.first(where: { $0.id == key.station }) else { continue }
            do {
                try await recompute(station, year: key.year)
            } catch {
                markDirty([key])
                throw error
            }
        }
    }

    /// A station's derived indicator for one year (the year in progress, or one already past).
    func recompute(_ station: StationConfig, year: Int) async throws {
        let now = clock.now()
        let today = Timestamp.districtDate(now)
        // A past year is judged as of its last day (the standard then in force).
        let asOf = min(today, "\(year)-12-31")
        guard let start = Timestamp.startOfDistrictDay("\(year)-01-01"), let end = Timestamp.startOfDistrictDay("\(year + 1)-01-01")
        else { return }
        let from = Int64(start.timeIntervalSince1970 * 1000)
        let to = min(Int64(now.timeIntervalSince1970 * 1000), Int64(end.timeIntervalSince1970 * 1000) - 1)
        let at = Timestamp.format(now)
        let indicators = catalog.current().indicators
        if station.kind == "water", let definition = indicators.first(where: { $0.id == "water_quality_\(station.id)" }) {
            let samples = try await store.samples(station: station.id, parameters: nil, from: from, to: to).judged
            guard let result = IngestService.waterClass(samples, station: station, standards: standards, day: asOf) else { return }
            let existing = try await store.indicatorValues(definition.id).first { $0.period == "\(year)" }
            let value = IndicatorValue(
                period: "\(year)", value: .string(result.class), source: "readings:\(station.id)",
                note: "年均值（各月均值的算术平均）单因子评价，决定因子 \(result.factors.joined(separator: "、"))，"
                    + "\(result.months ?? 0) 个月、样本 \(result.samples) 个",
                reportedAt: at)
            guard existing?.value != value.value || existing?.note != value.note else { return }
            var alerts: [AlertTransition] = []
            // The live alert follows the year in progress only; a past year's class is a record.
            if "\(year)" == today.prefix(4), let target = station.targetClass.flatMap(WaterClass.init(label:)),
                let cls = WaterClass(label: result.class)
            {
                let key = "mean_class_exceeded:\(station.id)"
                let active = try await store.activeAlerts().contains(key)
                if (cls > target) != active {
                    alerts.append(
                        AlertTransition(
                            key: key, raise: cls > target,
                            body: AlertBody(
                                alert: key, kind: "mean_class_exceeded", station: station.id, parameter: result.factors.first,
                                indicator: definition.id,
                                severity: "alert",
                                message: cls > target
                                    ? "\(station.name)\(year)年均值为\(cls.label)类，劣于目标\(target.label)类"
                                        + "（\(result.factors.joined(separator: "、"))）"
                                    : "\(station.name)\(year)年均值恢复至\(cls.label)类",
                                value: nil, limit: nil, at: at)))
                }
            }
            _ = try await store.record(value, for: definition, alerts: alerts, context: nil)
        }
        if station.kind == "air", station.parameters.contains("pm25"), stations.first(where: { $0.kind == "air" })?.id == station.id,
            let definition = indicators.first(where: { $0.id == "pm25_annual_mean" })
        {
            let samples = try await store.samples(station: station.id, parameters: ["pm25"], from: from, to: to).judged
            let annual = AirEvaluation.annual(
                parameter: "pm25", year: year, samples: samples.map { ($0.ts, $0.value) }, standards: standards, today: today)
            // The value as HJ 663-2013 reports it (whole µg/m³, rounded half-to-even): a mean shown to
            // one decimal and rounded again would round twice (35.46 → 35.5 → 36 instead of 35).
            guard let mean = annual.pm25Judged else { return }
            let existing = try await store.indicatorValues(definition.id).first { $0.period == "\(year)" }
            let value = IndicatorValue(
                period: "\(year)", value: .number(mean), source: "readings:\(station.id)",
                note: annual.valid
                    ? "有效日 \(annual.validDays) 天，年均值有效（均值 \(annual.pm25Mean.map { "\($0)" } ?? "—") µg/m³，按HJ 663修约）"
                    : annual.provisionalText,
                reportedAt: at, provisional: !annual.valid)
            guard existing?.value != value.value || existing?.note != value.note || existing?.provisional != value.provisional else {
                return
            }
            _ = try await store.record(value, for: definition, alerts: [], context: nil)
        }
    }
}

/// Chooses ingestion's storage: SQLite by default, PostgreSQL when a database URL is configured.
enum IngestStores {
    static func open(context: ServiceContext) throws -> any IngestStore {
        if let store = context.storage as? ServiceStore { return SQLiteIngestStore(store: store) }
        if let storage = context.storage as? PostgresEventStorage { return PostgresIngestStore(storage: storage) }
        throw ErrorBody.internal("不支持的存储类型 \(type(of: context.storage))")
    }
}
