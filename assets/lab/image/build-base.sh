#!/bin/bash
# Second stage of the lab's base image, run INSIDE the freshly debootstrapped rootfs by
# systemd-nspawn (no --boot; the machine's network, for the Debian mirror). Its text is part
# of the image's cache key: editing this file rebuilds the image.
#
# Environment (set by source/lab/image.ts):
#   LAB_MIRROR      Debian mirror URL
#   LAB_PACKAGES    installed in the image (no recommends)
#   LAB_REPO_PKGS   downloaded (with their recommends) into /lab-repo for the offline apt repo
#   LAB_REPO_URL    where the hosts find that repository (served on the lab bridge)
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
cd /

# Pitfall 5: no service may start while the image is built (it would run in the machine's
# network namespace). Removed again at the end: the hosts' own apt-get installs start services.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod 755 /usr/sbin/policy-rc.d

cat > /etc/apt/sources.list <<EOF
deb $LAB_MIRROR bookworm main
deb $LAB_MIRROR bookworm-updates main
EOF
cat > /etc/apt/apt.conf.d/90lab-build <<'EOF'
Acquire::Languages "none";
Acquire::Retries "3";
EOF

apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $LAB_PACKAGES >/dev/null

# The offline repository: what a runbook may `apt-get install` that the image does not have,
# with the recommends apt would pull on a real server. Download only: dpkg state is untouched.
mkdir -p /lab-repo/partial
# shellcheck disable=SC2086
apt-get install -y -qq --download-only -o Dir::Cache::Archives=/lab-repo $LAB_REPO_PKGS >/dev/null
# The .debs of what was just installed too (apt-get install --reinstall works offline).
cp -n /var/cache/apt/archives/*.deb /lab-repo/ 2>/dev/null || true
rm -rf /lab-repo/partial /lab-repo/lock

# Users for the sudo tests: admin (NOPASSWD sudo) and nosudo (none). Keys come per lab.
id admin >/dev/null 2>&1 || useradd --create-home --shell /bin/bash admin
id nosudo >/dev/null 2>&1 || useradd --create-home --shell /bin/bash nosudo
echo 'admin ALL=(ALL:ALL) NOPASSWD: ALL' > /etc/sudoers.d/lab-admin
chmod 0440 /etc/sudoers.d/lab-admin
passwd -l root >/dev/null

# sshd: only the host keys the lab generates per host (ed25519, ecdsa).
cat > /etc/ssh/sshd_config.d/10-lab.conf <<'EOF'
HostKey /etc/ssh/ssh_host_ed25519_key
HostKey /etc/ssh/ssh_host_ecdsa_key
PasswordAuthentication no
UseDNS no
EOF

# Network: systemd-networkd, a static address per host (written per host by the lab).
systemctl enable systemd-networkd.service >/dev/null 2>&1
# Pitfall 6: no rpc_pipefs in a container; its mount unit would leave the host "degraded".
systemctl mask run-rpc_pipefs.mount >/dev/null 2>&1
# Units that cannot work in a container or only add noise at boot.
systemctl mask systemd-networkd-wait-online.service apt-daily.timer apt-daily-upgrade.timer \
  e2scrub_all.timer e2scrub_reap.service fstrim.timer >/dev/null 2>&1
# Installed, not running: runbooks configure, enable and start what they need (an idle host
# stays small and "running", not "degraded" by an unconfigured NFS server).
for unit in postgresql.service keepalived.service haproxy.service nfs-ganesha.service \
  nfs-ganesha-lock.service nfs-ganesha-config.service rpcbind.service rpcbind.socket \
  nftables.service; do
  systemctl disable "$unit" >/dev/null 2>&1 || true
done

# Pitfall 4: nothing host-specific in the shared base.
rm -f /etc/ssh/ssh_host_*
rm -f /etc/machine-id /var/lib/dbus/machine-id
ln -s /etc/machine-id /var/lib/dbus/machine-id
echo localhost > /etc/hostname
echo '# no DNS in the ha-setup lab: use addresses' > /etc/resolv.conf

# apt inside the hosts: the lab's repository only (the default mirror line would make every
# apt-get update wait for timeouts), no mirror lists. The repository is not signed.
rm -f /etc/apt/sources.list /etc/apt/apt.conf.d/90lab-build
echo "deb [trusted=yes] $LAB_REPO_URL ./" > /etc/apt/sources.list.d/ha-lab.list
rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /var/cache/apt/*.bin
mkdir -p /var/lib/apt/lists/partial
rm -f /usr/sbin/policy-rc.d
