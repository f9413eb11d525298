package policy

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

func TestParseValid(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", "@"},
		{"@", "@"},
		{"!", "!"},
		{"role:admin", "role:admin"},
		{"rule:admin_required", "rule:admin_required"},
		{"role:a or role:b", "(role:a or role:b)"},
		{"role:a and role:b", "(role:a and role:b)"},
		{"role:a or role:b and role:c", "(role:a or (role:b and role:c))"},
		{"role:a and role:b or role:c", "((role:a and role:b) or role:c)"},
		{"(role:a or role:b) and role:c", "((role:a or role:b) and role:c)"},
		{"not role:a and role:b", "(not role:a and role:b)"},
		{"not (role:a and role:b)", "not (role:a and role:b)"},
		{"not not role:a", "not not role:a"},
		{"role:a or role:b or role:c", "(role:a or role:b or role:c)"},
		{"role:a AND role:b OR NOT role:c", "((role:a and role:b) or not role:c)"},
		{"((role:a))", "role:a"},
		{"( role:a )", "role:a"},
		{"  role:a\tor\nrole:b  ", "(role:a or role:b)"},
		{"(project_id:%(project_id)s)", "project_id:%(project_id)s"},
		{"is_admin:True", "is_admin:True"},
		{"user_id:%(user_id)s", "user_id:%(user_id)s"},
		{"domain_id:%(target.project.domain_id)s", "domain_id:%(target.project.domain_id)s"},
		{"system_scope:all", "system_scope:all"},
		{"'member':%(role.name)s", "'member':%(role.name)s"},
		{"True:%(enforce_new_defaults)s", "True:%(enforce_new_defaults)s"},
		{"project_id:abc", "project_id:abc"},
		{"project_id:", "project_id:"},
		{"tenant_id:%(tenant_id)s", "tenant_id:%(tenant_id)s"},
		{"user_id:a%%b", "user_id:a%%b"},
		{"user_id:x-%(a)s-%(b)s", "user_id:x-%(a)s-%(b)s"},
		{"role:admin or (role:member and project_id:%(project_id)s) or @",
			"(role:admin or (role:member and project_id:%(project_id)s) or @)"},
	}
	for _, tt := range tests {
		n, err := parse(tt.in)
		if err != nil {
			t.Errorf("parse(%q): %v", tt.in, err)
			continue
		}
		if got := n.String(); got != tt.want {
			t.Errorf("parse(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestParseInvalid(t *testing.T) {
	tests := []string{
		" ",
		"admin",
		"role:",
		"rule:",
		":x",
		"and",
		"role:a and",
		"or role:a",
		"role:a or or role:b",
		"not",
		"(role:a",
		"role:a)",
		"()",
		"role:a role:b",
		"'bare'",
		"nosuchfield:%(x)s",
		"user_id:%(x)d",
		"user_id:%(x",
		"user_id:%s",
		"user_id:50%",
		"http://example.com/check",
		"https:x",
		strings.Repeat("(", maxDepth+1) + "@" + strings.Repeat(")", maxDepth+1),
		strings.Repeat("not ", maxDepth+1) + "@",
	}
	for _, in := range tests {
		if n, err := parse(in); err == nil {
			t.Errorf("parse(%q) = %s, want error", in, n)
		}
	}
}

func TestPyLiteral(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"'member'", "member", true},
		{`"member"`, "member", true},
		{"True", "True", true},
		{"None", "None", true},
		{"1", "1", true},
		{"-0", "0", true},
		{"+12", "12", true},
		{"-12", "-12", true},
		{"012", "", false},
		{"user_id", "", false},
		{"'a", "", false},
		{`'a\'b'`, "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := pyLiteral(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("pyLiteral(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// Credentials as the identity service issues them: implied roles included.
var (
	projAdmin = &auth.Credentials{UserID: "u-admin", UserDomainID: "default", ProjectID: "p1",
		ProjectDomainID: "default", Roles: []string{"admin", "member", "reader"}}
	projMember = &auth.Credentials{UserID: "u1", UserDomainID: "default", ProjectID: "p1",
		ProjectDomainID: "default", Roles: []string{"member", "reader"}}
	projReader = &auth.Credentials{UserID: "u2", UserDomainID: "default", ProjectID: "p1",
		ProjectDomainID: "default", Roles: []string{"reader"}}
	otherMember = &auth.Credentials{UserID: "u3", UserDomainID: "d2", ProjectID: "p2",
		ProjectDomainID: "d2", Roles: []string{"member", "reader"}}
	sysAdmin = &auth.Credentials{UserID: "u-sys", UserDomainID: "default", System: true,
		Roles: []string{"admin", "member", "reader"}}
	domainAdmin = &auth.Credentials{UserID: "u-dom", UserDomainID: "d2", DomainID: "d2",
		Roles: []string{"admin", "member", "reader"}}
	unscoped  = &auth.Credentials{UserID: "u4", UserDomainID: "default"}
	netadmin  = &auth.Credentials{UserID: "u5", ProjectID: "p1", Roles: []string{"netadmin", "member", "reader"}}
	itsecUser = &auth.Credentials{UserID: "u6", ProjectID: "p9", Roles: []string{"itsec", "reader"}}
	manager   = &auth.Credentials{UserID: "u7", ProjectID: "p1", Roles: []string{"project_manager", "member", "reader"}}
	service   = &auth.Credentials{UserID: "nova", ProjectID: "service", Roles: []string{"service"}}
	upperRole = &auth.Credentials{UserID: "u8", ProjectID: "p1", Roles: []string{"Member"}}
)

func TestEval(t *testing.T) {
	p1 := Target{"project_id": "p1", "user_id": "u1"}
	p2 := Target{"project_id": "p2", "user_id": "u3"}
	tests := []struct {
		check string
		c     *auth.Credentials
		t     Target
		want  bool
	}{
		{"", projReader, nil, true},
		{"@", unscoped, nil, true},
		{"!", projAdmin, p1, false},
		{"role:admin", projAdmin, nil, true},
		{"role:admin", projMember, nil, false},
		{"role:member", upperRole, nil, true}, // role checks ignore case, like oslo
		{"roles:member", upperRole, nil, false},
		{"roles:Member", upperRole, nil, true},
		{"role:%(role)s", projMember, Target{"role": "member"}, true},
		{"role:%(role)s", projMember, nil, false},
		{"not role:admin", projMember, nil, true},
		{"not role:admin", projAdmin, nil, false},
		{"is_admin:True", projAdmin, nil, true},
		{"is_admin:1", projAdmin, nil, true},
		{"is_admin:True", projMember, nil, false},
		{"is_admin:False", projMember, nil, true},
		{"is_admin:0", projAdmin, nil, false},
		{"is_admin_project:True", projMember, nil, true},
		{"user_id:%(user_id)s", projMember, p1, true},
		{"user_id:%(user_id)s", projReader, p1, false},
		{"user_id:%(user_id)s", projMember, nil, false},
		{"project_id:%(project_id)s", projMember, p1, true},
		{"project_id:%(project_id)s", otherMember, p1, false},
		{"project_id:%(project_id)s", otherMember, p2, true},
		{"tenant_id:%(tenant_id)s", projMember, Target{"tenant_id": "p1"}, true},
		// An unscoped token has no project; an empty target value must not
		// match it.
		{"project_id:%(project_id)s", unscoped, Target{"project_id": ""}, false},
		{"project_id:", unscoped, nil, false},
		{"project_id:p1", projMember, nil, true},
		{"project_id:abc", projMember, nil, false},
		{"user_domain_id:default", projMember, nil, true},
		{"project_domain_id:%(target.project.domain_id)s", otherMember, Target{"target.project.domain_id": "d2"}, true},
		{"domain_id:%(target.project.domain_id)s", domainAdmin, Target{"target.project.domain_id": "d2"}, true},
		{"domain_id:%(target.project.domain_id)s", domainAdmin, Target{"target.project.domain_id": "default"}, false},
		{"domain_id:%(target.project.domain_id)s", projAdmin, Target{"target.project.domain_id": "default"}, false},
		{"system_scope:all", sysAdmin, nil, true},
		{"system_scope:all", projAdmin, nil, false},
		{"role:admin and system_scope:all", sysAdmin, nil, true},
		{"'member':%(target.role.name)s", projReader, Target{"target.role.name": "member"}, true},
		{"'member':%(target.role.name)s", projReader, Target{"target.role.name": "admin"}, false},
		{"'member':%(target.role.name)s", projReader, nil, false},
		{"True:%(enforce_new_defaults)s", projReader, Target{"enforce_new_defaults": "True"}, true},
		{"True:%(enforce_new_defaults)s", projReader, Target{"enforce_new_defaults": "False"}, false},
		{"1:%(n)s", projReader, Target{"n": "1"}, true},
		{"user_id:x-%(a)s-%(b)s", &auth.Credentials{UserID: "x-1-2"}, Target{"a": "1", "b": "2"}, true},
		{"user_id:x-%(a)s-%(b)s", &auth.Credentials{UserID: "x-1-2"}, Target{"a": "1", "b": "3"}, false},
		{"user_id:x-%(a)s-%(b)s", &auth.Credentials{UserID: "x-1-2"}, Target{"a": "1-2", "b": ""}, false},
		{"user_id:x-%(a)s-%(b)s", &auth.Credentials{UserID: "x-1-2-"}, Target{"a": "1-2", "b": ""}, true},
		{"user_id:a%%b", &auth.Credentials{UserID: "a%b"}, nil, true},
		// Precedence: not > and > or.
		{"role:admin or role:member and project_id:%(project_id)s", projAdmin, p2, true},
		{"role:admin or role:member and project_id:%(project_id)s", projMember, p2, false},
		{"(role:admin or role:member) and project_id:%(project_id)s", projAdmin, p2, false},
		{"not role:admin and role:member", projMember, nil, true},
		{"not (role:admin and role:reader)", projReader, nil, true},
		{"not (role:member or role:reader)", projReader, nil, false},
		// Base rules through rule: references.
		{"rule:admin_required", projAdmin, nil, true},
		{"rule:admin_required", projMember, nil, false},
		{"rule:admin_or_owner", projMember, p1, true},
		{"rule:admin_or_owner", projReader, p1, false},
		{"rule:project_reader", projReader, p1, true},
		{"rule:project_reader", projAdmin, p1, true},
		{"rule:project_reader", otherMember, p1, false},
		{"rule:project_member", projReader, p1, false},
		{"rule:project_member", projMember, p1, true},
		{"rule:project_admin", projAdmin, p1, true},
		{"rule:project_admin", projAdmin, p2, false},
		{"rule:project_netadmin", netadmin, p1, true},
		{"rule:project_netadmin", netadmin, p2, false},
		{"rule:itsec", itsecUser, p1, true},
		{"rule:itsec", projAdmin, p1, false},
		{"rule:project_manager", manager, p1, true},
		{"rule:project_manager", projMember, p1, false},
		{"rule:service_role", service, nil, true},
		{"rule:nosuchrule", projAdmin, nil, false},
		{"not rule:nosuchrule", projAdmin, nil, true},
	}
	for _, tt := range tests {
		e := New(BaseRules())
		e.Register(Rule{Name: "test:action", Check: tt.check})
		if got := e.Allowed("test:action", tt.c, tt.t); got != tt.want {
			t.Errorf("%q for %s on %v = %v, want %v", tt.check, tt.c.UserID, tt.t, got, tt.want)
		}
	}
}

func TestEnforce(t *testing.T) {
	e := New(append(BaseRules(), Rule{Name: "compute:get", Check: "rule:project_reader"}))
	if err := e.Enforce("compute:get", projReader, Target{"project_id": "p1"}); err != nil {
		t.Fatalf("Enforce allowed action: %v", err)
	}
	tests := []struct {
		action string
		c      *auth.Credentials
	}{
		{"compute:get", otherMember},
		{"compute:unknown", projAdmin},
		{"", projAdmin},
	}
	for _, tt := range tests {
		err := e.Enforce(tt.action, tt.c, Target{"project_id": "p1"})
		if !fault.Is(err, fault.Forbidden) {
			t.Errorf("Enforce(%q) = %v, want Forbidden", tt.action, err)
		}
		want := "Policy doesn't allow " + tt.action + " to be performed."
		if got := fault.Message(err); got != want {
			t.Errorf("Enforce(%q) message = %q, want %q", tt.action, got, want)
		}
	}
}

func TestNilCredentials(t *testing.T) {
	tests := []struct {
		check string
		want  bool
	}{
		{"@", true},
		{"", true},
		{"rule:public", true},
		{"@ or role:admin", true},
		{"not !", true},
		{"!", false},
		{"role:admin", false},
		{"not role:admin", false},
		{"user_id:%(user_id)s", false},
		{"'a':%(x)s", false},
		{"not rule:nosuchrule", false},
		{"@ and role:admin", false},
	}
	for _, tt := range tests {
		e := New([]Rule{{Name: "public", Check: "@"}, {Name: "act", Check: tt.check}})
		if got := e.Allowed("act", nil, Target{"user_id": "", "x": "a"}); got != tt.want {
			t.Errorf("nil credentials, %q = %v, want %v", tt.check, got, tt.want)
		}
	}
	if err := New(nil).Enforce("act", nil, nil); !fault.Is(err, fault.Forbidden) {
		t.Errorf("nil credentials, unknown action: %v", err)
	}
	var zero Engine
	if zero.Allowed("x", projAdmin, nil) {
		t.Error("zero Engine allowed an action")
	}
}

func TestCycles(t *testing.T) {
	e := New([]Rule{
		{Name: "self", Check: "rule:self"},
		{Name: "a", Check: "rule:b or @"},
		{Name: "b", Check: "not rule:a"},
		{Name: "reaches", Check: "role:admin or rule:a"},
		{Name: "fine", Check: "rule:leaf and rule:leaf"},
		{Name: "leaf", Check: "role:admin"},
	})
	for _, action := range []string{"self", "a", "b", "reaches"} {
		if e.Allowed(action, projAdmin, nil) {
			t.Errorf("%s (cyclic) allowed", action)
		}
		if e.Allowed(action, nil, nil) {
			t.Errorf("%s (cyclic) allowed nil credentials", action)
		}
	}
	if !e.Allowed("fine", projAdmin, nil) {
		t.Error("acyclic rule sharing a leaf denied")
	}

	// An override file may break a cycle among defaults...
	path := writeFile(t, "policy.yaml", "b: role:admin\n")
	if err := e.LoadFile(path); err != nil {
		t.Fatal(err)
	}
	if !e.Allowed("a", projMember, nil) || !e.Allowed("reaches", projMember, nil) {
		t.Error("cycle broken by override still denied")
	}
	// ...but one that makes a cycle is rejected and changes nothing.
	path = writeFile(t, "policy.yaml", "leaf: rule:fine\n")
	err := e.LoadFile(path)
	if err == nil || !strings.Contains(err.Error(), "cycle") || !strings.Contains(err.Error(), "fine -> leaf -> fine") {
		t.Fatalf("LoadFile with a cycle = %v", err)
	}
	if !e.Allowed("fine", projAdmin, nil) || !e.Allowed("a", projMember, nil) {
		t.Error("failed LoadFile changed the rules")
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadFile(t *testing.T) {
	defaults := append(BaseRules(),
		Rule{Name: "compute:get", Check: "rule:project_reader", Description: "Show a server."},
		Rule{Name: "compute:delete", Check: "rule:project_member"},
	)
	p1 := Target{"project_id": "p1"}

	e := New(defaults)
	path := writeFile(t, "policy.yaml", `
# Only admins may read servers here.
"compute:get": "rule:admin_required"
compute:resize: "role:member and project_id:%(project_id)s"
"compute:lock": ""
old:list: [["role:admin"], ["role:member", "project_id:%(project_id)s"]]
`)
	if err := e.LoadFile(path); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		action string
		c      *auth.Credentials
		want   bool
	}{
		{"compute:get", projReader, false}, // overridden
		{"compute:get", projAdmin, true},
		{"compute:delete", projMember, true}, // default kept
		{"compute:resize", projMember, true}, // added
		{"compute:resize", otherMember, false},
		{"compute:lock", projReader, true},
		{"old:list", projAdmin, true},
		{"old:list", projMember, true},
		{"old:list", otherMember, false},
	}
	for _, c := range checks {
		if got := e.Allowed(c.action, c.c, p1); got != c.want {
			t.Errorf("%s for %s = %v, want %v", c.action, c.c.UserID, got, c.want)
		}
	}
	var get Rule
	for _, r := range e.Rules() {
		if r.Name == "compute:get" {
			get = r
		}
	}
	if get.Check != "rule:admin_required" || get.Description != "Show a server." {
		t.Errorf("Rules() compute:get = %+v", get)
	}

	// A reload replaces the whole override set.
	if err := os.WriteFile(path, []byte(`{"compute:delete": "rule:admin_required"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.LoadFile(path); err != nil {
		t.Fatal(err)
	}
	if !e.Allowed("compute:get", projReader, p1) || e.Allowed("compute:resize", projMember, p1) {
		t.Error("reload kept overrides from the previous file")
	}
	if e.Allowed("compute:delete", projMember, p1) {
		t.Error("JSON override not applied")
	}

	// A missing file means no overrides.
	if err := e.LoadFile(filepath.Join(t.TempDir(), "absent.yaml")); err != nil {
		t.Fatalf("missing file: %v", err)
	}
	if !e.Allowed("compute:delete", projMember, p1) {
		t.Error("missing file kept overrides")
	}
}

func TestLoadFileBeforeRegister(t *testing.T) {
	e := New(nil)
	if err := e.LoadFile(writeFile(t, "policy.yaml", "compute:get: '!'\n")); err != nil {
		t.Fatal(err)
	}
	e.Register(Rule{Name: "compute:get", Check: "@"})
	if e.Allowed("compute:get", projAdmin, nil) {
		t.Error("default registered after LoadFile beat the override")
	}
}

func TestLoadFileErrors(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"syntax", "good: role:admin\nbroken:rule: 'role:admin and'\n", `rule "broken:rule"`},
		{"unknown field", "x: 'projectid:%(project_id)s'\n", `rule "x"`},
		{"not a string", "x: 1\n", `rule "x": want a string`},
		{"null", "x:\n", `rule "x": want a string`},
		{"bad list", "x: [[1]]\n", `rule "x"`},
		{"not a map", "- role:admin\n", "policy file"},
		{"bad yaml", "x: [\n", "policy file"},
		{"self cycle", "x: rule:x\n", "x -> x"},
	}
	for _, tt := range tests {
		e := New([]Rule{{Name: "x", Check: "role:admin"}})
		err := e.LoadFile(writeFile(t, "policy.yaml", tt.content))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: LoadFile = %v, want error containing %q", tt.name, err, tt.want)
			continue
		}
		if !e.Allowed("x", projAdmin, nil) || e.Allowed("x", projMember, nil) {
			t.Errorf("%s: failed LoadFile changed the rules", tt.name)
		}
	}

	e := New(nil)
	err := e.LoadFile(writeFile(t, "policy.yaml", "a: 'role:'\nb: 'nope'\n"))
	if err == nil || !strings.Contains(err.Error(), `rule "a"`) || !strings.Contains(err.Error(), `rule "b"`) {
		t.Errorf("LoadFile should name every bad rule, got %v", err)
	}
}

func TestRegister(t *testing.T) {
	e := New(BaseRules())
	e.Register(BaseRules()...) // identical duplicates are harmless
	if !e.Allowed("admin_required", projAdmin, nil) {
		t.Error("base rules lost on re-registration")
	}

	mustPanic := func(name string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s did not panic", name)
			}
		}()
		f()
	}
	mustPanic("bad syntax", func() { e.Register(Rule{Name: "x", Check: "role:a and"}) })
	mustPanic("no name", func() { e.Register(Rule{Check: "@"}) })
	mustPanic("conflict", func() { e.Register(Rule{Name: "admin_required", Check: "@"}) })
	mustPanic("conflict in one call", func() { e.Register(Rule{Name: "y", Check: "@"}, Rule{Name: "y", Check: "!"}) })
	if e.Allowed("admin_required", projMember, nil) {
		t.Error("conflicting registration changed the rule")
	}
}

func TestBaseRulesParse(t *testing.T) {
	for _, r := range BaseRules() {
		if _, err := parse(r.Check); err != nil {
			t.Errorf("%s: %v", r.Name, err)
		}
		if r.Description == "" {
			t.Errorf("%s has no description", r.Name)
		}
	}
}

// TestConcurrentReload runs under -race in CI: readers never lock, so a
// reload must publish a new snapshot rather than mutate the current one.
func TestConcurrentReload(t *testing.T) {
	e := New(append(BaseRules(), Rule{Name: "act", Check: "rule:project_member"}))
	path := writeFile(t, "policy.yaml", "act: rule:project_reader\n")
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				e.Allowed("act", projMember, Target{"project_id": "p1"})
			}
		}()
	}
	for range 20 {
		if err := e.LoadFile(path); err != nil {
			t.Error(err)
		}
		e.Register(Rule{Name: "other", Check: "@"})
	}
	wg.Wait()
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "@", "!", "role:admin", "rule:admin_required or rule:owner",
		"not (role:a and role:b) or role:c",
		"project_id:%(project_id)s", "'member':%(role.name)s", "True:%(x)s",
		"((role:a)", "user_id:%(x", "a%%:%%(b)s", "is_admin:1", "-0:0",
	} {
		f.Add(s)
	}
	creds := &auth.Credentials{UserID: "u", ProjectID: "p", System: true, Roles: []string{"admin", "member"}}
	target := Target{"project_id": "p", "user_id": "u", "x": "True"}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parse(s)
		if err != nil {
			return
		}
		// Whatever parses must evaluate without panicking, and print to
		// something that parses again.
		e := New([]Rule{{Name: "r", Check: "@"}})
		snap := e.snap.Load()
		snap.eval(n, creds, target)
		snap.always(n)
		if _, err := parse(n.String()); err != nil {
			t.Errorf("parse(%q) printed %q, which does not parse: %v", s, n.String(), err)
		}
	})
}

func BenchmarkEnforce(b *testing.B) {
	e := New(append(BaseRules(),
		Rule{Name: "os_compute_api:servers:show", Check: "rule:project_reader or rule:admin_required or rule:itsec"},
	))
	c := &auth.Credentials{UserID: "u1", ProjectID: "p1", Roles: []string{"member", "reader"}}
	t := Target{"project_id": "p1", "user_id": "u1"}
	b.ReportAllocs()
	for b.Loop() {
		if err := e.Enforce("os_compute_api:servers:show", c, t); err != nil {
			b.Fatal(err)
		}
	}
}

func TestAuthorizeReadsCredentialsFromContext(t *testing.T) {
	e := New(append(BaseRules(), Rule{Name: "thing:get", Check: "rule:project_reader or rule:admin_required"}))
	member := &auth.Credentials{UserID: "u", ProjectID: "p1", Roles: []string{"member", "reader"}}
	cases := []struct {
		name string
		ctx  context.Context
		t    Target
		kind fault.Kind
		ok   bool
	}{
		{"own project", auth.WithCredentials(context.Background(), member), Target{"project_id": "p1"}, 0, true},
		{"other project", auth.WithCredentials(context.Background(), member), Target{"project_id": "p2"}, fault.Forbidden, false},
		{"no credentials", context.Background(), Target{"project_id": "p1"}, fault.Unauthorized, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := e.Authorize(tc.ctx, "thing:get", tc.t)
			if tc.ok {
				if err != nil || c != member {
					t.Fatalf("Authorize = %v, %v", c, err)
				}
				return
			}
			if !fault.Is(err, tc.kind) || c != nil {
				t.Fatalf("Authorize = %v, %v; want kind %v", c, err, tc.kind)
			}
		})
	}
}
