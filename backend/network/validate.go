package network

import (
	"crypto/rand"
	"fmt"
	"net"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits Neutron enforces, with its default values.
const (
	maxNameLen        = 255
	maxDescriptionLen = 255
	maxDeviceIDLen    = 255
	maxDeviceOwnerLen = 255
	maxDNSNameservers = 5  // max_dns_nameservers
	maxHostRoutes     = 20 // max_subnet_host_routes
	maxAddressPairs   = 10 // max_allowed_address_pair
	maxVNI            = 1<<24 - 1
	maxVLAN           = 4094
	maxPhysnetLen     = 64
	minMTU            = 68
	maxMTU            = 9000
	minIPv6MTU        = 1280
	vxlanOverhead     = 50
	defaultMTU        = 1500
)

// checkText validates a name or description: bounded length, valid UTF-8
// and no control characters, since the text reaches logs, the dashboard
// and (through the data plane) device descriptions.
func checkText(field, v string, max int) error {
	if !utf8.ValidString(v) {
		return invalidInput("'%s' is not valid UTF-8 for %s", v, field)
	}
	if n := utf8.RuneCountInString(v); n > max {
		return invalidInput("'%s' exceeds maximum length of %d", v, max)
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return invalidInput("%s must not contain control characters", field)
		}
	}
	return nil
}

// checkPtrText validates an optional text field.
func checkPtrText(field string, v *string, max int) error {
	if v == nil {
		return nil
	}
	return checkText(field, *v, max)
}

// checkPhysnet validates a physical network name, which the data plane
// turns into interface and bridge mappings.
func checkPhysnet(name string) error {
	if name == "" || len(name) > maxPhysnetLen {
		return invalidInput("physical_network '%s' must be 1 to %d characters", name, maxPhysnetLen)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return invalidInput("physical_network '%s' may contain only letters, digits, '-', '_' and '.'", name)
		}
	}
	return nil
}

// normalizeMAC parses a MAC address and returns it in Neutron's form,
// lowercase and colon-separated. Multicast, broadcast and all-zero
// addresses are refused: no NIC may own them.
func normalizeMAC(s string) (string, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return "", invalidInput("'%s' is not a valid MAC address", s)
	}
	if hw[0]&1 == 1 {
		return "", invalidInput("'%s' is not a valid MAC address", s)
	}
	zero := true
	for _, b := range hw {
		if b != 0 {
			zero = false
		}
	}
	if zero {
		return "", invalidInput("'%s' is not a valid MAC address", s)
	}
	return strings.ToLower(hw.String()), nil
}

// randomMAC returns a MAC with OpenStack's base_mac prefix fa:16:3e.
func randomMAC() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("fa:16:3e:%02x:%02x:%02x", b[0], b[1], b[2])
}

// checkDeviceField validates device_id and device_owner, which reach the
// data plane's device names and logs.
func checkDeviceField(field, v string, max int) error {
	if len(v) > max {
		return invalidInput("'%s' exceeds maximum length of %d", v, max)
	}
	for _, r := range v {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return invalidInput("%s '%s' must not contain spaces or control characters", field, v)
		}
	}
	return nil
}

// isNetworkDevice reports whether device_owner marks a port the
// networking service owns.
func isNetworkDevice(owner string) bool { return strings.HasPrefix(owner, ownerNetworkPrefix) }

// boolStr is a boolean as policy targets spell it.
func boolStr(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

// vnicTypes are the VNIC types Neutron's binding extension knows. Only
// "normal" can be bound by Nimbus's Linux-bridge data plane; the others
// are accepted and report binding_failed once bound, as Neutron does when
// no mechanism driver can bind a port.
var vnicTypes = map[string]bool{
	"normal": true, "direct": true, "macvtap": true, "baremetal": true, "direct-physical": true,
	"virtio-forwarder": true, "smart-nic": true, "remote-managed": true, "vdpa": true,
}
