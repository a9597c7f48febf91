# Sourced by the scripts: the toolchain this machine kind ships at /opt/swift, when PATH lacks it.
if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
    export PATH="/opt/swift/usr/bin:$PATH"
fi
