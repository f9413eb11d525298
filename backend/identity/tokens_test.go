package identity

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

func TestTokenRoundTrip(t *testing.T) {
	sg := newSigner(make([]byte, 32))
	cases := []tokenPayload{
		{Methods: methodPasswordBit, Scope: scopeNone, IssuedAt: 1, ExpiresAt: 2, UserID: newID(), UserName: "ü-name", UserDomainID: "default"},
		{Methods: methodPasswordBit | methodTokenBit, Scope: scopeProject, IssuedAt: time.Now().UnixNano(), ExpiresAt: time.Now().Add(time.Hour).UnixNano(),
			HasParent: true, ParentAudit: newAuditID(), AuditID: newAuditID(), UserID: newID(), UserName: "bob", UserDomainID: newID(),
			ProjectID: newID(), ProjectDomID: "default", RoleIDs: []string{newID(), newID(), "custom-id"}, RoleNames: []string{"admin", "member", "reader"}},
		{Methods: methodAppCredBit, Scope: scopeProject, UserID: "UPPER-not-hex", UserDomainID: "d", ProjectID: "p", ProjectDomID: "pd",
			AppCredID: newID(), RoleIDs: []string{newID()}, RoleNames: []string{"reader"}},
		{Methods: methodPasswordBit, Scope: scopeDomain, UserID: newID(), UserDomainID: "default", DomainID: "default"},
		{Methods: methodPasswordBit, Scope: scopeSystem, UserID: newID(), UserDomainID: "default", RoleIDs: []string{newID()}, RoleNames: []string{"admin"}},
	}
	for i, p := range cases {
		tok, err := sg.encode(&p)
		ok(t, err)
		if strings.ContainsAny(tok, "+/=") {
			t.Fatalf("token %d is not unpadded base64url: %s", i, tok)
		}
		got, err := sg.decode(tok)
		ok(t, err)
		if got.UserID != p.UserID || got.UserName != p.UserName || got.UserDomainID != p.UserDomainID || got.ProjectID != p.ProjectID ||
			got.ProjectDomID != p.ProjectDomID || got.DomainID != p.DomainID || got.AppCredID != p.AppCredID || got.Scope != p.Scope ||
			got.IssuedAt != p.IssuedAt || got.ExpiresAt != p.ExpiresAt || got.AuditID != p.AuditID || got.HasParent != p.HasParent ||
			got.ParentAudit != p.ParentAudit || got.Methods != p.Methods || strings.Join(got.RoleIDs, ",") != strings.Join(p.RoleIDs, ",") ||
			strings.Join(got.RoleNames, ",") != strings.Join(p.RoleNames, ",") {
			t.Fatalf("case %d: got %+v want %+v", i, got, p)
		}
		// Any flipped bit fails the MAC.
		raw, _ := base64.RawURLEncoding.DecodeString(tok)
		for _, at := range []int{0, len(raw) / 2, len(raw) - 1} {
			bad := append([]byte(nil), raw...)
			bad[at] ^= 1
			if _, err := sg.decode(base64.RawURLEncoding.EncodeToString(bad)); err == nil {
				t.Fatalf("case %d: flipped byte %d accepted", i, at)
			}
		}
	}
	// Another key rejects it.
	tok, _ := sg.encode(&cases[0])
	k := make([]byte, 32)
	k[0] = 1
	if _, err := newSigner(k).decode(tok); err == nil {
		t.Fatal("token accepted under another key")
	}
}

func TestTokenSize(t *testing.T) {
	e := newEnv(t)
	tok := e.login(t, PasswordAuth{UserID: e.boot.AdminUserID, Password: testAdminPassword}, Scope{ProjectID: e.boot.AdminProject})
	if n := len(tok.Token); n > 400 {
		t.Fatalf("admin project token is %d characters", n)
	}
	t.Logf("admin project token (3 roles): %d characters", len(tok.Token))
}

func FuzzValidateToken(f *testing.F) {
	e := newEnv(f)
	good := e.login(f, PasswordAuth{UserID: e.boot.AdminUserID, Password: testAdminPassword}, Scope{ProjectID: e.boot.AdminProject})
	f.Add(good.Token)
	f.Add(good.Token[:len(good.Token)/2])
	f.Add("")
	f.Add("gAAAAABk")
	f.Add(strings.Repeat("A", 500))
	raw, _ := base64.RawURLEncoding.DecodeString(good.Token)
	f.Add(base64.RawURLEncoding.EncodeToString(raw[:len(raw)-1]))
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := e.s.ValidateToken(ctx, tok)
		if err == nil && tok != good.Token {
			t.Fatalf("forged token accepted: %q -> %+v", tok, c)
		}
		// The parser alone must not panic on anything, MAC or not.
		parseUnsigned(tok)
	})
}

// parseUnsigned runs the payload parser on arbitrary bytes by signing them
// first, so fuzzing reaches past the MAC check.
func parseUnsigned(s string) {
	sg := newSigner(make([]byte, 32))
	body := []byte(s)
	if len(body) > 2048 {
		body = body[:2048]
	}
	tok := base64.RawURLEncoding.EncodeToString(sg.mac(body, body))
	_, _ = sg.decode(tok)
}

func FuzzTokenPayload(f *testing.F) {
	sg := newSigner(make([]byte, 32))
	p := tokenPayload{Methods: 1, Scope: scopeProject, UserID: newID(), UserName: "n", UserDomainID: "default", ProjectID: newID(),
		ProjectDomID: "default", RoleIDs: []string{newID()}, RoleNames: []string{"r"}, HasParent: true, AppCredID: "x"}
	tok, _ := sg.encode(&p)
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	f.Add(raw[:len(raw)-macLen])
	f.Add([]byte{1, 1, 1, 3})
	f.Fuzz(func(t *testing.T, body []byte) {
		signed := base64.RawURLEncoding.EncodeToString(sg.mac(append([]byte(nil), body...), body))
		got, err := sg.decode(signed)
		if err != nil {
			return
		}
		// Whatever parses must re-encode to the same bytes' meaning.
		again, err := sg.encode(got)
		if err != nil {
			return // e.g. an ID of 32 hex digits stored raw is canonicalised
		}
		if _, err := sg.decode(again); err != nil {
			t.Fatalf("re-encoded payload does not decode: %v", err)
		}
	})
}

func BenchmarkValidateToken(b *testing.B) {
	e := newEnv(b)
	tok := e.login(b, PasswordAuth{UserID: e.boot.AdminUserID, Password: testAdminPassword}, Scope{ProjectID: e.boot.AdminProject})
	// Some revocation events, so the lookups are not on empty maps.
	for range 100 {
		ok(b, e.s.revoke(context.Background(), revocationEvent{UserID: newID()}, revocationEvent{ProjectID: newID()}))
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.s.ValidateToken(ctx, tok.Token); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidateTokenParallel(b *testing.B) {
	e := newEnv(b)
	tok := e.login(b, PasswordAuth{UserID: e.boot.AdminUserID, Password: testAdminPassword}, Scope{ProjectID: e.boot.AdminProject})
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.s.ValidateToken(ctx, tok.Token); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkRescope(b *testing.B) {
	e := newEnv(b)
	tok := e.login(b, PasswordAuth{UserID: e.boot.AdminUserID, Password: testAdminPassword}, Scope{})
	ctx := context.Background()
	req := AuthRequest{Methods: []string{MethodToken}, Token: tok.Token, Scope: Scope{ProjectID: e.boot.AdminProject}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.s.Authenticate(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}
