package tinyimage

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestResolveInRoot(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	mk := func(rel, data string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ln := func(target, rel string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	mk("lib/x86_64-linux-gnu/libz.so.1.2.13", "zlib")
	ln("libz.so.1.2.13", "lib/x86_64-linux-gnu/libz.so.1")
	ln("/lib/x86_64-linux-gnu/libz.so.1", "lib64/libz-abs.so")
	ln("../../../../../../lib/x86_64-linux-gnu/libz.so.1", "usr/lib/dotdot.so")
	ln("/usr/lib/x86_64-linux-gnu", "libdir") // an absolute directory link
	mk("usr/lib/x86_64-linux-gnu/libgmp.so.10.4.1", "gmp")
	ln("libgmp.so.10.4.1", "usr/lib/x86_64-linux-gnu/libgmp.so.10")
	if err := os.WriteFile(filepath.Join(outside, "secret.so"), []byte("host"), 0o644); err != nil {
		t.Fatal(err)
	}
	ln(filepath.Join(outside, "secret.so"), "lib/escape.so")
	ln("loop2", "lib/loop1")
	ln("loop1", "lib/loop2")

	tests := []struct {
		rel, want string
		wantErr   bool
	}{
		{rel: "lib/x86_64-linux-gnu/libz.so.1", want: "zlib"},
		{rel: "lib64/libz-abs.so", want: "zlib"},
		{rel: "usr/lib/dotdot.so", want: "zlib"},
		{rel: "libdir/libgmp.so.10", want: "gmp"},
		{rel: "lib/escape.so", wantErr: true}, // resolves inside root, where it does not exist
		{rel: "lib/loop1", wantErr: true},
		{rel: "lib/x86_64-linux-gnu", wantErr: true}, // a directory
		{rel: "lib/missing.so", wantErr: true},
	}
	for _, tt := range tests {
		p, err := resolveInRoot(root, tt.rel)
		if tt.wantErr {
			if err == nil {
				t.Errorf("%s: resolved to %s, want an error", tt.rel, p)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.rel, err)
			continue
		}
		data, _ := os.ReadFile(p)
		if string(data) != tt.want {
			t.Errorf("%s: resolved to %s containing %q, want %q", tt.rel, p, data, tt.want)
		}
	}
	if _, err := resolveInRoot(root, "lib/missing.so"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want ErrNotExist so findLib tries the next directory", err)
	}
}

// TestResolveSharedLibsHost resolves a real dynamically linked host binary
// against the host's own root, as the build does against unpacked packages.
func TestResolveSharedLibsHost(t *testing.T) {
	bin := "/bin/ls"
	if _, err := os.Stat(bin); err != nil {
		t.Skip("no /bin/ls")
	}
	libs, err := resolveSharedLibs([]string{bin}, []string{"/"})
	if err != nil {
		t.Fatal(err)
	}
	if libs.interp == "" {
		t.Fatal("no PT_INTERP found")
	}
	if _, ok := libs.libs["libc.so.6"]; !ok {
		t.Fatalf("libc.so.6 not in %v", libs.sonames())
	}
	if _, ok := libs.libs[filepath.Base(libs.interp)]; !ok {
		t.Fatalf("loader %s not in %v", libs.interp, libs.sonames())
	}
}
