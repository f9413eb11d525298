# lib.sh: helpers for /etc/nimbus/boot, kept apart so the build host's tests
# can source and exercise them. Metadata and DHCP values are untrusted: they
# are only printed, written to files or passed as single quoted arguments,
# never evaluated.

NIMBUS_LIB=${NIMBUS_LIB:-/etc/nimbus}
NIMBUS_RUN=${NIMBUS_RUN:-/run/nimbus}

# say prints a line on the serial console (stdout) and, when NIMBUS_VT names
# a writable terminal, on the VGA console too.
say() {
	printf '%s\n' "$*"
	if [ -n "$NIMBUS_VT" ] && [ -w "$NIMBUS_VT" ]; then
		printf '%s\n' "$*" >"$NIMBUS_VT" 2>/dev/null
	fi
	return 0
}

# sanitize_hostname keeps [a-z0-9.-] (upper case folded, "_" and " " turned
# into "-"), at most 63 characters, no leading or trailing "." or "-".
sanitize_hostname() {
	printf '%s\n' "$1" | tr 'A-Z_ ' 'a-z--' | tr -cd 'a-z0-9.-' | cut -c1-63 |
		sed -e 's/\.\.*/./g' -e 's/^[.-]*//' -e 's/[.-]*$//'
}

# sanitize_text drops control characters (terminal escapes included) and
# cuts to $2 bytes (default 64), for values shown on the console.
sanitize_text() {
	printf '%s\n' "$1" | tr -d '\000-\037\177' | cut -c "1-${2:-64}"
}

# json_flatten prints FILE as "path<TAB>value" lines (see json.awk).
json_flatten() {
	awk -f "$NIMBUS_LIB/json.awk" "$1"
}

# md_value prints the value at PATH in a flattened document.
md_value() {
	awk -F '\t' -v k="$2" '$1 == k { sub(/^[^\t]*\t/, ""); print; exit }' "$1"
}

# md_ssh_keys prints the well-formed SSH public keys of a flattened
# meta_data.json (public_keys and keys[].data), one per line, deduplicated.
# Anything else (options, embedded commands, garbage) is dropped.
md_ssh_keys() {
	awk -F '\t' '$1 ~ /^public_keys\./ || $1 ~ /^keys\.[0-9]+\.data$/ { sub(/^[^\t]*\t/, ""); print }' "$1" |
		sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' |
		grep -E '^(ssh-(rsa|dss|ed25519)|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+=*( [^[:cntrl:]]*)?$' |
		awk '!seen[$2]++'
}

# install_ssh_keys writes the keys of flattened metadata FLAT to FILE; it
# fails when there are none.
install_ssh_keys() {
	_keys=$(md_ssh_keys "$1")
	[ -n "$_keys" ] || return 1
	_dir=$(dirname "$2")
	mkdir -p "$_dir" && chmod 700 "$_dir" || return 1
	printf '%s\n' "$_keys" >"$2.tmp" && chmod 600 "$2.tmp" && mv "$2.tmp" "$2"
}

# set_hostname applies an already sanitised host name.
set_hostname() {
	hostname "$1"
	printf '%s\n' "$1" >/etc/hostname
	printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s %s\n::1\tlocalhost ip6-localhost ip6-loopback\n' \
		"$1" "${1%%.*}" >/etc/hosts
}

# load_modules insmods the modules listed in FILE (paths relative to /,
# dependencies first, as the image builder resolved them).
load_modules() {
	while read -r _m; do
		[ -n "$_m" ] || continue
		insmod "/$_m" || say "nimbus-guest: insmod $_m failed"
	done <"$1"
}

# first_nic waits up to ~5 s for a network device backed by hardware and
# prints its name (eth0 on virtio-net).
first_nic() {
	_i=0
	while [ $_i -lt 50 ]; do
		for _d in /sys/class/net/*; do
			[ -e "$_d/device" ] || continue
			echo "${_d##*/}"
			return 0
		done
		usleep 100000
		_i=$((_i + 1))
	done
	return 1
}

# dhcp_up gets a lease on IFACE; udhcpc stays in the background to renew it.
# It gives up after 10 tries of 2 s.
dhcp_up() {
	ip link set "$1" up || return 1
	udhcpc -i "$1" -s /etc/udhcpc/default.script -p "/run/udhcpc.$1.pid" \
		-O mtu -O staticroutes -t 10 -T 2 -A 2 -n </dev/null >>/var/log/udhcpc.log 2>&1
}

# ipv4_addrs prints "IFACE ADDR/PREFIX" for each global IPv4 address.
ipv4_addrs() {
	ip -o -4 addr show scope global 2>/dev/null | awk '{ print $2, $4 }'
}

# iso_label prints the volume identifier of an ISO 9660 file system on DEV:
# the primary volume descriptor is at byte 32768, "CD001" at +1, the label
# at +40 (32 bytes, space padded).
iso_label() {
	[ "$(dd if="$1" bs=1 skip=32769 count=5 2>/dev/null)" = CD001 ] || return 1
	dd if="$1" bs=1 skip=32808 count=32 2>/dev/null | tr -d ' \000'
}

# find_config_drive prints the block device labelled config-2 or fails. It
# is the thorough look, after findfs LABEL=config-2 found nothing: the label
# upper case (vfat) and ISO 9660 labels read directly.
find_config_drive() {
	_dev=$(findfs LABEL=CONFIG-2 2>/dev/null) && [ -b "$_dev" ] && {
		echo "$_dev"
		return 0
	}
	for _dev in /dev/sr* /dev/vd* /dev/sd* /dev/hd*; do
		[ -b "$_dev" ] || continue
		case "$(iso_label "$_dev")" in
		config-2 | CONFIG-2)
			echo "$_dev"
			return 0
			;;
		esac
	done
	return 1
}

# read_config_drive copies openstack/latest/{meta_data.json,user_data} from
# a config drive into DIR. It runs after DHCP, by when a CD-ROM has been
# probed, and polls for under a second in case the scan is slow: every
# check costs a process start, which is slow under TCG, and most guests
# have no config drive.
read_config_drive() {
	_i=0
	_dev=
	while [ $_i -lt 4 ]; do
		_dev=$(findfs LABEL=config-2 2>/dev/null) && [ -b "$_dev" ] && break
		_dev=
		usleep 200000
		_i=$((_i + 1))
	done
	[ -n "$_dev" ] || _dev=$(find_config_drive) || return 1
	_mnt=/mnt/config
	mkdir -p "$_mnt"
	mount -t iso9660 -o ro,nosuid,nodev,noexec "$_dev" "$_mnt" 2>/dev/null ||
		mount -t vfat -o ro,nosuid,nodev,noexec "$_dev" "$_mnt" 2>/dev/null || return 1
	_ok=
	_src=$_mnt/openstack/latest
	cp "$_src/meta_data.json" "$1/meta_data.json" 2>/dev/null && _ok=1
	[ -f "$_src/user_data" ] && cp "$_src/user_data" "$1/user_data"
	[ -f "$_src/network_data.json" ] && cp "$_src/network_data.json" "$1/network_data.json"
	umount "$_mnt"
	[ -n "$_ok" ]
}

# fetch downloads URL to OUT, trying TRIES times with a 10 s limit each.
# The limit comes from timeout(1): busybox 1.35's wget -T segfaults.
fetch() {
	_i=0
	while [ "$_i" -lt "$3" ]; do
		if timeout 10 wget -q -Y off -O "$2.part" "$1" 2>/dev/null; then
			mv "$2.part" "$2"
			return 0
		fi
		_i=$((_i + 1))
		[ "$_i" -lt "$3" ] && sleep 2
	done
	rm -f "$2.part"
	return 1
}

# read_network_metadata fetches the metadata service's OpenStack files into
# DIR; user_data is optional (404 when the instance has none).
read_network_metadata() {
	_base=http://169.254.169.254/openstack/latest
	fetch "$_base/meta_data.json" "$1/meta_data.json" 5 || return 1
	fetch "$_base/user_data" "$1/user_data" 1 || :
	return 0
}

# run_user_data runs FILE when it is a script ("#!"), with a 5 minute limit
# and output on the console. A missing interpreter (#!/bin/bash here) falls
# back to busybox sh.
run_user_data() {
	[ -s "$1" ] || return 0
	if [ "$(head -c 2 "$1")" != "#!" ]; then
		say "nimbus-guest: user-data is not a script, ignored"
		return 0
	fi
	_script=$NIMBUS_RUN/user-data
	cp "$1" "$_script" && chmod 700 "$_script" || return 1
	_interp=$(head -n 1 "$_script" | sed -e 's/^#![[:space:]]*//' -e 's/[[:space:]].*//')
	say "nimbus-guest: running user-data"
	if [ -x "$_interp" ]; then
		(cd /root 2>/dev/null || cd /; HOME=/root timeout 300 "$_script" </dev/null)
	else
		(cd /root 2>/dev/null || cd /; HOME=/root timeout 300 /bin/sh "$_script" </dev/null)
	fi
	say "nimbus-guest: user-data exit=$?"
}

# gen_host_keys creates missing SSH host keys. It can take seconds:
# getrandom() blocks until the kernel's entropy pool is ready, which under
# TCG without a virtio-rng device is about 3 s after boot.
gen_host_keys() {
	mkdir -p /etc/dropbear
	for _t in ed25519 ecdsa; do
		_k=/etc/dropbear/dropbear_${_t}_host_key
		[ -s "$_k" ] || dropbearkey -t "$_t" -f "$_k" >/dev/null 2>&1 || return 1
	done
}

# start_dropbear starts dropbear on port 22 with password logins off (root
# has no password; keys only).
start_dropbear() {
	gen_host_keys || return 1
	dropbear -s -p 22 -P /run/dropbear.pid </dev/null >/dev/null 2>&1 || return 1
	_i=0
	while [ $_i -lt 20 ]; do
		[ -s /run/dropbear.pid ] && return 0
		usleep 100000
		_i=$((_i + 1))
	done
	return 1
}

# host_keys prints the SSH host public keys the way cloud-init does, so a
# client can check them against the console log.
host_keys() {
	say "-----BEGIN SSH HOST KEY KEYS-----"
	for _k in /etc/dropbear/dropbear_*_host_key; do
		[ -s "$_k" ] || continue
		say "$(dropbearkey -y -f "$_k" 2>/dev/null | grep -E '^(ssh|ecdsa)-' | cut -d ' ' -f 1,2)"
	done
	say "-----END SSH HOST KEY KEYS-----"
}

# banner prints the login banner: NAME UUID HOSTNAME.
banner() {
	say "=== nimbus tiny guest ==="
	say "instance: ${1:-unknown} (${2:-unknown})"
	say "hostname: $3"
	_addrs=$(ipv4_addrs)
	if [ -n "$_addrs" ]; then
		printf '%s\n' "$_addrs" | while read -r _if _a; do say "ip: $_a ($_if)"; done
	else
		say "ip: none"
	fi
	say "kernel: $(uname -r)"
	say "login: ssh root@<ip> with the instance's key pair"
	say "========================="
}
