package identity

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

func acLogin(e *env, a AppCredentialAuth, sc Scope) (*TokenInfo, error) {
	return e.s.Authenticate(context.Background(), AuthRequest{Methods: []string{MethodAppCredential}, AppCredential: &a, Scope: sc})
}

func TestDelegatedAppCredentials(t *testing.T) {
	e := newEnv(t)
	p, u, _, ctx := e.member(t, "ada", "member")
	_, other, _, _ := e.member(t, "bea", "member")

	// Only the reader role is delegated; the secret is generated and shown once.
	exp := e.clock.Now().Add(30 * time.Minute)
	ac, err := e.s.CreateAppCredential(ctx, AppCredential{Name: "ci", UserID: u.ID, ExpiresAt: &exp, Roles: []Role{{Name: "reader"}}})
	ok(t, err)
	if ac.Secret == "" || len(ac.Secret) != 64 || ac.ProjectID != p.ID || len(ac.Roles) != 1 || ac.Roles[0].Name != "reader" {
		t.Fatalf("created %+v", ac)
	}
	got, err := e.s.GetAppCredential(ctx, u.ID, ac.ID)
	ok(t, err)
	if got.Secret != "" || got.Name != "ci" || len(got.Roles) != 1 {
		t.Fatalf("get %+v", got)
	}
	list, err := e.s.ListAppCredentials(ctx, u.ID)
	ok(t, err)
	if len(list) != 1 || list[0].Secret != "" {
		t.Fatalf("list %+v", list)
	}

	for _, c := range []struct {
		name string
		a    AppCredentialAuth
	}{
		{"by id", AppCredentialAuth{ID: ac.ID, Secret: ac.Secret}},
		{"by name and user id", AppCredentialAuth{Name: "ci", UserID: u.ID, Secret: ac.Secret}},
		{"by name and user name", AppCredentialAuth{Name: "ci", UserName: "ada", UserDomainName: "Default", Secret: ac.Secret}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tok, err := acLogin(e, c.a, Scope{})
			ok(t, err)
			cr := tok.Credentials
			if cr.ProjectID != p.ID || !slices.Equal(cr.Roles, []string{"reader"}) || cr.AppCredentialID != ac.ID ||
				!slices.Equal(cr.Methods, []string{MethodAppCredential}) || !cr.ExpiresAt.Equal(exp) || tok.AppCredential == nil {
				t.Fatalf("credentials %+v", cr)
			}
		})
	}
	// Refusals, all alike.
	for _, c := range []struct {
		name string
		a    AppCredentialAuth
		sc   Scope
	}{
		{"wrong secret", AppCredentialAuth{ID: ac.ID, Secret: "nope"}, Scope{}},
		{"unknown id", AppCredentialAuth{ID: newID(), Secret: ac.Secret}, Scope{}},
		{"another user's name", AppCredentialAuth{Name: "ci", UserID: other.ID, Secret: ac.Secret}, Scope{}},
		{"another project", AppCredentialAuth{ID: ac.ID, Secret: ac.Secret}, Scope{ProjectID: e.boot.AdminProject}},
		{"system scope", AppCredentialAuth{ID: ac.ID, Secret: ac.Secret}, Scope{System: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := acLogin(e, c.a, c.sc)
			wantKind(t, err, fault.Unauthorized)
			if fault.Message(err) != msgUnauthorized {
				t.Fatal(fault.Message(err))
			}
		})
	}
	tok, err := acLogin(e, AppCredentialAuth{ID: ac.ID, Secret: ac.Secret}, Scope{ProjectID: p.ID})
	ok(t, err)
	acCtx := e.ctx(t, tok)
	// Its token cannot be rescoped, nor mint or delete credentials.
	_, err = e.s.Authenticate(context.Background(), AuthRequest{Methods: []string{MethodToken}, Token: tok.Token, Scope: Scope{ProjectID: p.ID}})
	wantKind(t, err, fault.Forbidden)
	_, err = e.s.CreateAppCredential(acCtx, AppCredential{Name: "child", UserID: u.ID})
	wantKind(t, err, fault.Forbidden)
	wantKind(t, e.s.DeleteAppCredential(acCtx, u.ID, ac.ID), fault.Forbidden)

	// Losing the delegated role on the project stops the credential.
	ok(t, e.s.Revoke(e.admin, Assignment{ActorType: ActorUser, ActorID: u.ID, TargetType: TargetProject, TargetID: p.ID, RoleID: e.roleID(t, "member")}))
	_, err = acLogin(e, AppCredentialAuth{ID: ac.ID, Secret: ac.Secret}, Scope{})
	wantKind(t, err, fault.Unauthorized)
	e.grant(t, Assignment{ActorType: ActorUser, ActorID: u.ID, TargetType: TargetProject, TargetID: p.ID, RoleID: e.roleID(t, "member")})
	tok, err = acLogin(e, AppCredentialAuth{ID: ac.ID, Secret: ac.Secret}, Scope{})
	ok(t, err)

	// Expiry.
	e.clock.Advance(31 * time.Minute)
	_, err = acLogin(e, AppCredentialAuth{ID: ac.ID, Secret: ac.Secret}, Scope{})
	wantKind(t, err, fault.Unauthorized)
	if e.valid(tok) {
		t.Fatal("token outlived its application credential")
	}
	e.clock.Advance(-31 * time.Minute)

	// Deleting revokes its tokens at once.
	ctx = e.ctx(t, e.login(t, PasswordAuth{UserID: u.ID, Password: "ada-password"}, Scope{ProjectID: p.ID}))
	tok, err = acLogin(e, AppCredentialAuth{ID: ac.ID, Secret: ac.Secret}, Scope{})
	ok(t, err)
	ok(t, e.s.DeleteAppCredential(ctx, u.ID, ac.ID))
	if e.valid(tok) {
		t.Fatal("token survived deleting its application credential")
	}
	wantKind(t, e.s.DeleteAppCredential(ctx, u.ID, ac.ID), fault.NotFound)
	_, err = e.s.GetAppCredential(ctx, u.ID, ac.ID)
	wantKind(t, err, fault.NotFound)
}

func TestCreateAppCredentialRules(t *testing.T) {
	e := newEnv(t)
	_, u, _, ctx := e.member(t, "cy", "member")
	_, other, _, _ := e.member(t, "di", "member")
	past := e.clock.Now().Add(-time.Minute)
	unscoped := e.ctx(t, e.login(t, PasswordAuth{UserID: u.ID, Password: "cy-password"}, Scope{Unscoped: true}))
	cases := []struct {
		name string
		ctx  context.Context
		ac   AppCredential
		kind fault.Kind
	}{
		{"for another user", ctx, AppCredential{Name: "x", UserID: other.ID}, fault.Forbidden},
		{"unscoped token", unscoped, AppCredential{Name: "x", UserID: u.ID}, fault.Forbidden},
		{"role not held", ctx, AppCredential{Name: "x", UserID: u.ID, Roles: []Role{{Name: "admin"}}}, fault.NotFound},
		{"expired", ctx, AppCredential{Name: "x", UserID: u.ID, ExpiresAt: &past}, fault.Invalid},
		{"no name", ctx, AppCredential{UserID: u.ID}, fault.Invalid},
		{"long secret", ctx, AppCredential{Name: "x", UserID: u.ID, Secret: strings.Repeat("s", 73)}, fault.Invalid},
		{"other project", ctx, AppCredential{Name: "x", UserID: u.ID, ProjectID: e.boot.AdminProject}, fault.Invalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.s.CreateAppCredential(c.ctx, c.ac)
			wantKind(t, err, c.kind)
		})
	}
	// All the token's roles by default, a chosen secret, and unique names per user.
	ac, err := e.s.CreateAppCredential(ctx, AppCredential{Name: "all", UserID: u.ID, Secret: "my-own-secret", Unrestricted: true})
	ok(t, err)
	if len(ac.Roles) != 2 || ac.Secret != "my-own-secret" {
		t.Fatalf("created %+v", ac)
	}
	_, err = e.s.CreateAppCredential(ctx, AppCredential{Name: "all", UserID: u.ID})
	wantKind(t, err, fault.Conflict)
	// An unrestricted credential's token may manage credentials.
	tok, err := acLogin(e, AppCredentialAuth{ID: ac.ID, Secret: "my-own-secret"}, Scope{})
	ok(t, err)
	_, err = e.s.CreateAppCredential(e.ctx(t, tok), AppCredential{Name: "child", UserID: u.ID})
	ok(t, err)
	// Admins may list and delete anyone's, but not create for them.
	_, err = e.s.ListAppCredentials(e.admin, u.ID)
	ok(t, err)
	_, err = e.s.CreateAppCredential(e.admin, AppCredential{Name: "y", UserID: u.ID})
	wantKind(t, err, fault.Forbidden)
	ok(t, e.s.DeleteAppCredential(e.admin, u.ID, ac.ID))
}
