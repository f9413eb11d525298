package network

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/db"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/policy"
	"github.com/nimbus-cloud/nimbus/migrations"
)

// recorder is a Notifier that keeps what it heard.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(kind string, op Op, id string) {
	r.mu.Lock()
	r.events = append(r.events, fmt.Sprintf("%s %s %s", kind, op, id))
	r.mu.Unlock()
}

func (r *recorder) NetworkChanged(_ context.Context, op Op, n *Network) { r.add("network", op, n.ID) }
func (r *recorder) SubnetChanged(_ context.Context, op Op, s *Subnet)   { r.add("subnet", op, s.ID) }
func (r *recorder) PortChanged(_ context.Context, op Op, p *Port)       { r.add("port", op, p.ID) }
func (r *recorder) RouterChanged(_ context.Context, op Op, rt *Router)  { r.add("router", op, rt.ID) }
func (r *recorder) FloatingIPChanged(_ context.Context, op Op, f *FloatingIP) {
	r.add("floatingip", op, f.ID)
}
func (r *recorder) SecurityGroupChanged(_ context.Context, op Op, g *SecurityGroup) {
	r.add("security_group", op, g.ID)
}

func (r *recorder) has(event string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if e == event {
			return true
		}
	}
	return false
}

// env is a network service on a fresh SQLite file.
type env struct {
	s     *Service
	db    *db.DB
	notes *recorder
	admin context.Context
}

func newEnv(t testing.TB, tweak ...func(*Config)) *env {
	t.Helper()
	ctx := context.Background()
	d, err := db.Open(filepath.Join(t.TempDir(), "nimbus.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Migrate(ctx, migrations.FS); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	cfg := Config{Policy: policy.New(PolicyRules()), Notifier: rec}
	for _, f := range tweak {
		f(&cfg)
	}
	s, err := New(ctx, d, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{s: s, db: d, notes: rec, admin: as("admin-project", "admin", "member", "reader")}
}

// as is a context carrying credentials scoped to project with roles, as
// the auth middleware would make from a token.
func as(project string, roles ...string) context.Context {
	return auth.WithCredentials(context.Background(), &auth.Credentials{
		UserID: "user-" + project, ProjectID: project, Roles: roles,
	})
}

// member is a member (and reader) of project.
func member(project string) context.Context { return as(project, "member", "reader") }

func ok(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantFault checks err's kind and Neutron type ("" for any type).
func wantFault(t testing.TB, err error, k fault.Kind, typ string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want kind %v type %q", k, typ)
	}
	if fault.KindOf(err) != k {
		t.Fatalf("got %v (kind %v, type %q), want kind %v", err, fault.KindOf(err), fault.TypeOf(err), k)
	}
	if typ != "" && fault.TypeOf(err) != typ {
		t.Fatalf("got %v (type %q), want type %q", err, fault.TypeOf(err), typ)
	}
}

func ptr[T any](v T) *T { return &v }

// network creates a network as ctx.
func (e *env) network(t testing.TB, ctx context.Context, in NetworkCreate) *Network {
	t.Helper()
	n, err := e.s.CreateNetwork(ctx, in)
	if err != nil {
		t.Fatalf("create network %+v: %v", in, err)
	}
	return n
}

// subnet creates a subnet as ctx.
func (e *env) subnet(t testing.TB, ctx context.Context, in SubnetCreate) *Subnet {
	t.Helper()
	sn, err := e.s.CreateSubnet(ctx, in)
	if err != nil {
		t.Fatalf("create subnet %+v: %v", in, err)
	}
	return sn
}

// port creates a port as ctx.
func (e *env) port(t testing.TB, ctx context.Context, in PortCreate) *Port {
	t.Helper()
	p, err := e.s.CreatePort(ctx, in)
	if err != nil {
		t.Fatalf("create port %+v: %v", in, err)
	}
	return p
}

// netWithSubnet makes a network with one subnet of cidr as ctx.
func (e *env) netWithSubnet(t testing.TB, ctx context.Context, cidr string, dhcp bool) (*Network, *Subnet) {
	t.Helper()
	n := e.network(t, ctx, NetworkCreate{Name: "net-" + cidr})
	sn := e.subnet(t, ctx, SubnetCreate{NetworkID: n.ID, CIDR: cidr, EnableDHCP: &dhcp})
	return n, sn
}

// external makes an external flat network with a subnet as admin.
func (e *env) external(t testing.TB, cidr string) (*Network, *Subnet) {
	t.Helper()
	n := e.network(t, e.admin, NetworkCreate{Name: "public", External: ptr(true), NetworkType: TypeFlat, PhysicalNetwork: "public"})
	sn := e.subnet(t, e.admin, SubnetCreate{NetworkID: n.ID, CIDR: cidr, EnableDHCP: ptr(false)})
	return n, sn
}
