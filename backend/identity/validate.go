package identity

import (
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// Length limits. Keystone caps most names at 64 characters; application
// credential names, emails and URLs follow its 255.
const (
	maxNameLen        = 64
	maxLongNameLen    = 255
	maxDescriptionLen = 65535
	maxTagLen         = 255
	maxTagsPerProject = 80
	maxPageSize       = 1000
	maxProjectDepth   = 5
)

// newID returns a Keystone-style ID: a random UUID4 as 32 lowercase hex digits.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand panics rather than return an error)
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	return hex.EncodeToString(b[:])
}

// checkName validates a resource name: required, at most max characters,
// not only whitespace, and free of control characters (which would let a
// name forge log lines or break the dashboard's layout).
func checkName(kind, name string, max int) error {
	if strings.TrimSpace(name) == "" {
		return fault.Invalidf("Invalid input for field 'name': a %s name is required.", kind)
	}
	if n := utf8.RuneCountInString(name); n > max || !utf8.ValidString(name) {
		return fault.Invalidf("Invalid input for field 'name': '%s' is too long (a %s name has at most %d characters).",
			truncate(name, 80), kind, max)
	}
	if strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return fault.Invalidf("Invalid input for field 'name': a %s name must not contain control characters.", kind)
	}
	return nil
}

func checkDescription(d string) error {
	if len(d) > maxDescriptionLen || !utf8.ValidString(d) {
		return fault.Invalidf("Invalid input for field 'description': at most %d bytes of UTF-8 text.", maxDescriptionLen)
	}
	return nil
}

func checkEmail(e string) error {
	if utf8.RuneCountInString(e) > maxLongNameLen || strings.IndexFunc(e, unicode.IsControl) >= 0 {
		return fault.Invalidf("Invalid input for field 'email': at most %d characters, no control characters.", maxLongNameLen)
	}
	return nil
}

// checkTags validates a project's tag list the way Keystone does: at most 80
// tags of at most 255 characters, none containing '/' or ',' (they would be
// ambiguous in the tags URL and query parameters), no duplicates.
func checkTags(tags []string) error {
	if len(tags) > maxTagsPerProject {
		return fault.Invalidf("Invalid input for field 'tags': a project has at most %d tags.", maxTagsPerProject)
	}
	seen := make(map[string]bool, len(tags))
	for _, t := range tags {
		if err := checkTag(t); err != nil {
			return err
		}
		if seen[t] {
			return fault.Invalidf("Invalid input for field 'tags': duplicate tag '%s'.", t)
		}
		seen[t] = true
	}
	return nil
}

func checkTag(t string) error {
	if strings.TrimSpace(t) == "" || utf8.RuneCountInString(t) > maxTagLen || !utf8.ValidString(t) ||
		strings.ContainsAny(t, "/,") || strings.IndexFunc(t, unicode.IsControl) >= 0 {
		return fault.Invalidf("Invalid input for field 'tags': '%s' is not a valid tag (1 to %d characters, no '/' or ',').",
			truncate(t, 80), maxTagLen)
	}
	return nil
}

// checkURL requires an absolute http or https URL for catalog endpoints.
// "$(project_id)s" placeholders are allowed, as Keystone substitutes them.
func checkURL(raw string) error {
	u, err := url.Parse(strings.NewReplacer("$(project_id)s", "x", "$(tenant_id)s", "x").Replace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		len(raw) > 2048 || strings.IndexFunc(raw, unicode.IsControl) >= 0 {
		return fault.Invalidf("Invalid input for field 'url': '%s' is not an absolute http(s) URL.", truncate(raw, 200))
	}
	return nil
}

func checkInterface(i string) error {
	switch i {
	case "public", "internal", "admin":
		return nil
	}
	return fault.Invalidf("Invalid input for field 'interface': '%s' is not one of public, internal, admin.", truncate(i, 40))
}

// pageSize turns a requested limit into the number of rows to return.
func pageSize(limit int) int {
	if limit <= 0 || limit > maxPageSize {
		return maxPageSize
	}
	return limit
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "..."
}
