#!/usr/bin/env bash
# Installs what Duban needs on a fresh Debian machine (run as root): libzmq, pkg-config, SQLite
# headers, pyzmq for the Python client tests, headless Chromium with CJK fonts and Selenium for the
# web console's browser tests. Quick when everything is already there.
set -euo pipefail
source "$(dirname "$0")/env.sh"

need_apt=()
pkg-config --exists libzmq 2>/dev/null || need_apt+=(libzmq3-dev)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
[ -f /usr/include/sqlite3.h ] || need_apt+=(libsqlite3-dev)
command -v python3 >/dev/null || need_apt+=(python3 python3-pip)
# PostgreSQL serves ingest instances that share a database; the scale-out tests start their own cluster.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
# XLSX export (Shared/CXlsxWriter): Debian's libxlsxwriter, found through pkg-config.
pkg-config --exists xlsxwriter 2>/dev/null || need_apt+=(libxlsxwriter-dev)
# pg_dump/pg_restore (backup of ingest on PostgreSQL), curl (the metrics tests read the port as an
# operator would), zlib's headers (the XLSX reader inflates ZIP parts itself).
command -v pg_dump >/dev/null || need_apt+=(postgresql-client)
command -v curl >/dev/null || need_apt+=(curl)
[ -f /usr/include/zlib.h ] || need_apt+=(zlib1g-dev)
# `ip netns`: the separate-hosts test puts each service on a network namespace of its own.
[ -x /usr/sbin/ip ] || need_apt+=(iproute2)
# The web console's browser tests: Debian's Chromium and its driver, and fonts with Chinese glyphs.
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
[ -x /usr/bin/chromedriver ] || need_apt+=(chromium-driver)
[ -f /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc ] || need_apt+=(fonts-noto-cjk)

if [ ${#need_apt[@]} -gt 0 ]; then
    echo "setup: installing ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# The Python client tests use pyzmq from whichever python3 is first on PATH.
if ! python3 -c 'import zmq' 2>/dev/null; then
    echo "setup: installing pyzmq"
    python3 -m pip install -q pyzmq 2>/dev/null || {
        apt-get update -qq
        apt-get install -y -qq python3-zmq >/dev/null
    }
fi

# Selenium drives the system's Chromium (Service("/usr/bin/chromedriver"); no driver download).
if ! python3 -c 'import selenium' 2>/dev/null; then
    echo "setup: installing selenium"
    python3 -m pip install -q selenium 2>/dev/null || {
        apt-get update -qq
        apt-get install -y -qq python3-selenium >/dev/null
    }
fi

# The office-format tests write workbooks with openpyxl (a real spreadsheet writer) and open the
# Word reports with python-docx.
if ! python3 -c 'import openpyxl, docx' 2>/dev/null; then
    echo "setup: installing openpyxl and python-docx"
    python3 -m pip install -q openpyxl python-docx 2>/dev/null || {
        apt-get update -qq
        apt-get install -y -qq python3-openpyxl python3-docx >/dev/null
    }
fi

# Optional: the report test renders one page of the Word document to PNG where LibreOffice and
# poppler are installed; without them that step is skipped, so a failed install is not fatal.
if ! command -v soffice >/dev/null || ! command -v pdftoppm >/dev/null; then
    echo "setup: installing LibreOffice Writer (headless) and poppler-utils (optional)"
    export DEBIAN_FRONTEND=noninteractive
    # Lists may never have been fetched on a machine that needed nothing else.
    apt-get update -qq >/dev/null 2>&1 || true
    apt-get install -y -qq --no-install-recommends libreoffice-writer-nogui poppler-utils fonts-noto-cjk >/dev/null 2>&1 \
        || echo "setup: LibreOffice not installed; the report test will not render a page"
fi

command -v swift >/dev/null || { echo "setup: no Swift toolchain on PATH (expected Swift 6 at /opt/swift)" >&2; exit 1; }
