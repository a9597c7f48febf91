#!/usr/bin/env python3
"""Browser test of duban-web in headless Chromium (Debian's chromium and chromium-driver, Selenium).

Usage: web_browser.py BASE_URL OUTPUT_DIR TASK_ID CASE_ID NOTICE_ID
Environment: WEB_PASSWORD (the test accounts' password: office1 = the office, eco = 区生态环境局).

1. The office opens the dashboard (1920x1080) and keeps it open.
2. 区生态环境局, on a phone-sized window (360x800), reports progress on TASK_ID with a PDF.
3. The office's dashboard shows the report within 2 s, without a reload.
4. The unit's case page has none of the office's buttons; a forged POST of one gets 403.
5. The unit opens NOTICE_ID from its chat link on the phone and 签收 it in one tap.
6. Someone without an account reports a problem (群众举报) on a phone, keeps the number and the
   code, and looks the report up with them; the page fits 360 px without scrolling sideways.
7. The office's 监测 page and the unit's 督办单 page are shot.
8. The office imports a GBK ledger CSV with two broken lines: the preview names both lines before
   anything is written; confirmed, the two good ones are in the ledger.
Screenshots of each page at 1920x1080 and 360x800 go to OUTPUT_DIR. Prints one JSON line.
"""
import json
import os
import sys
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

base, out, task_id, case_id, notice_id = sys.argv[1:6]
password = os.environ["WEB_PASSWORD"]
os.makedirs(out, exist_ok=True)
result = {"ok": False, "screenshots": []}


def browser(width, height):
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", f"--window-size={width},{height}",
                "--lang=zh-CN"):
        options.add_argument(arg)
    options.binary_location = "/usr/bin/chromium"
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    # The page's own viewport at exactly this size (the window's size would include the browser's frame).
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})
    return driver


def login(driver, name):
    driver.get(base + "/login")
    driver.find_element(By.ID, "name").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "login-submit").click()
    WebDriverWait(driver, 5).until(lambda d: "/login" not in d.current_url)


def shot(driver, name):
    path = os.path.join(out, name + ".png")
    driver.save_screenshot(path)
    result["screenshots"].append(path)


def emit():
    """The result, printed (the Swift test reads the last line) and kept beside the screenshots."""
    with open(os.path.join(out, "result.json"), "w") as f:
        json.dump(result, f, ensure_ascii=False)
    print(json.dumps(result, ensure_ascii=False))


def check(condition, message):
    if not condition:
        result["error"] = message
        emit()
        sys.exit(1)


office = browser(1920, 1080)
unit = browser(360, 800)
try:
    login(office, "office1")
    office.get(base + "/")
    WebDriverWait(office, 5).until(lambda d: "已连接" in d.find_element(By.ID, "live-status").text)
    shot(office, "overview-office-1920x1080")
    # A marker that a reload would erase.
    office.execute_script("window.__dubanMarker = 42;")

    login(unit, "eco")
    unit.get(base + "/")
    shot(unit, "overview-unit-360x800")
    unit.get(base + "/tasks/" + task_id)
    check("报送本单位进展" in unit.page_source, "the unit's task page has no report form")
    shot(unit, "task-unit-360x800")
    evidence = os.path.join(tempfile.mkdtemp(), "六一桥排查报告.pdf")
    with open(evidence, "wb") as f:
        f.write("%PDF-1.4\n% 六一桥排口排查报告\n".encode("utf-8"))
    period = unit.find_element(By.ID, "period")
    period.clear()
    period.send_keys("2026-11")
    unit.find_element(By.ID, "percent").send_keys("60")
    unit.find_element(By.ID, "summary").send_keys("完成六一桥段排口排查，整改方案已报区政府")
    unit.find_element(By.ID, "evidence").send_keys(evidence)
    unit.find_element(By.ID, "report-submit").click()
    submitted = time.monotonic()
    WebDriverWait(unit, 5).until(lambda d: "进展已报送" in d.page_source)
    check("六一桥排查报告.pdf" in unit.page_source, "the report's evidence is not on the task page")
    shot(unit, "task-reported-360x800")

    expected = "区生态环境局 报送任务 " + task_id
    WebDriverWait(office, 5, poll_frequency=0.05).until(lambda d: expected in d.find_element(By.ID, "live").text)
    result["dashboard_seconds"] = round(time.monotonic() - submitted, 3)
    check(result["dashboard_seconds"] <= 2.0, "the dashboard took %.2f s" % result["dashboard_seconds"])
    check(office.execute_script("return window.__dubanMarker;") == 42, "the dashboard reloaded")
    shot(office, "overview-live-1920x1080")

    # The unit sees the case but not the office's actions; a forged POST of one is refused.
    unit.get(base + "/cases/" + case_id)
    check(len(unit.find_elements(By.ID, "action-assign")) == 0, "the unit sees the office's assign button")
    shot(unit, "case-unit-360x800")
    csrf = unit.find_element(By.NAME, "_csrf").get_attribute("value")
    status = unit.execute_async_script("""
        var done = arguments[arguments.length - 1];
        fetch(arguments[0], {method: "POST", credentials: "same-origin", redirect: "manual",
            headers: {"Content-Type": "application/x-www-form-urlencoded"},
            body: "_csrf=" + encodeURIComponent(arguments[1]) + "&action=assign"})
          .then(function (r) { done(r.status); }, function (e) { done(String(e)); });
    """, base + "/cases/" + case_id + "/transition", csrf)
    result["forged_status"] = status
    check(status == 403, "a forged POST got %s" % status)

    # 签收 from the chat link, on the phone.
    unit.get(base + "/notices/" + notice_id)
    shot(unit, "notice-unit-360x800")
    unit.find_element(By.ID, "ack-" + notice_id).click()
    WebDriverWait(unit, 5).until(lambda d: "已签收" in d.find_element(By.ID, "flash").text)
    check(len(unit.find_elements(By.ID, "ack-" + notice_id)) == 0, "the 签收 button is still there")
    shot(unit, "notice-acked-360x800")

    office.get(base + "/cases/" + case_id)
    check(len(office.find_elements(By.ID, "action-assign")) == 1, "the office has no assign button")
    shot(office, "case-office-1920x1080")
    for name, driver in (("notices-unit-360x800", unit), ("tasks-office-1920x1080", office)):
        driver.get(base + ("/notices" if driver is unit else "/tasks"))
        shot(driver, name)
    # 群众举报 on a phone, without an account.
    public = browser(360, 800)
    try:
        public.get(base + "/report")
        public.find_element(By.ID, "title").send_keys("六一桥夜间偷排")
        public.find_element(By.ID, "description").send_keys("夜间向六一桥段河道排放黑色污水，气味刺鼻")
        public.find_element(By.ID, "location").send_keys("六一桥东侧")
        public.find_element(By.ID, "phone").send_keys("13800138000")
        width = public.execute_script("return document.documentElement.scrollWidth;")
        check(width <= 360, "the report page is %s px wide on a 360 px phone" % width)
        shot(public, "report-public-360x800")
        public.find_element(By.ID, "report-submit").click()
        WebDriverWait(public, 5).until(lambda d: "举报已受理" in d.page_source)
        reference = public.find_element(By.ID, "reference").text
        code = public.find_element(By.ID, "code").text
        check(reference.startswith("JB-") and len(code) >= 8, "no reference and code on the receipt: %r %r" % (reference, code))
        check("13800138000" not in public.page_source, "the receipt shows the phone number")
        shot(public, "report-receipt-360x800")
        public.get(base + "/report/status")
        public.find_element(By.ID, "reference").send_keys(reference)
        public.find_element(By.ID, "code").send_keys(code)
        public.find_element(By.ID, "status-submit").click()
        WebDriverWait(public, 5).until(lambda d: len(d.find_elements(By.ID, "complaint-state")) == 1)
        check("尚未答复" in public.page_source, "the look-up shows no state")
        shot(public, "report-status-360x800")
        result["public_reference"] = reference
    finally:
        public.quit()

    office.get(base + "/monitoring")
    check("监测" in office.title, "no monitoring page")
    shot(office, "monitoring-office-1920x1080")
    unit.get(base + "/supervision")
    shot(unit, "supervision-unit-360x800")

    # 8. The office imports a ledger CSV with broken lines: the preview lists them, nothing is
    # written until it confirms, and then only the good lines are.
    ledger = os.path.join(tempfile.mkdtemp(), "浏览器导入台账.csv")
    with open(ledger, "w", encoding="gbk", newline="") as f:
        f.write("来源,问题标题,责任单位,完成时限\r\n")
        f.write("混错接点位,浏览器导入点位甲,区城乡建设局,2026/12/31\r\n")
        f.write("混错接点位,浏览器导入点位乙,区农业局,2026-12-31\r\n")
        f.write("混错接点位,浏览器导入点位丙,区城乡建设局,2026年12月31日\r\n")
        f.write("混错接点位,浏览器导入点位丁,区城乡建设局,明年\r\n")
    office.get(base + "/cases?q=" + "浏览器导入")
    check(len(office.find_elements(By.CSS_SELECTOR, "#cases tr")) == 1, "imported rows are in the ledger before the import")
    office.find_element(By.ID, "import-link").click()
    office.find_element(By.ID, "import-file").send_keys(ledger)
    office.find_element(By.ID, "import-preview").click()
    WebDriverWait(office, 10).until(lambda d: len(d.find_elements(By.ID, "import-summary")) == 1)
    refused = [row.text for row in office.find_elements(By.CSS_SELECTOR, "#import-refused tr")][1:]
    result["preview_refused"] = refused
    check(len(refused) == 2 and refused[0].startswith("第 3 行") and "区农业农村局" in refused[0]
          and refused[1].startswith("第 5 行") and "完成时限" in refused[1], "the preview does not list the broken lines: %r" % refused)
    check("将新增 2 件" in office.find_element(By.ID, "import-summary").text, "the preview does not say what it would add")
    shot(office, "ledger-import-preview-1920x1080")
    # Looked at from the unit's session, so the office's preview page stays where it is.
    unit.get(base + "/cases?q=" + "浏览器导入")
    check(len(unit.find_elements(By.CSS_SELECTOR, "#cases tr")) == 1, "the preview wrote to the ledger")
    check(len(unit.find_elements(By.ID, "import-link")) == 0, "a unit is offered the import")
    office.find_element(By.ID, "import-confirm").click()
    WebDriverWait(office, 10).until(lambda d: "已新增 2 件" in d.find_element(By.ID, "flash").text)
    shot(office, "ledger-import-done-1920x1080")
    office.get(base + "/cases?q=" + "浏览器导入")
    titles = [row.text for row in office.find_elements(By.CSS_SELECTOR, "#cases tr")][1:]
    result["imported_titles"] = titles
    check(len(titles) == 2 and "点位甲" in titles[0] + titles[1] and "点位丙" in titles[0] + titles[1], "not imported: %r" % titles)
    shot(office, "ledger-filtered-1920x1080")
    result["ok"] = True
finally:
    office.quit()
    unit.quit()
emit()
