package hosts

import (
	"crypto/sha256"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestVerifyingReader(t *testing.T) {
	declared := []byte("snapshot content")
	sum := sha256.Sum256(declared)
	tests := []struct {
		name string
		body string
		read func(io.Reader) error
		ok   bool
	}{
		{"exact, read to EOF", string(declared), func(r io.Reader) error { _, err := io.ReadAll(r); return err }, true},
		{"exact, CopyN", string(declared), func(r io.Reader) error { _, err := io.CopyN(io.Discard, r, int64(len(declared))); return err }, true},
		{"tampered, read to EOF", "snapshot c0ntent", func(r io.Reader) error { _, err := io.ReadAll(r); return err }, false},
		{"tampered, CopyN", "snapshot c0ntent", func(r io.Reader) error { _, err := io.CopyN(io.Discard, r, int64(len(declared))); return err }, false},
		{"short", "snapshot", func(r io.Reader) error { _, err := io.ReadAll(r); return err }, false},
		{"long", string(declared) + "more", func(r io.Reader) error { _, err := io.ReadAll(r); return err }, false},
		{"tampered, one byte at a time", "snapshot c0ntent", func(r io.Reader) error {
			_, err := io.ReadAll(io.LimitReader(oneByte{r}, int64(len(declared))))
			return err
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			size := int64(len(declared))
			vr := &verifyingReader{r: io.LimitReader(strings.NewReader(tc.body), size+1), h: sha256.New(), want: sum[:], size: size}
			err := tc.read(vr)
			if tc.ok != (err == nil) || (err != nil && !errors.Is(err, errUploadMismatch)) {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// oneByte reads one byte per call, to cross the size boundary exactly.
type oneByte struct{ r io.Reader }

func (o oneByte) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}
