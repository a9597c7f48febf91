import json, uuid, zmq, time
ctx = zmq.Context()
def call(port, type, body, frm, key=True):
    s = ctx.socket(zmq.REQ); s.setsockopt(zmq.RCVTIMEO, 5000); s.connect(f"tcp://127.0.0.1:{port}")
    env = {"v": 1, "id": str(uuid.uuid4()), "type": type, "from": frm, "body": body}
    if key: env["key"] = str(uuid.uuid4())
    s.send(json.dumps(env, ensure_ascii=False).encode()); r = json.loads(s.recv()); s.close()
    if not r.get("ok"): print(type, r.get("error"))
    return r.get("body")
O = "专项工作组办公室"
for task, unit, pct in [("10", "区城乡建设局", 40), ("1", "区委组织部", 60), ("8", "区生态环境局", 75)]:
    for month in ["2026-09", "2026-10"]:
        call(27101, "progress.report", {"task": task, "period": month, "unit": unit, "percent": pct - (10 if month == "2026-09" else 0),
             "summary": f"{month} 完成阶段任务", "problems": "资金到位慢", "evidence": [{"name": "照片", "uri": "https://files.example/a.jpg"}]}, unit)
call(27101, "escalation.record", {"unit": "区城乡建设局", "level": "notice", "reason": "混错接整治滞后", "tasks": ["10"]}, O)
ids = []
for i in range(3):
    c = call(27301, "case.open", {"source": "public_report", "title": f"南川河岸垃圾倾倒{i}", "unit": "区城市管理局", "deadline": "2026-11-10" if i == 0 else "2026-12-31", "task": "12"}, O)
    ids.append(c["id"])
call(27301, "case.transition", {"id": ids[1], "action": "assign", "comment": "交办"}, O)
call(27301, "case.transition", {"id": ids[1], "action": "start"}, "区城市管理局")
csv = "编号,来源,问题标题,责任单位,完成时限,所属任务,批次\n,sewer_misconnection,混错接点位1,区城乡建设局,2026-12-31,10,第一批\n,sewer_misconnection,混错接点位2,区城乡建设局,2026-12-31,10,第一批\n"
r = call(27301, "case.import", {"content": csv}, O)
readings = [{"station": "liuyiqiao", "parameter": "nh3n", "ts": f"2026-11-{d:02d}T{h:02d}:00:00+08:00", "value": 0.5 + 0.01 * h} for d in range(15, 21) for h in range(0, 24, 4) if not (d == 20 and h > 8)]
readings.append({"station": "liuyiqiao", "parameter": "nh3n", "ts": "2026-11-20T09:00:00+08:00", "value": 1.3})
call(27201, "reading.submit", {"readings": readings}, "六一桥自动站")
call(27401, "channel.set", {"channel": {"name": "办公室群", "kind": "file", "target": "office.jsonl", "units": [O]}}, O)
time.sleep(4)
n = call(27401, "notice.list", {}, O, key=False)
print("notices", len(n["items"]))
print("cases", len(call(27301, "case.list", {}, O, key=False)["items"]))
