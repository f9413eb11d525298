package identity

import (
	"context"
	"testing"
	"time"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// TestRevocationTriggers issues a token, applies each change that must
// revoke it, and checks that the token fails at once while a bystander's
// token keeps working.
func TestRevocationTriggers(t *testing.T) {
	type fixture struct {
		e   *env
		p   *Project
		u   *User
		g   *Group
		tok *TokenInfo
		ctx context.Context
	}
	cases := []struct {
		name string
		// viaGroup gives the user its role through a group instead of directly.
		viaGroup bool
		// system scopes the victim's token to the system instead of the project.
		system  bool
		trigger func(t *testing.T, f *fixture) error
	}{
		{"token revoked", false, false, func(t *testing.T, f *fixture) error { return f.e.s.RevokeToken(f.ctx, f.tok.Token) }},
		{"user disabled", false, false, func(t *testing.T, f *fixture) error {
			_, err := f.e.s.UpdateUser(f.e.admin, f.u.ID, UserUpdate{Enabled: ptr(false)})
			return err
		}},
		{"user deleted", false, false, func(t *testing.T, f *fixture) error { return f.e.s.DeleteUser(f.e.admin, f.u.ID) }},
		{"password reset by admin", false, false, func(t *testing.T, f *fixture) error {
			_, err := f.e.s.UpdateUser(f.e.admin, f.u.ID, UserUpdate{Password: ptr("brand-new-pw")})
			return err
		}},
		{"password changed by user", false, false, func(t *testing.T, f *fixture) error {
			return f.e.s.ChangePassword(f.ctx, f.u.ID, "victim-password", "brand-new-pw")
		}},
		{"project disabled", false, false, func(t *testing.T, f *fixture) error {
			_, err := f.e.s.UpdateProject(f.e.admin, f.p.ID, ProjectUpdate{Enabled: ptr(false)})
			return err
		}},
		{"project deleted", false, false, func(t *testing.T, f *fixture) error { return f.e.s.DeleteProject(f.e.admin, f.p.ID) }},
		{"domain disabled", false, false, func(t *testing.T, f *fixture) error {
			_, err := f.e.s.UpdateDomain(f.e.admin, f.p.DomainID, DomainUpdate{Enabled: ptr(false)})
			return err
		}},
		{"domain deleted", false, false, nil}, // handled below: it must be disabled first
		{"role revoked on project", false, false, func(t *testing.T, f *fixture) error {
			return f.e.s.Revoke(f.e.admin, Assignment{ActorType: ActorUser, ActorID: f.u.ID, TargetType: TargetProject,
				TargetID: f.p.ID, RoleID: f.e.roleID(t, "member")})
		}},
		{"group grant revoked", true, false, func(t *testing.T, f *fixture) error {
			return f.e.s.Revoke(f.e.admin, Assignment{ActorType: ActorGroup, ActorID: f.g.ID, TargetType: TargetProject,
				TargetID: f.p.ID, RoleID: f.e.roleID(t, "member")})
		}},
		{"removed from group", true, false, func(t *testing.T, f *fixture) error {
			return f.e.s.RemoveGroupMember(f.e.admin, f.g.ID, f.u.ID)
		}},
		{"group deleted", true, false, func(t *testing.T, f *fixture) error { return f.e.s.DeleteGroup(f.e.admin, f.g.ID) }},
		{"role deleted", false, false, func(t *testing.T, f *fixture) error {
			return f.e.s.DeleteRole(f.e.admin, f.e.roleID(t, "member"))
		}},
		{"system role revoked", false, true, func(t *testing.T, f *fixture) error {
			return f.e.s.Revoke(f.e.admin, Assignment{ActorType: ActorUser, ActorID: f.u.ID, TargetType: TargetSystem,
				TargetID: SystemAll, RoleID: f.e.roleID(t, "reader")})
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			f := &fixture{e: e}
			var err error
			domainID := DefaultDomainID
			if c.name == "domain disabled" || c.name == "domain deleted" {
				d, err := e.s.CreateDomain(e.admin, Domain{Name: "victim-domain", Enabled: true})
				ok(t, err)
				domainID = d.ID
			}
			f.p, err = e.s.CreateProject(e.admin, Project{Name: "victim-project", DomainID: domainID, Enabled: true})
			ok(t, err)
			f.u, err = e.s.CreateUser(e.admin, User{Name: "victim", DomainID: domainID, Enabled: true}, "victim-password")
			ok(t, err)
			member := e.roleID(t, "member")
			if c.viaGroup {
				f.g, err = e.s.CreateGroup(e.admin, Group{Name: "victims", DomainID: domainID})
				ok(t, err)
				ok(t, e.s.AddGroupMember(e.admin, f.g.ID, f.u.ID))
				e.grant(t, Assignment{ActorType: ActorGroup, ActorID: f.g.ID, TargetType: TargetProject, TargetID: f.p.ID, RoleID: member})
			} else {
				e.grant(t, Assignment{ActorType: ActorUser, ActorID: f.u.ID, TargetType: TargetProject, TargetID: f.p.ID, RoleID: member})
			}
			sc := Scope{ProjectID: f.p.ID}
			if c.system {
				e.grant(t, Assignment{ActorType: ActorUser, ActorID: f.u.ID, TargetType: TargetSystem, TargetID: SystemAll, RoleID: e.roleID(t, "reader")})
				sc = Scope{System: true}
			}
			f.tok = e.login(t, PasswordAuth{UserID: f.u.ID, Password: "victim-password"}, sc)
			f.ctx = e.ctx(t, f.tok)
			_, _, bystander, _ := e.member(t, "bystander", "reader")

			if c.name == "domain deleted" {
				// Deleting needs the domain disabled first (which revokes);
				// check that the delete itself is refused while enabled.
				wantKind(t, e.s.DeleteDomain(e.admin, domainID), fault.Forbidden)
				_, err := e.s.UpdateDomain(e.admin, domainID, DomainUpdate{Enabled: ptr(false)})
				ok(t, err)
				ok(t, e.s.DeleteDomain(e.admin, domainID))
			} else {
				ok(t, c.trigger(t, f))
			}
			if e.valid(f.tok) {
				t.Fatal("token still valid after the trigger")
			}
			if c.name != "role deleted" && !e.valid(bystander) {
				t.Fatal("bystander's token was revoked too")
			}
		})
	}
}

// TestRevocationExactInstant freezes the clock: a token issued at the very
// instant of an event is revoked, a token issued after it is not.
func TestRevocationExactInstant(t *testing.T) {
	e := newEnv(t)
	p, u, tok, _ := e.member(t, "frozen", "member")
	ok(t, e.s.Revoke(e.admin, Assignment{ActorType: ActorUser, ActorID: u.ID, TargetType: TargetProject, TargetID: p.ID, RoleID: e.roleID(t, "member")}))
	if e.valid(tok) {
		t.Fatal("token issued before the event survived")
	}
	e.grant(t, Assignment{ActorType: ActorUser, ActorID: u.ID, TargetType: TargetProject, TargetID: p.ID, RoleID: e.roleID(t, "member")})
	after := e.login(t, PasswordAuth{UserID: u.ID, Password: "frozen-password"}, Scope{ProjectID: p.ID})
	if !e.valid(after) {
		t.Fatal("token issued after the event was revoked")
	}

	// The same holds for a payload stamped exactly at the event's instant.
	pl, err := e.s.signer.decode(after.Token)
	ok(t, err)
	ok(t, e.s.revoke(context.Background(), revocationEvent{UserID: u.ID}))
	at := e.s.rev.user[u.ID]
	pl.IssuedAt = at
	if !e.s.rev.revoked(pl) {
		t.Fatal("issued_at == issued_before must count as revoked")
	}
	pl.IssuedAt = at + 1
	if e.s.rev.revoked(pl) {
		t.Fatal("issued_at after the event must not be revoked")
	}
}

func TestRevocationSurvivesRestart(t *testing.T) {
	e := newEnv(t)
	_, u, tok, _ := e.member(t, "phoenix", "member")
	_, _, keep, _ := e.member(t, "keeper", "member")
	_, err := e.s.UpdateUser(e.admin, u.ID, UserUpdate{Enabled: ptr(false)})
	ok(t, err)
	audit := e.login(t, PasswordAuth{UserID: e.boot.AdminUserID, Password: testAdminPassword}, Scope{})
	ok(t, e.s.RevokeToken(e.admin, audit.Token))

	s2, err := New(context.Background(), e.db, e.cfg)
	ok(t, err)
	for _, tk := range []*TokenInfo{tok, audit} {
		if _, err := s2.ValidateToken(context.Background(), tk.Token); err == nil {
			t.Fatal("revocation lost on restart")
		}
	}
	if _, err := s2.ValidateToken(context.Background(), keep.Token); err != nil {
		t.Fatalf("the signing key changed on restart: %v", err)
	}

	// Past the token lifetime the events are pruned from the table.
	e.clock.Advance(2 * time.Hour)
	_, err = New(context.Background(), e.db, e.cfg)
	ok(t, err)
	var n int
	ok(t, e.db.QueryRow(`SELECT COUNT(*) FROM revocation_events`).Scan(&n))
	if n != 0 {
		t.Fatalf("%d stale revocation events kept", n)
	}
}

func TestRevocationListMatching(t *testing.T) {
	base := &tokenPayload{IssuedAt: 100, UserID: "u", UserDomainID: "ud", ProjectID: "p", ProjectDomID: "pd",
		RoleIDs: []string{"r1", "r2"}, AppCredID: "ac"}
	base.AuditID[0] = 7
	cases := []struct {
		name string
		ev   revocationEvent
		tok  func(p tokenPayload) tokenPayload
		want bool
	}{
		{"user", revocationEvent{UserID: "u"}, nil, true},
		{"other user", revocationEvent{UserID: "x"}, nil, false},
		{"project", revocationEvent{ProjectID: "p"}, nil, true},
		{"user domain", revocationEvent{DomainID: "ud"}, nil, true},
		{"project domain", revocationEvent{DomainID: "pd"}, nil, true},
		{"role", revocationEvent{RoleID: "r2"}, nil, true},
		{"app cred", revocationEvent{AppCredID: "ac"}, nil, true},
		{"user on project", revocationEvent{UserID: "u", ProjectID: "p"}, nil, true},
		{"user on other project", revocationEvent{UserID: "u", ProjectID: "q"}, nil, false},
		{"user on domain scope", revocationEvent{UserID: "u", DomainID: "d"},
			func(p tokenPayload) tokenPayload { p.ProjectID, p.ProjectDomID, p.DomainID = "", "", "d"; return p }, true},
		{"user on domain, project token", revocationEvent{UserID: "u", DomainID: "pd"}, nil, false},
		{"user with role", revocationEvent{UserID: "u", RoleID: "r1"}, nil, true},
		{"audit", revocationEvent{AuditID: auditString(base.AuditID)}, nil, true},
		{"other audit", revocationEvent{AuditID: auditString([16]byte{1})}, nil, false},
		{"issued after", revocationEvent{UserID: "u"}, func(p tokenPayload) tokenPayload { p.IssuedAt = 101; return p }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := newRevocationList()
			c.ev.IssuedBefore = 100
			l.add(c.ev)
			p := *base
			if c.tok != nil {
				p = c.tok(p)
			}
			if got := l.revoked(&p); got != c.want {
				t.Fatalf("revoked = %v, want %v", got, c.want)
			}
		})
	}
}

// TestRevocationAcrossReplicas runs two services on one database, as two
// controllers would: they share the signing key, and a replica honours the
// other's revocations once it refreshes.
func TestRevocationAcrossReplicas(t *testing.T) {
	e := newEnv(t)
	replica, err := New(context.Background(), e.db, e.cfg)
	ok(t, err)
	_, u, tok, _ := e.member(t, "rita", "member")
	if _, err := replica.ValidateToken(context.Background(), tok.Token); err != nil {
		t.Fatalf("replica rejects a token of its peer: %v", err)
	}
	_, err = e.s.UpdateUser(e.admin, u.ID, UserUpdate{Enabled: ptr(false)})
	ok(t, err)
	ok(t, replica.RefreshRevocations(context.Background()))
	if _, err := replica.ValidateToken(context.Background(), tok.Token); err == nil {
		t.Fatal("replica still accepts a token its peer revoked")
	}
}
