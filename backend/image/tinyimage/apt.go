package tinyimage

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Every input comes from the host's configured Debian archive through apt:
// apt verifies the archive signatures and hashes, and we re-check SHA256 when
// reusing a cached .deb. Packages are only downloaded and unpacked with
// dpkg-deb -x, never installed on the host.

const (
	kernelMetaPackage = "linux-image-cloud-amd64"
	busyboxPackage    = "busybox-static"
	dropbearPackage   = "dropbear-bin"
	// maxLibPackages bounds the dependency walk: dropbear's closure is
	// about eight packages on Debian 12.
	maxLibPackages = 30
)

// debPackage is one downloaded package and where it was unpacked.
type debPackage struct {
	Name     string
	Version  string
	Filename string // pool path from the archive index
	SHA256   string
	Depends  string // raw Depends and Pre-Depends fields

	deb  string // the .deb in the cache
	root string // its unpacked tree
}

// inputs are the unpacked packages the image is assembled from.
type inputs struct {
	kernelMeta *debPackage
	kernel     *debPackage // linux-image-<abi>-cloud-amd64, the real one
	busybox    *debPackage
	dropbear   *debPackage
	// libs are dropbear's library dependencies (libc6, libtomcrypt1, ...):
	// downloading them, rather than copying the host's /lib, keeps the
	// image independent of what happens to be installed on the build host.
	libs []*debPackage
}

func (in *inputs) all() []*debPackage {
	out := []*debPackage{in.kernelMeta, in.kernel, in.busybox, in.dropbear}
	return append(out, in.libs...)
}

// libRoots are the unpacked trees searched for dropbear's shared libraries.
func (in *inputs) libRoots() []string {
	roots := []string{in.dropbear.root}
	for _, p := range in.libs {
		roots = append(roots, p.root)
	}
	return roots
}

// fetchInputs resolves, downloads and unpacks every package the image needs.
// Lookups are batched, one apt-cache call per dependency level, because
// each call costs about half a second.
func fetchInputs(ctx context.Context, log *slog.Logger, cacheDir, unpackDir string) (*inputs, error) {
	var in inputs
	first, err := aptShow(ctx, log, []string{kernelMetaPackage, busyboxPackage, dropbearPackage})
	if err != nil {
		return nil, err
	}
	in.kernelMeta, in.busybox, in.dropbear = first[0], first[1], first[2]

	// The kernel meta package is empty; it depends on the versioned kernel
	// package at exactly its own version.
	var versioned dependency
	for _, d := range parseDepends(in.kernelMeta.Depends) {
		if strings.HasPrefix(d.name, "linux-image-") {
			versioned = d
			break
		}
	}
	if versioned.name == "" {
		return nil, fmt.Errorf("%s %s depends on no linux-image package (Depends: %q)",
			kernelMetaPackage, in.kernelMeta.Version, in.kernelMeta.Depends)
	}
	kernelArg := versioned.name
	if v := versioned.exactVersion(); v != "" {
		kernelArg += "=" + v
	}

	// dropbear's libraries have libraries of their own (libtomcrypt needs
	// libgmp), so take the closure of its Depends, level by level; only the
	// files reached through DT_NEEDED end up in the image.
	seen := map[string]bool{}
	level := []string{kernelArg}
	for _, d := range parseDepends(in.dropbear.Depends) {
		seen[d.name] = true
		level = append(level, d.name)
	}
	for len(level) > 0 {
		pkgs, err := aptShow(ctx, log, level)
		if err != nil {
			return nil, fmt.Errorf("dependencies of %s: %w", dropbearPackage, err)
		}
		level = nil
		for _, p := range pkgs {
			if in.kernel == nil && p.Name == versioned.name {
				in.kernel = p
				continue
			}
			in.libs = append(in.libs, p)
			for _, d := range parseDepends(p.Depends) {
				if !seen[d.name] {
					seen[d.name] = true
					level = append(level, d.name)
				}
			}
		}
		if len(seen) > maxLibPackages {
			return nil, fmt.Errorf("dependencies of %s: more than %d packages", dropbearPackage, maxLibPackages)
		}
	}
	if in.kernel == nil {
		return nil, fmt.Errorf("kernel package %s: not in apt-cache's answer", kernelArg)
	}

	for _, p := range in.all() {
		if err := fetchDeb(ctx, log, cacheDir, p); err != nil {
			return nil, err
		}
		p.root = filepath.Join(unpackDir, p.Name)
		if err := os.RemoveAll(p.root); err != nil {
			return nil, fmt.Errorf("clean %s: %w", p.root, err)
		}
		if err := os.MkdirAll(p.root, 0o755); err != nil {
			return nil, fmt.Errorf("create %s: %w", p.root, err)
		}
		if _, err := runCmd(ctx, log, "", "dpkg-deb", "-x", p.deb, p.root); err != nil {
			return nil, fmt.Errorf("unpack %s: %w", p.Name, err)
		}
		log.Info("tiny image: package ready", "package", p.Name, "version", p.Version)
	}
	return &in, nil
}

// aptShow reads the index entries of the candidate versions of the named
// packages ("name" or "name=version"), in the order asked.
func aptShow(ctx context.Context, log *slog.Logger, args []string) ([]*debPackage, error) {
	for _, a := range args {
		name, version, _ := strings.Cut(a, "=")
		if !validPackageName.MatchString(name) || (version != "" && !validVersion.MatchString(version)) {
			return nil, fmt.Errorf("invalid package %q", a)
		}
	}
	out, err := runCmd(ctx, log, "", "apt-cache", append([]string{"show", "--no-all-versions", "--"}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("look up %s (is apt-get update done?): %w", strings.Join(args, " "), err)
	}
	stanzas := parseAptShow(out)
	if len(stanzas) != len(args) {
		return nil, fmt.Errorf("look up %s: apt-cache show gave %d entries for %d packages",
			strings.Join(args, " "), len(stanzas), len(args))
	}
	for i, p := range stanzas {
		name, _, _ := strings.Cut(args[i], "=")
		if p.Name != name || p.Version == "" || p.Filename == "" || len(p.SHA256) != 64 {
			return nil, fmt.Errorf("look up %s: apt-cache show gave an incomplete entry for %q", args[i], p.Name)
		}
	}
	return stanzas, nil
}

// validPackageName is Debian policy's package name syntax; it also keeps a
// name read from a Depends field from turning into an apt option.
var validPackageName = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)

// validVersion is Debian policy's version syntax (epoch:upstream-revision).
var validVersion = regexp.MustCompile(`^[0-9A-Za-z.+~:-]+$`)

// parseAptShow parses apt-cache show output into one entry per stanza.
func parseAptShow(out string) []*debPackage {
	var all []*debPackage
	var p *debPackage
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			p = nil // end of a stanza
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue // continuation of a multi-line field
		}
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		if p == nil {
			p = &debPackage{}
			all = append(all, p)
		}
		val = strings.TrimSpace(val)
		switch key {
		case "Package":
			p.Name = val
		case "Version":
			p.Version = val
		case "Filename":
			p.Filename = val
		case "SHA256":
			p.SHA256 = strings.ToLower(val)
		case "Depends", "Pre-Depends":
			if p.Depends != "" {
				p.Depends += ", "
			}
			p.Depends += val
		}
	}
	return all
}

type dependency struct{ name, constraint string }

// exactVersion is the version of an "(= V)" constraint, else "".
func (d dependency) exactVersion() string {
	c := strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(d.constraint, "("), ")"))
	if v, ok := strings.CutPrefix(c, "= "); ok {
		return strings.TrimSpace(v)
	}
	return ""
}

// parseDepends splits a Depends field, taking the first of each set of
// alternatives and dropping architecture qualifiers.
func parseDepends(field string) []dependency {
	var deps []dependency
	for _, part := range strings.Split(field, ",") {
		alt, _, _ := strings.Cut(part, "|")
		alt = strings.TrimSpace(alt)
		if alt == "" {
			continue
		}
		name, constraint, _ := strings.Cut(alt, " ")
		name, _, _ = strings.Cut(name, ":")
		deps = append(deps, dependency{name: name, constraint: strings.TrimSpace(constraint)})
	}
	return deps
}

// fetchDeb makes p.deb point at a verified copy of the package in cacheDir,
// downloading it with apt-get download unless a good copy is cached.
func fetchDeb(ctx context.Context, log *slog.Logger, cacheDir string, p *debPackage) error {
	p.deb = filepath.Join(cacheDir, filepath.Base(p.Filename))
	if sum, err := fileSHA256(p.deb); err == nil && sum == p.SHA256 {
		log.Debug("tiny image: cached package", "package", p.Name, "file", p.deb)
		return nil
	}
	tmp, err := os.MkdirTemp(cacheDir, ".download-")
	if err != nil {
		return fmt.Errorf("download %s: %w", p.Name, err)
	}
	defer os.RemoveAll(tmp)
	log.Info("tiny image: downloading package", "package", p.Name, "version", p.Version)
	// As root, apt drops to the _apt user for downloads and only warns when
	// that user cannot write the target directory; the archive is signed and
	// hashed either way, so run as root without the noise.
	if _, err := runCmd(ctx, log, tmp, "apt-get", "download", "-q",
		"-o", "APT::Sandbox::User=root", p.Name+"="+p.Version); err != nil {
		return fmt.Errorf("download %s: %w", p.Name, err)
	}
	matches, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(matches) != 1 {
		return fmt.Errorf("download %s: expected one .deb, found %d", p.Name, len(matches))
	}
	sum, err := fileSHA256(matches[0])
	if err != nil {
		return fmt.Errorf("download %s: %w", p.Name, err)
	}
	if sum != p.SHA256 {
		return fmt.Errorf("download %s: sha256 %s, index says %s", p.Name, sum, p.SHA256)
	}
	if err := os.Rename(matches[0], p.deb); err != nil {
		return fmt.Errorf("download %s: %w", p.Name, err)
	}
	return nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
