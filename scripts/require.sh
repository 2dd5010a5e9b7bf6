# Sourced by the scripts that need system tools (docker/test.sh): `require TOOL PACKAGE WHAT-FOR` returns
# when TOOL is on PATH; else, as root with apt-get, installs Debian's PACKAGE and says so; else it names the
# tool, its package and why it is needed in one line and exits 1. RGE_NO_INSTALL=1 forbids installing.
APT_UPDATED=""
require() {
    local tool=$1 package=$2 why=$3
    command -v "$tool" >/dev/null 2>&1 && return 0
    if [ "$(id -u)" = 0 ] && [ "${RGE_NO_INSTALL:-0}" != 1 ] && command -v apt-get >/dev/null 2>&1; then
        echo "${REQUIRE_NAME:-$(basename "$0")}: $tool is missing: installing Debian's $package with apt-get (root)" >&2
        if [ -z "$APT_UPDATED" ]; then
            DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null && APT_UPDATED=1
        fi
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$package" >/dev/null \
            && command -v "$tool" >/dev/null 2>&1 && return 0
        echo "${REQUIRE_NAME:-$(basename "$0")}: apt-get could not install $package (for $tool, to $why)" >&2
        exit 1
    fi
    echo "${REQUIRE_NAME:-$(basename "$0")}: needs $tool (Debian package $package) to $why; install it, or run as root" >&2
    exit 1
}
