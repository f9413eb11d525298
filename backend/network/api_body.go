package network

// Decoding Neutron request bodies: {"<resource>": {...}} whose attributes
// are checked against what the operation accepts ("Unrecognized
// attribute(s)", "Cannot update read-only attribute"), with Neutron's
// lenient conversions (booleans from "true"/"1", integers from strings).

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/rest"
)

// apiBody is one resource's attributes as sent.
type apiBody map[string]json.RawMessage

func apiBad(format string, args ...any) error {
	return fault.Invalidf(format, args...).WithType("HTTPBadRequest")
}

// apiDecode reads {"<key>": {...}} and checks the attribute names: those
// in allowed are accepted, those in readOnly answer "Cannot update
// read-only attribute", the rest "Unrecognized attribute(s)".
func apiDecode(r *http.Request, key string, allowed, readOnly []string) (apiBody, error) {
	var wrapper map[string]json.RawMessage
	if err := rest.Decode(r, &wrapper, false); err != nil {
		return nil, err
	}
	raw, ok := wrapper[key]
	if !ok || apiIsNull(raw) {
		return nil, apiBad("Resource body required")
	}
	var b apiBody
	if err := json.Unmarshal(raw, &b); err != nil || b == nil {
		return nil, apiBad("Invalid input for %s. Reason: expected a JSON object.", key)
	}
	var unknown []string
	for k := range b {
		switch {
		case slices.Contains(allowed, k):
		case slices.Contains(readOnly, k):
			return nil, apiBad("Cannot update read-only attribute %s", k)
		default:
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, apiBad("Unrecognized attribute(s) '%s'", strings.Join(unknown, ", "))
	}
	return b, nil
}

func apiIsNull(raw json.RawMessage) bool {
	s := bytes.TrimSpace(raw)
	return len(s) == 0 || string(s) == "null"
}

func (b apiBody) has(k string) bool { _, ok := b[k]; return ok }

func (b apiBody) null(k string) bool { return b.has(k) && apiIsNull(b[k]) }

func invalidAttr(k string, v json.RawMessage, want string) error {
	return apiBad("Invalid input for %s. Reason: '%s' is not %s.", k, strings.TrimSpace(string(v)), want)
}

// str is a string attribute ("" when absent or null).
func (b apiBody) str(k string) (string, error) {
	p, err := b.strPtr(k)
	if p == nil {
		return "", err
	}
	return *p, err
}

// strPtr is a string attribute: nil when absent, "" when null.
func (b apiBody) strPtr(k string) (*string, error) {
	raw, ok := b[k]
	if !ok {
		return nil, nil
	}
	s := ""
	if apiIsNull(raw) {
		return &s, nil
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, invalidAttr(k, raw, "a string")
	}
	return &s, nil
}

// boolPtr is a boolean attribute as Neutron's convert_to_boolean reads it.
func (b apiBody) boolPtr(k string) (*bool, error) {
	raw, ok := b[k]
	if !ok {
		return nil, nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, invalidAttr(k, raw, "a valid boolean value")
	}
	var out bool
	switch x := v.(type) {
	case bool:
		out = x
	case float64:
		if x != 0 && x != 1 {
			return nil, invalidAttr(k, raw, "a valid boolean value")
		}
		out = x == 1
	case string:
		bv, ok := parseBool(x)
		if !ok {
			return nil, invalidAttr(k, raw, "a valid boolean value")
		}
		out = bv
	default:
		return nil, invalidAttr(k, raw, "a valid boolean value")
	}
	return &out, nil
}

// intPtr is an integer attribute (a number or a numeric string); null is
// nil, like absent.
func (b apiBody) intPtr(k string) (*int, error) {
	raw, ok := b[k]
	if !ok || apiIsNull(raw) {
		return nil, nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, invalidAttr(k, raw, "an integer")
	}
	var n int
	switch x := v.(type) {
	case float64:
		if x != float64(int(x)) {
			return nil, invalidAttr(k, raw, "an integer")
		}
		n = int(x)
	case string:
		i, err := strconv.Atoi(strings.TrimSpace(x))
		if err != nil {
			return nil, invalidAttr(k, raw, "an integer")
		}
		n = i
	default:
		return nil, invalidAttr(k, raw, "an integer")
	}
	return &n, nil
}

// strList is a list of strings; nil when absent, empty when null.
func (b apiBody) strList(k string) ([]string, error) {
	raw, ok := b[k]
	if !ok {
		return nil, nil
	}
	out := []string{}
	if apiIsNull(raw) {
		return out, nil
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, invalidAttr(k, raw, "a list of strings")
	}
	return out, nil
}

// decode unmarshals an attribute into v; absent or null leaves v alone.
func (b apiBody) decode(k string, v any, want string) error {
	raw, ok := b[k]
	if !ok || apiIsNull(raw) {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return invalidAttr(k, raw, want)
	}
	return nil
}

// project reads tenant_id / project_id, which must agree when both are given.
func (b apiBody) project() (string, error) {
	t, err := b.str("tenant_id")
	if err != nil {
		return "", err
	}
	p, err := b.str("project_id")
	if err != nil {
		return "", err
	}
	if t != "" && p != "" && t != p {
		return "", apiBad("'project_id' and 'tenant_id' do not match")
	}
	if p == "" {
		p = t
	}
	return p, nil
}

// apiFixedIP is a fixed_ips entry as sent.
type apiFixedIP struct {
	SubnetID  string `json:"subnet_id"`
	IPAddress string `json:"ip_address"`
}

// fixedIPs reads a fixed_ips list: nil when absent, empty when null or [].
func (b apiBody) fixedIPs(k string) ([]FixedIPRequest, error) {
	if !b.has(k) {
		return nil, nil
	}
	var in []apiFixedIP
	if err := b.decode(k, &in, "a list of {subnet_id, ip_address}"); err != nil {
		return nil, err
	}
	out := make([]FixedIPRequest, 0, len(in))
	for _, f := range in {
		out = append(out, FixedIPRequest(f))
	}
	return out, nil
}
