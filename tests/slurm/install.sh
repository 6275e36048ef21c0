#!/usr/bin/env bash
# The Debian packages the SLURM integration test needs (tests/test_slurm_integration.py): installs the missing
# ones when run as root on Debian/Ubuntu, and does nothing when they are all there. It never fails: where it
# cannot install, it says why and the test skips with the same reason (CI: PREFIXTUNE_SLURM_TEST=required turns
# that skip into a failure). No service is started (the test starts its own daemons, in a temporary folder).
set -u
packages=(slurmctld slurmd slurmdbd slurm-client munge mariadb-server)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "tests/slurm/install.sh: no apt-get (not Debian/Ubuntu): the SLURM integration test will skip" >&2
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "tests/slurm/install.sh: not root: the SLURM integration test will skip (as root: sudo $0)" >&2
  exit 0
fi
echo "tests/slurm/install.sh: installing ${missing[*]}" >&2
# The packages' scripts would start munge, MariaDB and SLURM as services: forbid it for this install only.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
export DEBIAN_FRONTEND=noninteractive
apt_install() { apt-get install -y -q --no-install-recommends "${missing[@]}" >>/tmp/slurm-install.log 2>&1; }
if ! apt_install && ! { apt-get update -q >>/tmp/slurm-install.log 2>&1 && apt_install; }; then
  echo "tests/slurm/install.sh: apt-get failed (tail of /tmp/slurm-install.log below): the SLURM integration" \
    "test will skip" >&2
  tail -5 /tmp/slurm-install.log >&2
fi
exit 0
