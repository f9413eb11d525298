package image

import (
	"encoding/json"
	"math"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// diskFormats and containerFormats are the formats an image may declare,
// Glance's defaults less ploop (which qemu-img cannot check).
var (
	diskFormats      = []string{"ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso"}
	containerFormats = []string{"ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"}
)

// DiskFormats returns the disk formats an image may declare.
func DiskFormats() []string { return slices.Clone(diskFormats) }

// ContainerFormats returns the container formats an image may declare.
func ContainerFormats() []string { return slices.Clone(containerFormats) }

// dataContainerFormats are the container formats whose data is the disk
// itself, so an upload can be checked; the others wrap it in an archive.
var dataContainerFormats = []string{"bare", "ami", "ari", "aki"}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// Attribute classes, from Glance's images API (RequestDeserializer).
var (
	// readOnlyAttrs may never be set by a client: 403.
	readOnlyAttrs = []string{"created_at", "updated_at", "status", "checksum", "size", "virtual_size",
		"direct_url", "self", "file", "schema", "id", "os_hash_algo", "os_hash_value", "stores", "locations"}
	// reservedAttrs may not be used as custom property names: 403.
	reservedAttrs = []string{"location", "deleted", "deleted_at"}
	// baseAttrs are the image's own attributes; they cannot be removed.
	baseAttrs = []string{"checksum", "created_at", "container_format", "disk_format", "id", "min_disk",
		"min_ram", "name", "size", "virtual_size", "status", "tags", "owner", "updated_at", "visibility",
		"protected", "os_hidden", "os_hash_algo", "os_hash_value", "self", "file", "schema"}
)

// reservedNamespace is the custom-property prefix Glance keeps for itself.
const reservedNamespace = "os_glance"

// checkWritable rejects a read-only or reserved attribute name with
// Glance's 403 messages.
func checkWritable(name string) error {
	if slices.Contains(readOnlyAttrs, name) {
		return fault.Forbiddenf("Attribute '%s' is read-only.", name)
	}
	if slices.Contains(reservedAttrs, name) || strings.HasPrefix(name, reservedNamespace) {
		return fault.Forbiddenf("Attribute '%s' is reserved.", name)
	}
	return nil
}

func isBaseAttr(name string) bool { return slices.Contains(baseAttrs, name) }

// setAttr sets the writable attribute name of img to the decoded JSON
// value v, checking its JSON type as Glance's image schema does. A name
// that is not a base attribute is a custom property, whose value must be a
// string.
func setAttr(img *Image, name string, v any) error {
	if err := checkWritable(name); err != nil {
		return err
	}
	switch name {
	case "name":
		s, err := nullableString(name, v)
		if err != nil {
			return err
		}
		img.Name = s
	case "visibility":
		s, ok := v.(string)
		if !ok {
			return typeError(name, v, "string")
		}
		img.Visibility = s
	case "owner":
		s, err := nullableString(name, v)
		if err != nil {
			return err
		}
		img.Owner = s
	case "disk_format":
		s, err := nullableString(name, v)
		if err != nil {
			return err
		}
		img.DiskFormat = s
	case "container_format":
		s, err := nullableString(name, v)
		if err != nil {
			return err
		}
		img.ContainerFormat = s
	case "protected", "os_hidden":
		b, ok := v.(bool)
		if !ok {
			return typeError(name, v, "boolean")
		}
		if name == "protected" {
			img.Protected = b
		} else {
			img.Hidden = b
		}
	case "min_disk", "min_ram":
		n, err := integer(name, v)
		if err != nil {
			return err
		}
		if name == "min_disk" {
			img.MinDisk = n
		} else {
			img.MinRAM = n
		}
	case "tags":
		arr, ok := v.([]any)
		if !ok {
			return typeError(name, v, "array")
		}
		tags := make([]string, 0, len(arr))
		for _, t := range arr {
			s, ok := t.(string)
			if !ok {
				return typeError("tags", t, "string")
			}
			if !slices.Contains(tags, s) {
				tags = append(tags, s)
			}
		}
		img.Tags = tags
	default:
		s, ok := v.(string)
		if !ok {
			return typeError(name, v, "string")
		}
		if img.Properties == nil {
			img.Properties = map[string]string{}
		}
		img.Properties[name] = s
	}
	return nil
}

func nullableString(name string, v any) (string, error) {
	switch s := v.(type) {
	case nil:
		return "", nil
	case string:
		return s, nil
	}
	return "", typeError(name, v, "null, string")
}

// integer accepts a JSON number without a fraction, decoded either as
// json.Number or as float64.
func integer(name string, v any) (int, error) {
	var f float64
	switch n := v.(type) {
	case json.Number:
		i, err := n.Int64()
		if err != nil {
			return 0, typeError(name, v, "integer")
		}
		f = float64(i)
	case float64:
		f = n
	case int:
		f = float64(n)
	default:
		return 0, typeError(name, v, "integer")
	}
	if f != math.Trunc(f) || f > math.MaxInt32 || f < math.MinInt32 {
		return 0, typeError(name, v, "integer")
	}
	return int(f), nil
}

// typeError is the schema validation message for a value of the wrong type.
func typeError(name string, v any, want string) error {
	b, _ := json.Marshal(v)
	shown := string(b)
	if len(shown) > 80 {
		shown = shown[:80] + "..."
	}
	return fault.Invalidf("Provided object does not match schema 'image': %s is not of type '%s' (attribute '%s').", shown, want, name)
}

// validateImage checks the attribute values of img against Glance's image
// schema and limits. Over-limit tags or properties are TooLarge (413, as
// Glance's quotas answer).
func validateImage(img *Image) error {
	if img.ID != "" && !uuidRE.MatchString(img.ID) {
		return fault.Invalidf("Provided object does not match schema 'image': '%s' does not match the UUID pattern (attribute 'id').", truncate(img.ID, 64))
	}
	if err := checkText("name", img.Name, maxNameLen); err != nil {
		return err
	}
	if err := checkText("owner", img.Owner, maxNameLen); err != nil {
		return err
	}
	switch img.Visibility {
	case VisibilityPrivate, VisibilityShared, VisibilityCommunity, VisibilityPublic:
	default:
		return fault.Invalidf("Provided object does not match schema 'image': '%s' is not one of ['community', 'public', 'private', 'shared'] (attribute 'visibility').",
			truncate(img.Visibility, 64))
	}
	if img.DiskFormat != "" && !slices.Contains(diskFormats, img.DiskFormat) {
		return fault.Invalidf("Provided object does not match schema 'image': '%s' is not one of %s (attribute 'disk_format').",
			truncate(img.DiskFormat, 64), quoteList(diskFormats))
	}
	if img.ContainerFormat != "" && !slices.Contains(containerFormats, img.ContainerFormat) {
		return fault.Invalidf("Provided object does not match schema 'image': '%s' is not one of %s (attribute 'container_format').",
			truncate(img.ContainerFormat, 64), quoteList(containerFormats))
	}
	if img.MinDisk < 0 || img.MinRAM < 0 {
		return fault.Invalidf("Cannot be a negative value: min_disk and min_ram must be at least 0.")
	}
	if len(img.Tags) > maxTagsPerImage {
		return fault.New(fault.TooLarge, "Maximum number of tags exceeded: an image may have at most %d tags.", maxTagsPerImage)
	}
	for _, t := range img.Tags {
		if err := checkTag(t); err != nil {
			return err
		}
	}
	if len(img.Properties) > maxPropertiesPerImage {
		return fault.New(fault.TooLarge, "Maximum number of properties exceeded: an image may have at most %d custom properties.", maxPropertiesPerImage)
	}
	for k, v := range img.Properties {
		if k == "" || len(k) > maxPropertyNameLen || !utf8.ValidString(k) || strings.IndexFunc(k, unicode.IsControl) >= 0 {
			return fault.Invalidf("Custom property names must be 1 to %d characters without control characters.", maxPropertyNameLen)
		}
		if isBaseAttr(k) {
			return fault.Forbiddenf("Attribute '%s' is read-only.", k)
		}
		if err := checkWritable(k); err != nil {
			return err
		}
		if len(v) > maxPropertyValueLen || !utf8.ValidString(v) {
			return fault.Invalidf("The value of custom property '%s' must be UTF-8 text of at most %d bytes.", truncate(k, 64), maxPropertyValueLen)
		}
	}
	return nil
}

// checkText validates a short text attribute: at most max characters of
// UTF-8 without control characters, which would let a name forge log lines
// or break the dashboard's layout.
func checkText(field, s string, max int) error {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > max {
		return fault.Invalidf("Provided object does not match schema 'image': '%s' is too long (attribute '%s' has at most %d characters).",
			truncate(s, 64), field, max)
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return fault.Invalidf("Invalid value for attribute '%s': control characters are not allowed.", field)
	}
	return nil
}

func checkTag(t string) error {
	if t == "" || !utf8.ValidString(t) || utf8.RuneCountInString(t) > maxTagLen {
		return fault.Invalidf("Provided object does not match schema 'image': a tag must be 1 to %d characters.", maxTagLen)
	}
	if strings.IndexFunc(t, unicode.IsControl) >= 0 {
		return fault.Invalidf("Invalid tag: control characters are not allowed.")
	}
	return nil
}

func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = "'" + s + "'"
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// truncate shortens s for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
