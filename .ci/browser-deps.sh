#!/usr/bin/env bash
# Installs what tests/test_gallery_browser.py needs: Debian's Chromium (+ its driver, for Selenium
# users) and the Playwright Python package. Playwright's own browser download is never used (it
# cannot be fetched here); the test launches /usr/bin/chromium through executable_path.
#
# Never fails the CI: when something cannot be installed this says so, exits 0, and the browser
# test skips with the reason. Bounded: each install step gives up after BROWSER_DEPS_TIMEOUT s.
set -u

limit="${BROWSER_DEPS_TIMEOUT:-600}"
py="${PYTHON:-python3}"
command -v "$py" >/dev/null 2>&1 || py=python
log() { echo "browser-deps: $*"; }

as_root() {
  if [ "$(id -u)" = "0" ]; then "$@";
  elif command -v sudo >/dev/null 2>&1; then sudo -n "$@";
  else return 1; fi
}

if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then
  log "chromium already installed: $(chromium --version 2>/dev/null | head -n 1)"
elif command -v apt-get >/dev/null 2>&1; then
  log "installing chromium and chromium-driver with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  if as_root timeout "$limit" apt-get update -qq >/tmp/browser-deps-apt.log 2>&1 &&
     as_root timeout "$limit" apt-get install -y -qq --no-install-recommends chromium chromium-driver \
       >>/tmp/browser-deps-apt.log 2>&1; then
    log "installed $(chromium --version 2>/dev/null | head -n 1)"
  else
    log "could not install chromium (see /tmp/browser-deps-apt.log); the browser test will skip"
    tail -n 5 /tmp/browser-deps-apt.log 2>/dev/null | sed 's/^/browser-deps:   /'
  fi
else
  log "no apt-get here: install Chromium yourself; the browser test will skip until then"
fi

if "$py" -c "import playwright" >/dev/null 2>&1; then
  log "playwright already installed"
else
  log "installing the playwright Python package (no browser download)"
  if PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 timeout "$limit" "$py" -m pip install -q --disable-pip-version-check \
       playwright >/tmp/browser-deps-pip.log 2>&1; then
    log "installed playwright"
  else
    log "could not install playwright (see /tmp/browser-deps-pip.log); the browser test will skip"
    tail -n 5 /tmp/browser-deps-pip.log 2>/dev/null | sed 's/^/browser-deps:   /'
  fi
fi
exit 0
