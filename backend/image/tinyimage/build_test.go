package tinyimage

import (
	"context"
	"strings"
	"testing"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

func TestBuildRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no output", Options{}, "output path is required"},
		{"too small", Options{OutputPath: "x.qcow2", SizeMiB: 8}, "outside"},
		{"too large", Options{OutputPath: "x.qcow2", SizeMiB: 1 << 20}, "outside"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Build(context.Background(), tt.opts)
			if !fault.Is(err, fault.Invalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want an Invalid fault mentioning %q", err, tt.want)
			}
		})
	}
}

func TestHostPackagesCoverTools(t *testing.T) {
	listed := map[string]bool{}
	for _, p := range HostPackages {
		listed[p] = true
	}
	essential := map[string]bool{"apt": true, "dpkg": true, "mount": true}
	for _, tool := range hostTools {
		if !listed[tool.pkg] && !essential[tool.pkg] {
			t.Errorf("tool %s comes from %s, which HostPackages does not list", tool.tool, tool.pkg)
		}
	}
}
