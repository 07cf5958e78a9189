#!/usr/bin/env bash
# Installs the system packages that sshfix's lab of real SSH hosts (src/lab/lab.ts)
# and its tests need, on Debian/Ubuntu, as root. Used by .ci/run and by the
# README's "run the main job" command (sshfix demo). Safe to run again.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

# What the lab and the tests call:
#   openssh-server   sshd (libwrap-linked), its sysvinit script for `service ssh reload`, sftp-server
#   openssh-client   ssh and ssh-keygen on the controller
#   iproute2         ip netns / veth / bridge, ss
#   util-linux mount nsenter, unshare, mount (overlayfs, bind mounts)
#   iptables nftables ufw fail2ban   the firewalls sshfix manages (fail2ban and ufw pull in python3)
#   firewalld        the firewalld backend, run per lab host with its own dbus-daemon
#   procps           ps/pgrep, to show what a run left behind
#   gcc libc6-dev    builds the tiny libwrap oracle the hosts_access evaluator is checked against
#   sudo             the secrets test logs in as a user whose sudo rule needs a password
#   debootstrap      builds the Debian 13 root of the lab's systemd hosts (once per machine)
#   systemd-container  systemd-nspawn, which boots those hosts into the lab's network namespaces
#   ansible-core     ansible-config, which the config file tests compare sshfix's reading of ansible.cfg with,
#                    and ansible-vault, which makes the vaults the Ansible Vault tests decrypt
packages=(openssh-server openssh-client iproute2 util-linux mount iptables nftables ufw fail2ban firewalld procps gcc libc6-dev sudo debootstrap systemd-container ansible-core)

sshd_running() { [ -s /run/sshd.pid ] && kill -0 "$(cat /run/sshd.pid)" 2>/dev/null; }
fail2ban_running() { [ -S /run/fail2ban/fail2ban.sock ] && fail2ban-client ping >/dev/null 2>&1; }

# The machine's own services are left alone; only those the installation starts are stopped.
sshd_was_running=no
fail2ban_was_running=no
if command -v sshd >/dev/null 2>&1 && sshd_running; then sshd_was_running=yes; fi
if command -v fail2ban-client >/dev/null 2>&1 && fail2ban_running; then fail2ban_was_running=yes; fi

# Keep package scripts from starting services at all while installing.
added_policy=no
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  added_policy=yes
fi
remove_added_policy() { if [ "$added_policy" = yes ]; then rm -f /usr/sbin/policy-rc.d; added_policy=no; fi; }
trap remove_added_policy EXIT

apt-get update
apt-get install -y --no-install-recommends "${packages[@]}"

remove_added_policy

if [ "$sshd_was_running" = no ] && sshd_running; then
  echo "stopping the sshd that the installation started in the root namespace"
  start-stop-daemon --stop --quiet --oknodo --retry 5 --pidfile /run/sshd.pid --exec /usr/sbin/sshd
fi
if [ "$fail2ban_was_running" = no ] && fail2ban_running; then
  echo "stopping the fail2ban that the installation started in the root namespace"
  fail2ban-client stop
fi

