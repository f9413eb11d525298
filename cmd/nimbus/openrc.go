package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// openrcName is the file, under the data directory, holding the admin's
// credentials in the form `source` and the openstack CLI understand.
const openrcName = "admin-openrc"

// writeOpenrc writes the admin credentials file with mode 0600.
func writeOpenrc(dataDir, authURL, password string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Nimbus admin credentials: source this file, then run openstack commands.\n")
	fmt.Fprintf(&b, "export OS_AUTH_URL=%s\n", shellQuote(authURL))
	fmt.Fprintf(&b, "export OS_USERNAME=admin\n")
	fmt.Fprintf(&b, "export OS_PASSWORD=%s\n", shellQuote(password))
	fmt.Fprintf(&b, "export OS_PROJECT_NAME=admin\n")
	fmt.Fprintf(&b, "export OS_USER_DOMAIN_NAME=Default\n")
	fmt.Fprintf(&b, "export OS_PROJECT_DOMAIN_NAME=Default\n")
	fmt.Fprintf(&b, "export OS_IDENTITY_API_VERSION=3\n")
	fmt.Fprintf(&b, "export OS_REGION_NAME=RegionOne\n")
	fmt.Fprintf(&b, "export OS_INTERFACE=public\n")
	return writeFileAtomic(filepath.Join(dataDir, openrcName), []byte(b.String()), 0o600)
}

// updateOpenrcAuthURL points an existing admin-openrc at authURL when the
// server now answers elsewhere, leaving every other line alone. A missing
// file is left missing: the password it held is shown only once.
func updateOpenrcAuthURL(dataDir, authURL string) error {
	path := filepath.Join(dataDir, openrcName)
	old, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	want := "export OS_AUTH_URL=" + shellQuote(authURL)
	var out bytes.Buffer
	changed := false
	sc := bufio.NewScanner(bytes.NewReader(old))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "export OS_AUTH_URL=") && line != want {
			line, changed = want, true
		}
		out.WriteString(line + "\n")
	}
	if !changed {
		return nil
	}
	return writeFileAtomic(path, out.Bytes(), 0o600)
}

// shellQuote quotes s for a POSIX shell when it needs quoting.
func shellQuote(s string) string {
	safe := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:@%+=,", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// writeFileAtomic replaces path with data so a crash never leaves half a file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(tmp.Name(), path)
}
