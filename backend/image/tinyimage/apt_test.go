package tinyimage

import (
	"reflect"
	"testing"
)

const aptShowOutput = `Package: linux-image-cloud-amd64
Source: linux-signed-amd64 (6.1.192+2)
Version: 6.1.192-2
Installed-Size: 13
Depends: linux-image-6.1.0-56-cloud-amd64 (= 6.1.192-2)
Description: Linux for x86-64 cloud (meta-package)
 This package depends on the latest Linux kernel and modules for use on
 cloud platforms including Amazon EC2, Microsoft Azure, and GCE.
Filename: pool/main/l/linux-signed-amd64/linux-image-cloud-amd64_6.1.192-2_amd64.deb
SHA256: 00BE21C0C17F08DDF26E82D3B53FE7A41EFA4A288938DA6BB69E89C4B25C281D

Package: dropbear-bin
Version: 2022.83-1+deb12u3
Pre-Depends: dpkg (>= 1.17)
Depends: libc6 (>= 2.34), libcrypt1 (>= 1:4.1.0), libtomcrypt1 (>= 1.18.2), libtommath1 (>= 1.2.0), zlib1g:any (>= 1:1.1.4) | zlib-alt
Filename: pool/main/d/dropbear/dropbear-bin_2022.83-1+deb12u3_amd64.deb
SHA256: 44ac9aaae0105bca66ea4d457852bf97020ccab33d5c088b0e5c8668891290a0

`

func TestParseAptShow(t *testing.T) {
	got := parseAptShow(aptShowOutput)
	if len(got) != 2 {
		t.Fatalf("%d stanzas, want 2", len(got))
	}
	k := got[0]
	if k.Name != "linux-image-cloud-amd64" || k.Version != "6.1.192-2" ||
		k.Filename != "pool/main/l/linux-signed-amd64/linux-image-cloud-amd64_6.1.192-2_amd64.deb" ||
		k.SHA256 != "00be21c0c17f08ddf26e82d3b53fe7a41efa4a288938da6bb69e89c4b25c281d" {
		t.Errorf("kernel stanza parsed as %+v", *k)
	}
	if got[1].Depends != "dpkg (>= 1.17), libc6 (>= 2.34), libcrypt1 (>= 1:4.1.0), libtomcrypt1 (>= 1.18.2), libtommath1 (>= 1.2.0), zlib1g:any (>= 1:1.1.4) | zlib-alt" {
		t.Errorf("Pre-Depends and Depends joined as %q", got[1].Depends)
	}
}

func TestParseDepends(t *testing.T) {
	deps := parseDepends("libc6 (>= 2.34), zlib1g:any (>= 1:1.1.4) | zlib-alt, , linux-image-6.1.0-56-cloud-amd64 (= 6.1.192-2)")
	var names []string
	for _, d := range deps {
		names = append(names, d.name)
	}
	if want := []string{"libc6", "zlib1g", "linux-image-6.1.0-56-cloud-amd64"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("names %v, want %v", names, want)
	}
	for _, tt := range []struct {
		d    dependency
		want string
	}{
		{deps[2], "6.1.192-2"},
		{deps[0], ""}, // >= is not exact
		{dependency{name: "x"}, ""},
	} {
		if got := tt.d.exactVersion(); got != tt.want {
			t.Errorf("exactVersion(%q) = %q, want %q", tt.d.constraint, got, tt.want)
		}
	}
}

func TestPackageNameValidation(t *testing.T) {
	for _, ok := range []string{"libc6", "linux-image-6.1.0-56-cloud-amd64", "libstdc++6", "gcc-12-base"} {
		if !validPackageName.MatchString(ok) {
			t.Errorf("%q rejected", ok)
		}
	}
	for _, bad := range []string{"-o", "--option=x", "a b", "A", "x;y", ""} {
		if validPackageName.MatchString(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
	for _, ok := range []string{"1:1.35.0-4+deb12u1+b1", "6.1.192-2", "2.36-9+deb12u14", "1.0~rc1"} {
		if !validVersion.MatchString(ok) {
			t.Errorf("version %q rejected", ok)
		}
	}
	if validVersion.MatchString("1.0 -o x") {
		t.Error("version with spaces accepted")
	}
}
