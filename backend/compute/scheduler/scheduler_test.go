package scheduler

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nimbus-cloud/nimbus/backend/platform/db"
	"github.com/nimbus-cloud/nimbus/migrations"
)

// staticSource is a fixed host list.
type staticSource struct {
	mu    sync.Mutex
	hosts []Host
}

func (s *staticSource) Hosts(context.Context) ([]Host, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Host(nil), s.hosts...), nil
}

func openDB(t testing.TB) *db.DB {
	t.Helper()
	d, err := db.Open(filepath.Join(t.TempDir(), "nimbus.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Migrate(context.Background(), migrations.FS); err != nil {
		t.Fatal(err)
	}
	return d
}

func host(id string, vcpus, memMB, diskGB int64) Host {
	return Host{ID: id, Hostname: id, Up: true, Enabled: true, HypervisorType: "QEMU", VirtType: "kvm", Arch: "x86_64",
		AvailabilityZone: "nova", Capacity: Resources{vcpus, memMB, diskGB}}
}

func TestFilters(t *testing.T) {
	s := New(nil, Config{}, nil)
	base := host("h1", 4, 8192, 100)
	tiny := Resources{1, 512, 1}
	cases := []struct {
		name  string
		edit  func(h *Host)
		usage Usage
		req   Request
		want  bool
	}{
		{"fits", nil, Usage{}, Request{Resources: tiny}, true},
		{"down", func(h *Host) { h.Up = false }, Usage{}, Request{Resources: tiny}, false},
		{"disabled", func(h *Host) { h.Enabled = false }, Usage{}, Request{Resources: tiny}, false},
		{"zone match", nil, Usage{}, Request{Resources: tiny, AvailabilityZone: "nova"}, true},
		{"zone mismatch", nil, Usage{}, Request{Resources: tiny, AvailabilityZone: "az2"}, false},
		// RAM limit is 8192 × 1.5 = 12288.
		{"ram at ratio", nil, Usage{Resources: Resources{0, 12288 - 512, 0}}, Request{Resources: tiny}, true},
		{"ram over ratio", nil, Usage{Resources: Resources{0, 12288 - 511, 0}}, Request{Resources: tiny}, false},
		// Cores: 4 × 16 = 64.
		{"cores at ratio", nil, Usage{Resources: Resources{63, 0, 0}}, Request{Resources: tiny}, true},
		{"cores over ratio", nil, Usage{Resources: Resources{64, 0, 0}}, Request{Resources: tiny}, false},
		// Disk: ratio 1.0.
		{"disk full", nil, Usage{Resources: Resources{0, 0, 100}}, Request{Resources: tiny}, false},
		{"image hv qemu", nil, Usage{}, Request{Resources: tiny, ImageProperties: map[string]string{"hypervisor_type": "qemu"}}, true},
		{"image hv kvm", nil, Usage{}, Request{Resources: tiny, ImageProperties: map[string]string{"img_hv_type": "kvm"}}, true},
		{"image hv kvm on tcg", func(h *Host) { h.VirtType = "qemu" }, Usage{},
			Request{Resources: tiny, ImageProperties: map[string]string{"img_hv_type": "kvm"}}, false},
		{"image hv xen", nil, Usage{}, Request{Resources: tiny, ImageProperties: map[string]string{"hypervisor_type": "xen"}}, false},
		{"image arch alias", nil, Usage{}, Request{Resources: tiny, ImageProperties: map[string]string{"architecture": "amd64"}}, true},
		{"image arch mismatch", nil, Usage{}, Request{Resources: tiny, ImageProperties: map[string]string{"hw_architecture": "aarch64"}}, false},
		{"same host", nil, Usage{}, Request{Resources: tiny, SameHost: []string{"h1"}}, true},
		{"same host other", nil, Usage{}, Request{Resources: tiny, SameHost: []string{"h2"}}, false},
		{"different host", nil, Usage{}, Request{Resources: tiny, DifferentHost: []string{"h1"}}, false},
		{"different host other", nil, Usage{}, Request{Resources: tiny, DifferentHost: []string{"h2"}}, true},
		{"affinity first member", nil, Usage{}, Request{Resources: tiny, Group: &Group{Policy: PolicyAffinity}}, true},
		{"affinity here", nil, Usage{}, Request{Resources: tiny, Group: &Group{Policy: PolicyAffinity, Members: map[string]int{"h1": 1}}}, true},
		{"affinity elsewhere", nil, Usage{}, Request{Resources: tiny, Group: &Group{Policy: PolicyAffinity, Members: map[string]int{"h2": 1}}}, false},
		{"anti-affinity here", nil, Usage{}, Request{Resources: tiny, Group: &Group{Policy: PolicyAntiAffinity, Members: map[string]int{"h1": 1}}}, false},
		{"anti-affinity max 2", nil, Usage{}, Request{Resources: tiny, Group: &Group{Policy: PolicyAntiAffinity, MaxServerPerHost: 2, Members: map[string]int{"h1": 1}}}, true},
		{"soft anti-affinity never filters", nil, Usage{}, Request{Resources: tiny, Group: &Group{Policy: PolicySoftAntiAffinity, Members: map[string]int{"h1": 3}}}, true},
		{"tenant isolated, other project", func(h *Host) {
			h.Aggregates = []Aggregate{{Name: "a", Metadata: map[string]string{"filter_tenant_id": "p1,p2"}}}
		}, Usage{}, Request{Resources: tiny, ProjectID: "p3"}, false},
		{"tenant isolated, own project", func(h *Host) {
			h.Aggregates = []Aggregate{{Name: "a", Metadata: map[string]string{"filter_tenant_id_x": "p3"}}}
		}, Usage{}, Request{Resources: tiny, ProjectID: "p3"}, true},
		{"only hosts", nil, Usage{}, Request{Resources: tiny, OnlyHosts: []string{"h9"}}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := base
			if c.edit != nil {
				c.edit(&h)
			}
			got := len(s.Candidates([]Host{h}, map[string]Usage{"h1": c.usage}, c.req)) == 1
			if got != c.want {
				t.Fatalf("passes = %v, want %v", got, c.want)
			}
		})
	}
}

func TestWeighers(t *testing.T) {
	hs := []Host{host("small", 4, 4096, 100), host("big", 4, 16384, 100)}
	req := Request{Resources: Resources{1, 512, 1}}
	spread := New(nil, Config{}, nil).Candidates(hs, nil, req)
	if spread[0].Host.ID != "big" {
		t.Errorf("spread picks %s, want big", spread[0].Host.ID)
	}
	pack := New(nil, Config{Pack: true}, nil).Candidates(hs, nil, req)
	if pack[0].Host.ID != "small" {
		t.Errorf("pack picks %s, want small", pack[0].Host.ID)
	}
	// Soft anti-affinity outweighs RAM when the group already sits on "big".
	hs2 := []Host{host("a", 4, 8192, 100), host("b", 4, 8192, 100)}
	req.Group = &Group{Policy: PolicySoftAntiAffinity, Members: map[string]int{"a": 2}}
	if c := New(nil, Config{}, nil).Candidates(hs2, nil, req); c[0].Host.ID != "b" {
		t.Errorf("soft anti-affinity picks %s, want b", c[0].Host.ID)
	}
	req.Group = &Group{Policy: PolicySoftAffinity, Members: map[string]int{"b": 1}}
	if c := New(nil, Config{}, nil).Candidates(hs2, nil, req); c[0].Host.ID != "b" {
		t.Errorf("soft affinity picks %s, want b", c[0].Host.ID)
	}
}

// TestConcurrentClaims boots far more instances than fit from many
// goroutines and checks that exactly the capacity was placed and no host
// went over its limits.
func TestConcurrentClaims(t *testing.T) {
	d := openDB(t)
	// Each host takes 4 instances of 1 GiB disk (disk ratio 1.0).
	src := &staticSource{}
	for i := range 5 {
		src.hosts = append(src.hosts, host(fmt.Sprintf("h%d", i), 64, 65536, 4))
	}
	s := New(d, Config{}, src)
	ctx := context.Background()
	var ok, novalid atomic.Int32
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("inst-%02d", i)
			_, err := s.Schedule(ctx, Request{InstanceUUID: id, ProjectID: "p", Resources: Resources{1, 512, 1}})
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, ErrNoValidHost):
				novalid.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 20 || novalid.Load() != 40 {
		t.Fatalf("placed %d, no valid host %d; want 20 and 40", ok.Load(), novalid.Load())
	}
	u, err := s.Usage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range src.hosts {
		if u[h.ID].DiskGB > 4 || u[h.ID].Instances != 4 {
			t.Errorf("host %s usage %+v, want 4 instances within 4 GiB", h.ID, u[h.ID])
		}
	}
}

func TestResizeClaims(t *testing.T) {
	d := openDB(t)
	h := host("h1", 2, 4096, 10)
	src := &staticSource{hosts: []Host{h}}
	s := New(d, Config{CPUAllocationRatio: 1, RAMAllocationRatio: 1}, src)
	ctx := context.Background()
	if _, err := s.Schedule(ctx, Request{InstanceUUID: "i1", Resources: Resources{1, 1024, 2}}); err != nil {
		t.Fatal(err)
	}
	// 2 vCPUs do not fit beside the old 1.
	if ok, err := s.ClaimResize(ctx, h, "i1", Resources{2, 2048, 4}); err != nil || ok {
		t.Fatalf("oversized resize claim: ok=%v err=%v", ok, err)
	}
	ok, err := s.ClaimResize(ctx, h, "i1", Resources{1, 2048, 4})
	if err != nil || !ok {
		t.Fatalf("resize claim: ok=%v err=%v", ok, err)
	}
	u, _ := s.Usage(ctx)
	if u["h1"].Resources != (Resources{2, 3072, 6}) || u["h1"].Instances != 1 {
		t.Fatalf("usage during resize %+v", u["h1"])
	}
	if err := s.RevertResize(ctx, "i1"); err != nil {
		t.Fatal(err)
	}
	u, _ = s.Usage(ctx)
	if u["h1"].Resources != (Resources{1, 1024, 2}) {
		t.Fatalf("usage after revert %+v", u["h1"])
	}
	if ok, err := s.ClaimResize(ctx, h, "i1", Resources{1, 2048, 4}); err != nil || !ok {
		t.Fatalf("second resize claim: ok=%v err=%v", ok, err)
	}
	if err := s.ConfirmResize(ctx, "i1"); err != nil {
		t.Fatal(err)
	}
	u, _ = s.Usage(ctx)
	if u["h1"].Resources != (Resources{1, 2048, 4}) {
		t.Fatalf("usage after confirm %+v", u["h1"])
	}
	if err := s.Release(ctx, "i1"); err != nil {
		t.Fatal(err)
	}
	u, _ = s.Usage(ctx)
	if u["h1"].Resources != (Resources{}) {
		t.Fatalf("usage after release %+v", u["h1"])
	}
}

// TestStaleCacheRetries checks that capacity freed behind the cache's back
// (by another controller) is found on the second, fresh attempt.
func TestStaleCacheRetries(t *testing.T) {
	d := openDB(t)
	h := host("h1", 1, 1024, 1)
	s := New(d, Config{CPUAllocationRatio: 1, RAMAllocationRatio: 1}, &staticSource{hosts: []Host{h}})
	ctx := context.Background()
	if _, err := s.Schedule(ctx, Request{InstanceUUID: "a", Resources: Resources{1, 1024, 1}}); err != nil {
		t.Fatal(err)
	}
	other := New(d, Config{}, &staticSource{})
	if err := other.Release(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Schedule(ctx, Request{InstanceUUID: "b", Resources: Resources{1, 1024, 1}}); err != nil {
		t.Fatalf("schedule after a release elsewhere: %v", err)
	}
}

// BenchmarkSchedule1000Hosts measures placements per second over 1000
// hosts, each placement filtering and weighing every host and making its
// claim in a real SQLite transaction.
func BenchmarkSchedule1000Hosts(b *testing.B) {
	d := openDB(b)
	src := &staticSource{}
	for i := range 1000 {
		src.hosts = append(src.hosts, host(fmt.Sprintf("host-%04d", i), 64, 262144, 4000))
	}
	s := New(d, Config{}, src)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		id := fmt.Sprintf("inst-%d", i)
		if _, err := s.Schedule(ctx, Request{InstanceUUID: id, ProjectID: "p", Resources: Resources{1, 512, 1}}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "placements/s")
}
